"""Known answers for the factor-balance term and its classifier, and the trainer's use of them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tests.test_train_gan import KW, StubSquares
from training.factor_balance import (
    FactorClassifier,
    balance_loss,
    batch_marginals,
    marginal_kl,
    uniform_marginals,
    update_marginals,
)
from training.train_gan import images_to_tensor, load_training_state, main, train_generator


def _constant_logits(probs: list[float], n: int = 5) -> torch.Tensor:
    return torch.tensor(probs).log().expand(n, -1).clone()


def test_marginals_and_their_kl_known_answers() -> None:
    # every image predicted uniform, or confident predictions covering the classes equally
    for logits in (torch.zeros(7, 4), torch.eye(4).repeat(3, 1) * 30.0):
        (marginal,) = batch_marginals([logits])
        torch.testing.assert_close(marginal, torch.full((4,), 0.25))
        assert marginal_kl([marginal]) == pytest.approx(0.0, abs=1e-6)
    # KL(uniform || (0.8, 0.2)) = 0.5 log(0.5 / 0.8) + 0.5 log(0.5 / 0.2); factors add up
    kl = 0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)
    skewed = batch_marginals([_constant_logits([0.8, 0.2]), torch.zeros(5, 3)])
    assert marginal_kl(skewed) == pytest.approx(kl, rel=1e-5)
    # the running average moves by the momentum towards the batch
    running = update_marginals(uniform_marginals((2, 3)), skewed, momentum=0.25)
    torch.testing.assert_close(running[0], torch.tensor([0.5 + 0.25 * 0.3, 0.5 - 0.25 * 0.3]))
    torch.testing.assert_close(running[1], torch.full((3,), 1 / 3))
    assert not running[0].requires_grad


def test_balance_loss_known_answers() -> None:
    uniform = uniform_marginals((4,))
    p = batch_marginals([_constant_logits([0.4, 0.4, 0.1, 0.1])])
    # 1 - mean_k p_k / r_k: 0 against a uniform running marginal, whatever the batch
    assert float(balance_loss(p, uniform)) == pytest.approx(0.0, abs=1e-6)
    # a batch that repeats the running marginal pays 0; one that fills its rare classes gains
    rare = [torch.tensor([0.4, 0.4, 0.1, 0.1])]
    assert float(balance_loss(p, rare)) == pytest.approx(0.0, abs=1e-6)
    fills = batch_marginals([_constant_logits([0.1, 0.1, 0.4, 0.4])])
    assert float(balance_loss(fills, rare)) == pytest.approx(1 - (0.25 + 0.25 + 4 + 4) / 4)


def test_balance_loss_moves_a_stuck_generator_to_the_uniform_marginal() -> None:
    """Descending the loss alone, with the running marginal updated from each batch, spreads
    a batch stuck in one class over all of them (ascending it would not: the test can fail)."""
    logits = torch.zeros(16, 4)
    logits[:, 0] = 3.0
    logits += 0.1 * torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    logits.requires_grad_(True)
    opt = torch.optim.SGD([logits], lr=2.0)
    running = uniform_marginals((4,))
    for _ in range(300):
        batch = batch_marginals([logits])
        loss = balance_loss(batch, running)
        running = update_marginals(running, batch, momentum=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    (marginal,) = batch_marginals([logits.detach()])
    torch.testing.assert_close(marginal, torch.full((4,), 0.25), atol=0.01, rtol=0)
    assert marginal_kl(running) < 0.01


def test_classifier_learns_the_factors() -> None:
    torch.manual_seed(0)
    data = StubSquares()
    classifier = FactorClassifier(32, 3, data.factor_sizes, width=8)
    opt = torch.optim.Adam(classifier.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        factors, images = data.sample(n, rng)
        return torch.from_numpy(factors), images_to_tensor(images, 32, 3)

    first = None
    for _ in range(60):
        factors, images = batch(32)
        loss = classifier.loss(images, factors)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    factors, images = batch(128)
    with torch.no_grad():
        logits = classifier(images)
    accuracy = [float((lg.argmax(1) == factors[:, i]).float().mean())
                for i, lg in enumerate(logits)]
    assert first == pytest.approx(2 * math.log(4), rel=0.2)  # chance at the start
    assert min(accuracy) > 0.95, accuracy


def test_classifier_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="power of two"):
        FactorClassifier(24, 3, (4,))
    with pytest.raises(ValueError, match="factor_sizes"):
        FactorClassifier(32, 3, (4, 1))


def test_training_with_balance_saves_and_resumes_the_classifier(tmp_path) -> None:
    torch.set_num_threads(1)
    run = dict(ground_truth=StubSquares(), **KW)
    plain = train_generator("train-gan-stub", "micro32", tmp_path / "plain", kimg=0.016, **run)
    assert "balance_G" not in plain["losses"]
    assert "C" not in load_training_state(tmp_path / "plain" / "state.pt")

    # a run resumed from a state without the classifier starts one and trains it
    out = tmp_path / "balanced"
    summary = train_generator("train-gan-stub", "micro32", out, kimg=0.024, balance=2.0,
                              resume_from=tmp_path / "plain" / "state.pt", **run)
    assert summary["iterations"] == 3
    assert summary["losses"]["balance_G"] >= 0 and summary["losses"]["loss_C"] > 0
    state = load_training_state(out / "state.pt")
    assert state["options"]["balance"] == 2.0 and "C" in state and "C_opt" in state
    assert [m.shape[0] for m in state["marginals"]] == [4, 4]
    meta = json.loads((out / "generator.json").read_text())["meta"]
    assert meta["balance"] == 2.0 and "--balance 2" in meta["command"]

    # resuming the balanced run continues its classifier where it stopped
    again = train_generator("train-gan-stub", "micro32", out, kimg=0.032, balance=2.0, **run)
    assert again["iterations"] == 4
    resumed = load_training_state(out / "state.pt")
    moved = [not torch.equal(resumed["C"][k], v) for k, v in state["C"].items()]
    assert any(moved)
    assert not torch.equal(resumed["marginals"][0], state["marginals"][0])
    steps = [float(s["C_opt"]["state"][0]["step"]) for s in (state, resumed)]
    assert steps[1] == steps[0] + 1


def test_balance_argument_is_checked(tmp_path) -> None:
    with pytest.raises(ValueError, match="balance must be a finite weight >= 0"):
        train_generator("train-gan-stub", "micro32", tmp_path, kimg=0.01, balance=-1.0,
                        ground_truth=StubSquares(), **KW)
    rc = main(["--data", "train-gan-stub", "--config", "micro32", "--out", str(tmp_path / "cli"),
               "--kimg", "0.008", "--batch", "8", "--snapshot-kimg", "0.008", "--threads", "1",
               "--balance", "0.5"])
    assert rc == 0
    assert load_training_state(tmp_path / "cli" / "state.pt")["options"]["balance"] == 0.5


def test_compact_state_keeps_the_classifier(tmp_path) -> None:
    """A --balance run's compact state holds its classifier (float16, no Adam moments) and the
    running marginal, and resumes them close to the full state's numbers."""
    from training.train_gan import export_compact_state

    torch.set_num_threads(1)
    run = dict(ground_truth=StubSquares(), balance=1.0, **KW)
    train_generator("train-gan-stub", "micro32", tmp_path / "full", kimg=0.016, **run)
    compact = export_compact_state(tmp_path / "full", tmp_path / "shipped" / "g.safetensors",
                                   tmp_path / "shipped" / "state.pt")
    saved = load_training_state(compact)
    assert all(v.dtype == torch.float16 for v in saved["C"].values())
    assert saved["C_opt"]["state"] == {} and len(saved["marginals"]) == 2

    continued = train_generator("train-gan-stub", "micro32", tmp_path / "full", kimg=0.024, **run)
    restarted = train_generator("train-gan-stub", "micro32", tmp_path / "restart", kimg=0.024,
                                resume_from=compact, **run)
    a = load_training_state(tmp_path / "full" / "state.pt")
    b = load_training_state(tmp_path / "restart" / "state.pt")
    for key, value in a["C"].items():
        torch.testing.assert_close(b["C"][key], value, atol=2e-3, rtol=2e-2, msg=key)
    for x, y in zip(a["marginals"], b["marginals"], strict=True):
        torch.testing.assert_close(y, x, atol=1e-3, rtol=0)
    for key in ("loss_C", "balance_G"):
        assert restarted["losses"][key] == pytest.approx(continued["losses"][key], rel=0.05)
