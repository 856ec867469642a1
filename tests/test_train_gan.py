"""Smoke and resume tests for StyleGAN2 training on a tiny stub dataset (micro32 preset)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors.torch
import torch

from datasets import GROUND_TRUTH
from datasets.base import GroundTruthData
from models.stylegan2 import load_generator
from training.train_gan import images_to_tensor, load_training_state, main, train_generator


class StubSquares(GroundTruthData):
    """32x32 RGB: a coloured square (4 colours) at one of 4 positions on a grey background."""

    name = "train-gan-stub"

    @property
    def factor_names(self) -> tuple[str, ...]:
        return ("colour", "position")

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return (4, 4)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return (32, 32, 3)

    def observations(self, factors: np.ndarray) -> np.ndarray:
        factors = self.check_factors(factors)
        palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], np.uint8)
        out = np.full((len(factors), 32, 32, 3), 96, np.uint8)
        for i, (colour, pos) in enumerate(factors):
            r, c = divmod(int(pos), 2)
            out[i, 4 + 14 * r: 14 + 14 * r, 4 + 14 * c: 14 + 14 * c] = palette[colour]
        return out


if "train-gan-stub" not in GROUND_TRUTH:
    GROUND_TRUTH.add("train-gan-stub", lambda data_dir=None: StubSquares(),
                     description="test stub: coloured squares, 32x32")

KW = dict(batch=8, seed=3, snapshot_kimg=0.016, progress=False, threads=1)


def _run(out, kimg: float, **kw):
    return train_generator("train-gan-stub", "micro32", out, kimg=kimg,
                           ground_truth=StubSquares(), **(KW | kw))


def test_training_smoke_resume_and_checkpoint(tmp_path) -> None:
    torch.set_num_threads(1)
    continuous = _run(tmp_path / "a", kimg=0.024)  # 3 iterations, R1 at iteration 0
    assert continuous["iterations"] == 3
    assert all(np.isfinite(v) for v in continuous["losses"].values())

    first = _run(tmp_path / "b", kimg=0.016)  # 2 iterations, then "killed"
    assert first["iterations"] == 2
    resumed = _run(tmp_path / "b", kimg=0.024)  # same command with a later target
    assert resumed["iterations"] == 3 and resumed["kimg"] == pytest.approx(0.024)

    a = load_training_state(tmp_path / "a" / "state.pt")  # weights_only=True inside
    b = load_training_state(tmp_path / "b" / "state.pt")
    assert a["cur_nimg"] == b["cur_nimg"] == 24 and a["iteration"] == b["iteration"] == 3
    for net in ("G", "D", "G_ema"):
        for key, value in a[net].items():
            torch.testing.assert_close(b[net][key], value, atol=1e-6, rtol=1e-5, msg=key)
    torch.testing.assert_close(b["torch_rng"], a["torch_rng"])
    assert b["data_rng"] == a["data_rng"]

    # the exported G_ema round-trips and equals the state's G_ema
    G = load_generator(tmp_path / "b" / "generator")
    for key, value in b["G_ema"].items():
        torch.testing.assert_close(G.state_dict()[key], value)
    meta = json.loads((tmp_path / "b" / "generator.json").read_text())["meta"]
    assert meta["kimg"] == pytest.approx(0.024) and meta["seed"] == 3
    assert "--config micro32" in meta["command"]
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == [1, 2, 3]
    assert all(np.isfinite(r["loss_G"]) and np.isfinite(r["loss_D"]) for r in log)
    assert (tmp_path / "b" / "samples_kimg0000.png").is_file()
    assert not list((tmp_path / "b").glob("*.tmp"))

    # resuming into the same folder with another config is refused with a clear message
    with pytest.raises(ValueError, match="config"):
        train_generator("train-gan-stub", "tiny32", tmp_path / "b", kimg=0.032,
                        ground_truth=StubSquares(), **KW)


def test_main_cli(tmp_path, capsys) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "cli"
    rc = main(["--data", "train-gan-stub", "--config", "micro32", "--out", str(out),
               "--kimg", "0.008", "--batch", "8", "--snapshot-kimg", "0.008", "--threads", "1",
               "--gamma", "0.1", "--mixing", "0.5", "--lr", "0.002"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["iterations"] == 1
    meta = json.loads((out / "generator.json").read_text())["meta"]
    assert meta["gamma"] == 0.1 and meta["mixing"] == 0.5 and meta["lr"] == 0.002
    assert meta["command"].startswith("python -m training.train_gan --data train-gan-stub")


def test_resume_takes_this_runs_learning_rate_and_ema(tmp_path) -> None:
    """A run resumed with another --lr / --ema-kimg trains with them (the saved optimiser
    param groups carry the old learning rate) and records them."""
    torch.set_num_threads(1)
    _run(tmp_path, kimg=0.008, lr=0.002)
    rc = main(["--data", "train-gan-stub", "--config", "micro32", "--out", str(tmp_path),
               "--kimg", "0.016", "--batch", "8", "--seed", "3", "--snapshot-kimg", "0.008",
               "--threads", "1", "--lr", "0.0005", "--ema-kimg", "0.25"])
    assert rc == 0
    state = load_training_state(tmp_path / "state.pt")
    assert state["iteration"] == 2
    assert [g["lr"] for g in state["G_opt"]["param_groups"]] == [0.0005]
    assert [g["lr"] for g in state["D_opt"]["param_groups"]] == [pytest.approx(0.0005 * 16 / 17)]
    assert state["options"]["lr"] == 0.0005 and state["options"]["ema_kimg"] == 0.25
    meta = json.loads((tmp_path / "generator.json").read_text())["meta"]
    assert meta["lr"] == 0.0005 and meta["ema_kimg"] == 0.25
    assert "--ema-kimg 0.25" in meta["command"]


def test_memory_format_changes_speed_not_values(tmp_path) -> None:
    """Channels-last (the default) and contiguous layouts train the same run up to float
    rounding, lay the weights and batches out as asked, and a state saved in one resumes in the
    other with its Adam moments in the new layout."""
    torch.set_num_threads(1)
    last = _run(tmp_path / "last", kimg=0.016)
    flat = _run(tmp_path / "flat", kimg=0.016, memory_format="contiguous")
    for key in ("loss_G", "loss_D"):
        assert last["losses"][key] == pytest.approx(flat["losses"][key], rel=1e-4, abs=1e-5)
    a = load_training_state(tmp_path / "last" / "state.pt")
    b = load_training_state(tmp_path / "flat" / "state.pt")
    convs = [k for k, v in a["G"].items() if v.dim() == 4 and v.shape[-1] > 1]  # 3x3 kernels
    assert convs and all(a["G"][k].is_contiguous(memory_format=torch.channels_last)
                         and not a["G"][k].is_contiguous() for k in convs)
    assert all(b["G"][k].is_contiguous() for k in convs)
    for net in ("G", "D", "G_ema"):
        for key, value in a[net].items():
            torch.testing.assert_close(b[net][key], value, atol=1e-5, rtol=1e-4, msg=key)
    meta = json.loads((tmp_path / "flat" / "generator.json").read_text())["meta"]
    assert meta["memory_format"] == "contiguous"

    from models.stylegan2 import get_preset
    from training.train_gan import GanTrainer, TrainOptions

    trainer = GanTrainer(get_preset("micro32"), TrainOptions(**b["options"]), StubSquares())
    trainer.load_state_dict(b)
    moments = [m for m in trainer.G_opt.state.values() if m["exp_avg"].dim() == 4
               and m["exp_avg"].shape[-1] > 1]
    assert moments and all(m["exp_avg"].is_contiguous(memory_format=torch.channels_last)
                           for m in moments)
    assert trainer.real_batch().is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="memory_format must be one of"):
        GanTrainer(get_preset("micro32"), TrainOptions(**b["options"]), StubSquares(), "nhwc")


def test_bad_arguments(tmp_path) -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        _run(tmp_path, kimg=0.01, batch=6)
    with pytest.raises(ValueError, match="mixing"):
        _run(tmp_path, kimg=0.01, mixing=1.5)
    with pytest.raises(ValueError, match="^ema_kimg must be positive, got 0.0$"):
        _run(tmp_path, kimg=0.01, ema_kimg=0.0)
    with pytest.raises(ValueError, match="unknown StyleGAN2 config"):
        train_generator("train-gan-stub", "tiny99", tmp_path, kimg=1, ground_truth=StubSquares())


def test_images_to_tensor() -> None:
    img = np.zeros((2, 64, 64, 3), np.uint8)
    img[:, :32] = 255
    x = images_to_tensor(img, 32, 3)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    assert float(x[0, 0, 0, 0]) == pytest.approx(1.0) and float(x[0, 0, -1, 0]) == -1.0
    gray = images_to_tensor(np.full((1, 32, 32, 1), 128, np.uint8), 32, 3)
    assert gray.shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="uint8"):
        images_to_tensor(img.astype(np.float32), 32, 3)
    with pytest.raises(ValueError, match="cannot be area-downsampled"):
        images_to_tensor(np.zeros((1, 48, 48, 3), np.uint8), 32, 3)


def test_compact_state_resumes_like_the_full_one(tmp_path) -> None:
    """The committable state (float16 G/D, no G_ema, no optimizer moments) and the float16
    generator written beside it resume exactly like the full state with those roundings and a
    fresh Adam; the next step's losses equal those of the full run going on."""
    from training.train_gan import export_compact_state

    torch.set_num_threads(1)
    import shutil

    _run(tmp_path / "full", kimg=0.016)
    compact = export_compact_state(tmp_path / "full", tmp_path / "shipped" / "g.safetensors",
                                   tmp_path / "shipped" / "state.pt")
    full = load_training_state(tmp_path / "full" / "state.pt")
    assert compact.stat().st_size < 0.3 * (tmp_path / "full" / "state.pt").stat().st_size
    saved = load_training_state(compact)
    assert "G_ema" not in saved and saved["G"]["mapping.fc0.weight"].dtype == torch.float16
    assert saved["G_opt"]["state"] == {} and saved["D_opt"]["state"] == {}
    shipped = safetensors.torch.load_file(tmp_path / "shipped" / "g.safetensors")
    assert all(v.dtype == torch.float16 for v in shipped.values())
    meta = json.loads((tmp_path / "shipped" / "g.json").read_text())["meta"]
    assert meta["kimg"] == 0.016 and meta["precision"] == "float16"

    # what the compact state stands for, built by hand from the full one
    (tmp_path / "by_hand").mkdir()
    for net in ("G", "D", "G_ema"):
        full[net] = {k: v.half().float() for k, v in full[net].items()}
    for opt in ("G_opt", "D_opt"):
        full[opt]["state"] = {}
    torch.save(full, tmp_path / "by_hand" / "state.pt")
    by_hand = _run(tmp_path / "by_hand", kimg=0.024)
    restarted = train_generator("train-gan-stub", "micro32", tmp_path / "restart", kimg=0.024,
                                ground_truth=StubSquares(), resume_from=compact, **KW)
    continued = _run(tmp_path / "full", kimg=0.024)
    assert restarted["iterations"] == by_hand["iterations"] == continued["iterations"] == 3
    a = load_training_state(tmp_path / "by_hand" / "state.pt")
    b = load_training_state(tmp_path / "restart" / "state.pt")
    for net in ("G", "D", "G_ema"):
        for key, value in a[net].items():
            torch.testing.assert_close(b[net][key], value, atol=0, rtol=0, msg=key)
    for key, value in continued["losses"].items():
        assert restarted["losses"][key] == pytest.approx(value, rel=0.05, abs=1e-3), key

    # a compact state whose EMA generator changed is refused
    shutil.copy(tmp_path / "full" / "generator.safetensors", tmp_path / "shipped" / "g.safetensors")
    with pytest.raises(ValueError, match="sha256"):
        train_generator("train-gan-stub", "micro32", tmp_path / "again", kimg=0.024,
                        ground_truth=StubSquares(), resume_from=compact, **KW)
    # a generator.json from another snapshot than state.pt is refused
    doc = json.loads((tmp_path / "full" / "generator.json").read_text())
    doc["meta"]["kimg"] = 1.0
    (tmp_path / "full" / "generator.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="not the snapshot"):
        export_compact_state(tmp_path / "full", tmp_path / "g2.safetensors", tmp_path / "s2.pt")


class TwoColours(GroundTruthData):
    """32x32 flat images: red with probability 3/4, blue with 1/4 (a distribution a micro
    generator learns in a few hundred CPU steps)."""

    name = "train-gan-two-colours"

    @property
    def factor_names(self) -> tuple[str, ...]:
        return ("colour",)

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return (4,)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return (32, 32, 3)

    def observations(self, factors: np.ndarray) -> np.ndarray:
        factors = self.check_factors(factors)
        out = np.zeros((len(factors), 32, 32, 3), np.uint8)
        out[factors[:, 0] < 3, :, :, 0] = 255  # classes 0-2: red
        out[factors[:, 0] == 3, :, :, 2] = 255  # class 3: blue
        return out


def _colour_stats(images: torch.Tensor) -> torch.Tensor:
    """Per-image mean colour in [-1, 1] -> (mean over images, fraction of 'red' images)."""
    means = images.mean(dim=(2, 3))
    red = (means[:, 0] > means[:, 2]).float().mean()
    return torch.cat([means.mean(dim=0), red[None]])


@pytest.mark.slow
def test_training_learns_the_data_and_discriminator_separates() -> None:
    """The generator's colour statistics move to the data's (mean colour (0.5, -1, -0.5),
    3/4 red); the discriminator scores reals above fakes. A generator trained with its loss
    sign flipped moves away instead (the test would fail)."""
    from models.stylegan2 import get_preset
    from training.train_gan import GanTrainer, TrainOptions

    options = TrainOptions(data="two-colours", config="micro32", kimg=1.0, batch=16, seed=0,
                           gamma=1.0, lr=0.0025, mixing=0.0, ema_kimg=0.5, snapshot_kimg=1.0,
                           tick_kimg=1.0)
    trainer = GanTrainer(get_preset("micro32"), options, TwoColours())
    target = torch.tensor([0.5, -1.0, -0.5, 0.75])
    z = torch.randn(256, trainer.G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = _colour_stats(trainer.G(z))
    history = [trainer.step() for _ in range(250)]
    with torch.no_grad():
        after = _colour_stats(trainer.G(z))
    start, end = (before - target).abs(), (after - target).abs()
    # measured (seed 0, 250 steps): mean colour (-0.61, -0.76, -0.02) -> (0.91, -0.86, -0.87),
    # L1 distance to the data's 1.82 -> 0.92, red fraction 0.21 -> 1.0 (mostly the major mode)
    assert float(end[:3].sum()) < 0.6 * float(start[:3].sum()), (before, after)
    assert float(after[3]) > float(before[3]) + 0.3, (before, after)
    late = history[-50:]
    assert np.mean([h["D_real"] for h in late]) > np.mean([h["D_fake"] for h in late])


def test_older_compact_states_with_second_moments_still_expand(tmp_path) -> None:
    """Compact states committed before moments were dropped kept Adam's second moments (and the
    classifier's first ones) in bfloat16: they expand to float32, missing first moments zero."""
    from training.train_gan import _expand_optimizer

    torch.set_num_threads(1)
    _run(tmp_path / "full", kimg=0.016)
    adam = load_training_state(tmp_path / "full" / "state.pt")["G_opt"]
    older = {"param_groups": adam["param_groups"],
             "state": {k: {"step": v["step"], "exp_avg_sq": v["exp_avg_sq"].bfloat16()}
                       for k, v in adam["state"].items()}}
    expanded = _expand_optimizer(older)
    assert expanded["state"].keys() == adam["state"].keys() and expanded["state"]
    for key, value in adam["state"].items():
        got = expanded["state"][key]
        assert got["step"] == value["step"] and not got["exp_avg"].any()
        torch.testing.assert_close(got["exp_avg_sq"], value["exp_avg_sq"].bfloat16().float(),
                                   atol=0, rtol=0)
