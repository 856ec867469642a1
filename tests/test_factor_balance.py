"""Known answers for the factor-balance term and its classifier, and the trainer's use of them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from models.factor_balance import FactorClassifier, balance_penalty
from models.train_gan import images_to_tensor, load_training_state, main, train_generator
from tests.test_train_gan import KW, StubSquares


def _constant_logits(probs: list[float], n: int = 5) -> torch.Tensor:
    return torch.tensor(probs).log().expand(n, -1).clone()


def test_balance_penalty_known_answers() -> None:
    # every image predicted uniform over the classes: the batch marginal is uniform
    assert float(balance_penalty([torch.zeros(7, 4)])) == pytest.approx(0.0, abs=1e-7)
    # confident predictions that cover the classes equally: also balanced
    one_hot = torch.eye(4).repeat(3, 1) * 30.0
    assert float(balance_penalty([one_hot])) == pytest.approx(0.0, abs=1e-6)
    # KL(uniform || (0.8, 0.2)) = 0.5 log(0.5 / 0.8) + 0.5 log(0.5 / 0.2)
    kl = 0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)
    assert float(balance_penalty([_constant_logits([0.8, 0.2])])) == pytest.approx(kl, rel=1e-5)
    # factors add up
    both = balance_penalty([_constant_logits([0.8, 0.2]), torch.zeros(5, 3)])
    assert float(both) == pytest.approx(kl, rel=1e-5)
    # a batch that drops classes pays more than one that only under-samples them
    missing = float(balance_penalty([torch.eye(4)[[0, 0, 1, 1]] * 30.0]))
    skewed = float(balance_penalty([_constant_logits([0.4, 0.4, 0.1, 0.1])]))
    assert missing > skewed > 0


def test_penalty_gradient_moves_a_batch_towards_balance() -> None:
    """Descending the penalty alone spreads a batch stuck in one class over all of them."""
    logits = torch.zeros(16, 4)
    logits[:, 0] = 3.0
    logits += 0.1 * torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    logits.requires_grad_(True)
    opt = torch.optim.SGD([logits], lr=1.0)
    start = float(balance_penalty([logits.detach()]))
    for _ in range(200):
        opt.zero_grad()
        balance_penalty([logits]).backward()
        opt.step()
    marginal = torch.softmax(logits.detach(), dim=1).mean(dim=0)
    assert start > 0.5
    torch.testing.assert_close(marginal, torch.full((4,), 0.25), atol=0.02, rtol=0)


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
    meta = json.loads((out / "generator.json").read_text())["meta"]
    assert meta["balance"] == 2.0 and "--balance 2" in meta["command"]

    # resuming the balanced run continues its classifier where it stopped
    again = train_generator("train-gan-stub", "micro32", out, kimg=0.032, balance=2.0, **run)
    assert again["iterations"] == 4
    resumed = load_training_state(out / "state.pt")
    moved = [not torch.equal(resumed["C"][k], v) for k, v in state["C"].items()]
    assert any(moved)
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
