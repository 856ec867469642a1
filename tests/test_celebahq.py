"""The ``celebahq40`` predictor: NVIDIA's CelebA-HQ classifier pickles rebuilt in PyTorch.

Fixtures are TF network pickles in the variable layout of the real files
(``celebahq_fixtures``, derived from NVlabs/stylegan). Fidelity is checked two ways:

* against NVIDIA's own PyTorch port (NVlabs/DiffPure ``classifiers/``): golden logits of DiffPure's
  code on the same seeded weights (``golden/celebahq_diffpure.npz``, written by
  ``golden/make_golden_celebahq.py``), max abs logit difference <= 1e-4, at the real 256-px layout
  (through DiffPure's downsampling and softmax) and at two small ones;
* against ``reference_logits`` below, a test-only re-statement of ``D_paper`` at lod 0 computed
  straight from the TF variables (3x3 conv then 2x2 mean pool where the TF code fuses them, as
  DiffPure does), for the separate-downscale variant that DiffPure does not cover.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from celebahq_fixtures import (
    d_paper_layout,
    random_images,
    random_variables,
    write_classifier_pickle,
)
from toy_generators import LinearToyGenerator

from bench.flows.directions import attribute_predict
from metrics.discovery import (
    DiscoveryConfig,
    attribute_changes,
    discovery_metrics,
    score_matrix,
)
from models.celebahq import (
    CELEBAHQ40_ATTRIBUTES,
    CELEBAHQ40_FILES,
    CelebAHQ40Predictor,
    ClassifierArchitecture,
    box_downsample,
    load_celebahq40,
    load_celebahq_classifier,
    paper_fmaps,
)
from models.directions import Directions
from models.stylegan2.foreign import CheckpointFormatError, UnsafePickleError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "celebahq_diffpure.npz"
TOLERANCE = 1e-4


def reference_logits(variables: dict[str, np.ndarray], images: torch.Tensor,
                     fused: bool = True) -> torch.Tensor:
    """D_paper at lod 0 from TF variables: equalised-lr layers (weight * gain / sqrt(fan_in)),
    bias, leaky ReLU 0.2; Conv1_down = 3x3 conv, bias, 2x2 mean, act; Conv1 (separate) = conv,
    bias, act, then the 2x2 mean; Dense1 with gain 1."""
    def layer(x: torch.Tensor, scope: str, gain: float = math.sqrt(2)) -> torch.Tensor:
        w = torch.from_numpy(variables[f"{scope}/weight"])
        b = torch.from_numpy(variables[f"{scope}/bias"])
        fan_in = math.prod(w.shape[:-1])
        if w.ndim == 2:
            return x @ (w * (gain / math.sqrt(fan_in))) + b
        w = w.permute(3, 2, 0, 1) * (gain / math.sqrt(fan_in))
        return F.conv2d(x, w, padding=w.shape[-1] // 2) + b[None, :, None, None]

    def act(x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, 0.2 * x)

    x = act(layer(images, "FromRGB_lod0"))
    r = images.shape[-1]
    while r >= 8:
        x = act(layer(x, f"{r}x{r}/Conv0"))
        if fused:
            x = act(F.avg_pool2d(layer(x, f"{r}x{r}/Conv1_down"), 2))
        else:
            x = F.avg_pool2d(act(layer(x, f"{r}x{r}/Conv1")), 2)
        r //= 2
    x = act(layer(x, "4x4/Conv"))
    x = act(layer(x.reshape(len(x), -1), "4x4/Dense0"))
    return layer(x, "4x4/Dense1", gain=1.0)


def golden() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    data = np.load(GOLDEN)
    return {k: data[k] for k in data.files if k != "info"}, json.loads(str(data["info"]))


def case_pickle(tmp_path: Path, case: dict[str, Any], **layout: Any
                ) -> tuple[Path, dict[str, np.ndarray]]:
    variables = random_variables(
        d_paper_layout(case["resolution"], case["fmap_base"], case["fmap_max"], **layout),
        case["weight_seed"])
    path = write_classifier_pickle(tmp_path / "classifier.pkl", variables,
                                   {"num_channels": 3, "resolution": case["resolution"],
                                    "label_size": 0})
    return path, dict(variables)


# -- layout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [
    {}, {"resolution": 16, "fmap_base": 64, "fmap_max": 32},
    {"resolution": 32, "fmap_base": 128, "fmap_max": 24, "fused": False},
    {"resolution": 4, "fmap_base": 64, "fmap_max": 16},
])
def test_expected_variables_are_d_paper_layout(settings: dict[str, Any]) -> None:
    layout = d_paper_layout(**settings)
    arch = ClassifierArchitecture(settings.get("resolution", 256),
                                  paper_fmaps(settings.get("resolution", 256),
                                              settings.get("fmap_base", 8192),
                                              fmap_max=settings.get("fmap_max", 512)),
                                  settings.get("fused", True))
    expected = {**arch.variable_shapes(), **arch.unused_shapes()}
    assert sorted(expected.items()) == sorted(layout)


def test_real_architecture_sizes() -> None:
    arch = ClassifierArchitecture()
    assert arch.fmaps == (512, 512, 512, 512, 512, 256, 128, 64)
    shapes = arch.variable_shapes()
    assert shapes["FromRGB_lod0/weight"] == (1, 1, 3, 64)
    assert shapes["256x256/Conv1_down/weight"] == (3, 3, 64, 128)
    assert shapes["4x4/Dense0/weight"] == (8192, 512)
    assert shapes["4x4/Dense1/weight"] == (512, 1)
    assert sum(math.prod(s) for s in shapes.values()) == 23_038_017


# -- fidelity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny16", "clamped32"])
def test_matches_diffpure_small_layouts(tmp_path: Path, name: str) -> None:
    logits, info = golden()
    case = info["cases"][name]
    path, variables = case_pickle(tmp_path, case)
    net = load_celebahq_classifier(path)
    assert net.arch.fmaps == paper_fmaps(case["resolution"], case["fmap_base"],
                                         fmap_max=case["fmap_max"])
    images = torch.from_numpy(random_images(case["n"], case["size"], case["image_seed"]))
    with torch.no_grad():
        ours = net(images)
    assert np.abs(ours.numpy() - logits[f"{name}/logits"]).max() <= TOLERANCE
    torch.testing.assert_close(ours, reference_logits(variables, images), rtol=0, atol=1e-5)
    assert logits[f"{name}/logits"].std() > 10 * TOLERANCE  # the images are told apart


@pytest.mark.slow
def test_matches_diffpure_real_layout_with_downsampling(tmp_path: Path) -> None:
    """The 256-px layout of the real files (23 M parameters), 512-px images box-downsampled,
    logits [l, -l] and DiffPure's softmax column."""
    logits, info = golden()
    case = info["cases"]["paper256"]
    path, _ = case_pickle(tmp_path, case)
    predictor = CelebAHQ40Predictor([load_celebahq_classifier(path)], ["male"], chunk=1)
    images = torch.from_numpy(random_images(case["n"], case["size"], case["image_seed"]))
    with torch.no_grad():
        pair = predictor(images)[0]
        proba = predictor.predict_proba(images)[0]
    assert np.abs(pair.numpy() - logits["paper256/logits"]).max() <= TOLERANCE
    assert np.abs(proba[:, 1].numpy() - logits["paper256/softmaxed"]).max() <= TOLERANCE


def test_separate_downscale_variant(tmp_path: Path) -> None:
    case = {"resolution": 16, "fmap_base": 64, "fmap_max": 32, "weight_seed": 5}
    path, variables = case_pickle(tmp_path, case, fused=False)
    net = load_celebahq_classifier(path)
    assert not net.arch.fused_scale
    images = torch.from_numpy(random_images(4, 16, 6))
    with torch.no_grad():
        ours = net(images)
    torch.testing.assert_close(ours, reference_logits(variables, images, fused=False),
                               rtol=0, atol=1e-5)
    as_fused = {k.replace("/Conv1/", "/Conv1_down/"): v for k, v in variables.items()}
    assert (ours - reference_logits(as_fused, images)).abs().max() > 1e-3  # the order matters


def test_build_source_never_runs_and_unused_layers_are_ignored(tmp_path: Path) -> None:
    """The stored build source is dropped unread; ``lod`` and FromRGB_lod1... (progressive
    growing only) may be present with any values, or absent; pickle protocols 2-4 all load."""
    variables = random_variables(d_paper_layout(16, 64, 32), 7)
    marker = tmp_path / "ran"
    plain = write_classifier_pickle(tmp_path / "plain.pkl", variables, {"resolution": 16},
                                    module_src=f"open({str(marker)!r}, 'w').write('executed')\n")

    def unused(name: str) -> bool:
        return name == "lod" or (name.startswith("FromRGB_lod") and
                                 not name.startswith("FromRGB_lod0/"))

    noisy = [(k, v * 1e3 if unused(k) and k != "lod" else v) for k, v in variables]
    bare = [(k, v) for k, v in variables if not unused(k)]
    images = torch.from_numpy(random_images(3, 16, 8))
    outs = []
    with torch.no_grad():
        for protocol, (vs, kwargs) in enumerate([(variables, {"resolution": 16}), (noisy, {}),
                                                 (bare, {"num_channels": 3})], start=2):
            path = write_classifier_pickle(tmp_path / f"{protocol}.pkl", vs, kwargs,
                                           protocol=protocol)
            outs.append(load_celebahq_classifier(path)(images))
        outs.append(load_celebahq_classifier(plain)(images))
    assert not marker.exists()
    for out in outs[1:]:
        assert torch.equal(out, outs[0])


# -- the predictor ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forty(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The 40 file names of NVIDIA's release, each a tiny 16-px classifier of its own seed."""
    folder = tmp_path_factory.mktemp("celebahq40")
    return [write_classifier_pickle(folder / name,
                                    random_variables(d_paper_layout(16, 32, 16), 100 + i),
                                    {"resolution": 16})
            for i, name in enumerate(CELEBAHQ40_FILES)]


def test_predictor_interface(forty: list[Path]) -> None:
    predictor = load_celebahq40(list(reversed(forty)), chunk=3)
    assert predictor.factor_names == CELEBAHQ40_ATTRIBUTES
    assert predictor.factor_sizes == (2,) * 40
    assert CELEBAHQ40_FILES[5] == "celebahq-classifier-05-5-o-clock-shadow.pkl"
    images = torch.from_numpy(random_images(7, 32, 9))  # 32 px: 2x2 box downsampling to 16
    with torch.no_grad():
        logits = predictor.logits(images)
        proba = predictor.predict_proba(images)
        pairs = predictor(images)
        classes = predictor.predict(images)
    assert logits.shape == (7, 40) and len(proba) == len(pairs) == 40
    small = images.reshape(7, 3, 16, 2, 16, 2).mean(dim=(3, 5))
    torch.testing.assert_close(box_downsample(images, 16), small, rtol=0, atol=0)
    male = load_celebahq_classifier(forty[0])
    with torch.no_grad():
        torch.testing.assert_close(logits[:, 0], male(small)[:, 0], rtol=0, atol=1e-6)
    for a in (0, 17, 39):
        torch.testing.assert_close(pairs[a], torch.stack([logits[:, a], -logits[:, a]], 1))
        torch.testing.assert_close(proba[a], torch.softmax(pairs[a], dim=1))
        torch.testing.assert_close(proba[a][:, 0], torch.sigmoid(2 * logits[:, a]))
    assert torch.equal(classes, torch.stack([p.argmax(dim=1) for p in proba], dim=1))
    predictor.chunk = 16
    with torch.no_grad():
        torch.testing.assert_close(predictor.logits(images), logits, rtol=0, atol=1e-6)
    grad_images = images[:2].clone().requires_grad_(True)
    predictor.predict_proba(grad_images)[3][:, 0].sum().backward()
    assert grad_images.grad is not None and grad_images.grad.abs().sum() > 0


def test_discovery_metrics_take_it_unchanged(forty: list[Path]) -> None:
    """The directions flow's adapter and the discovery sampler: 40 attributes, each change the
    total variation of its probability pair."""
    predictor = load_celebahq40(forty)
    predict, names = attribute_predict(predictor)
    assert names == list(CELEBAHQ40_ATTRIBUTES)
    generator = LinearToyGenerator(w_dim=8, num_ws=2, resolution=32, img_channels=3, seed=3)
    directions = Directions.from_w(torch.eye(8)[:3], num_ws=2, scale=torch.full((3,), 2.0))
    config = DiscoveryConfig(num_samples=6, batch_size=4, num_directions=3)
    r = score_matrix(generator, directions, predict, config)
    assert r["absdiff"].shape == r["meandiff"].shape == (3, 40)
    assert np.all(r["absdiff"] >= 0) and np.all(r["absdiff"] <= 1) and r["absdiff"].max() > 0
    assert set(discovery_metrics(r)) >= {"disentanglement_score", "attribute_count"}
    ws = generator.mapping(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)))
    ws = ws[:, None].repeat(1, 2, 1)
    delta = directions.scale[0] * directions.vectors[0]
    plus = predict(generator.synthesize(ws + delta))
    minus = predict(generator.synthesize(ws - delta))
    assert len(plus) == 40 and plus[0].shape == (4, 2)
    changes, _ = attribute_changes(plus, minus)  # a pair's total variation is |p0+ - p0-|
    for a in (0, 39):
        np.testing.assert_allclose(changes[:, a], np.abs(plus[a][:, 0] - minus[a][:, 0]),
                                   rtol=1e-6, atol=1e-6)


def test_image_checks(forty: list[Path]) -> None:
    predictor = CelebAHQ40Predictor([load_celebahq_classifier(forty[0])], ["male"])
    for bad in (torch.zeros(2, 3, 24, 24), torch.zeros(2, 3, 8, 8), torch.zeros(2, 1, 16, 16),
                torch.zeros(2, 3, 16, 32), torch.zeros(3, 16, 16)):
        with pytest.raises(ValueError, match=r"expects float images NCHW \(n, 3, s, s\)"):
            predictor.predict_proba(bad)
    with pytest.raises(ValueError, match="expects float images in"):
        predictor.predict_proba(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match="one distinct name per classifier"):
        CelebAHQ40Predictor([predictor.classifiers[0]] * 2, ["a", "a"])


# -- bad input --------------------------------------------------------------------------------


def _tiny(**changes: Any) -> list[tuple[str, Any]]:
    return random_variables(d_paper_layout(16, 64, 32, **changes), 11)


def _edit(name: str, value: Any) -> list[tuple[str, Any]]:
    return [(k, value if k == name else v) for k, v in _tiny()]


class _Payload:
    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


BAD_VARIABLES = {
    "missing": ([(k, v) for k, v in _tiny() if k != "8x8/Conv0/bias"],
                r"do not match a 16-px ProGAN attribute classifier; missing: 8x8/Conv0/bias; "
                r"unknown: none; wrong shapes: none$"),
    "unknown": (_tiny() + [("4x4/Dense2/weight", np.zeros((1, 1), np.float32))],
                r"missing: none; unknown: 4x4/Dense2/weight; wrong shapes: none$"),
    "labels": (_tiny(labels=1), r"wrong shapes: 4x4/Dense1/weight \(32, 2\) \(expected "
                                r"\(32, 1\)\), 4x4/Dense1/bias \(2,\) \(expected \(1,\)\)$"),
    "wrong-shape": (_edit("16x16/Conv0/weight", np.zeros((3, 3, 8, 9), np.float32)),
                    r"wrong shapes: 16x16/Conv0/weight \(3, 3, 8, 9\) \(expected \(3, 3, 8, 8\)"),
    "mbstd": (_tiny(mbstd=True), r"4x4/Conv takes 32 \+ 1 channels, a minibatch-stddev layer"),
    "lod": (_edit("lod", np.float32(1.0)), r"lod = 1; only a fully grown classifier"),
    "nan": (_edit("4x4/Conv/bias", np.full(32, np.nan, np.float32)),
            r"TF variable '4x4/Conv/bias' is not finite floating point \(float32\)$"),
    "integer": (_edit("4x4/Conv/bias", np.zeros(32, np.int64)), r"not finite floating point"),
    "no-conv-down": ([(k, v) for k, v in _tiny() if not k.startswith("8x8/Conv1_down/")],
                     r"missing: 8x8/Conv1_down/weight, 8x8/Conv1_down/bias; unknown: none"),
    "mixed": ([(k.replace("8x8/Conv1_down", "8x8/Conv1"), v) for k, v in _tiny()],
              r"blocks mix fused \(Conv1_down\) and separate \(Conv1\) downscaling"),
    "not-array": (_edit("4x4/Dense1/bias", "zero"),
                  r"TF variable '4x4/Dense1/bias' is a str, not a numpy array$"),
    "generator": ([("mapping/Dense0/weight", np.zeros((4, 4), np.float32))],
                  r"do not describe a ProGAN attribute classifier \(D_paper\): expected "
                  r"'FromRGB_lod0/weight'.*found mapping/Dense0/weight$"),
}


@pytest.mark.parametrize("case", sorted(BAD_VARIABLES))
def test_variables_that_do_not_match_are_one_line(tmp_path: Path, case: str) -> None:
    variables, message = BAD_VARIABLES[case]
    path = write_classifier_pickle(tmp_path / f"{case}.pkl", variables, {"resolution": 16})
    with pytest.raises(CheckpointFormatError) as info:
        load_celebahq_classifier(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}: ")
    assert re.search(message, text), text


def test_unreadable_and_foreign_pickles(tmp_path: Path) -> None:
    good = write_classifier_pickle(tmp_path / "good.pkl", _tiny(), {"resolution": 16})

    def refused(path: Path, message: str, kind: type[Exception] = CheckpointFormatError) -> None:
        with pytest.raises(kind) as info:
            load_celebahq_classifier(path)
        assert "\n" not in str(info.value) and str(info.value).startswith(f"{path}: ")
        assert re.search(message, str(info.value)), str(info.value)

    cut = tmp_path / "cut.pkl"
    cut.write_bytes(good.read_bytes()[:5000])
    refused(cut, r"cannot be read as a CelebA-HQ attribute classifier pickle \(TensorFlow "
                 r"dnnlib network\) \(")
    (tmp_path / "junk.pkl").write_bytes(b"\x00not a pickle" * 40)
    refused(tmp_path / "junk.pkl", "cannot be read as a CelebA-HQ attribute classifier pickle")
    marker = tmp_path / "ran"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Payload(os.system, (f"touch {marker}",))))
    refused(tmp_path / "evil.pkl", r"refusing to load global '(posix|nt)\.system'",
            UnsafePickleError)
    assert not marker.exists()
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"D": 1}))
    refused(tmp_path / "dict.pkl", r"expected one TF network \(dnnlib\.tflib\.network\.Network\);"
                                   r" found a dict$")
    clash = write_classifier_pickle(tmp_path / "clash.pkl", _tiny(),
                                    {"resolution": 256, "fused_scale": False})
    refused(clash, r"stored arguments disagree with its variables: resolution=256 \(variables: "
                   r"16\), fused_scale=False \(variables: True\)$")
    with pytest.raises(FileNotFoundError, match="no such NVIDIA pickle file"):
        load_celebahq_classifier(tmp_path / "absent.pkl")


def test_celebahq40_needs_the_forty_named_files(forty: list[Path], tmp_path: Path) -> None:
    def refused(paths: list[Path], message: str) -> None:
        with pytest.raises(CheckpointFormatError) as info:
            load_celebahq40(paths)
        assert "\n" not in str(info.value) and re.search(message, str(info.value)), info.value

    refused(forty[:39], r"missing: celebahq-classifier-39-wearing-necktie\.pkl; not a classifier"
                        r" file name: none; given twice: none$")
    refused(forty + [forty[3]], r"missing: none; .*given twice: celebahq-classifier-03-wavy-hair")
    stray = tmp_path / "male.pkl"
    refused(forty[1:] + [stray], r"missing: celebahq-classifier-00-male\.pkl; not a classifier "
                                 rf"file name: {re.escape(str(stray))};")
    other = tmp_path / CELEBAHQ40_FILES[0]
    write_classifier_pickle(other, random_variables(d_paper_layout(8, 32, 16), 1),
                            {"resolution": 8})
    refused([other] + forty[1:], r"celebahq40: the classifiers take different resolutions "
                                 r"\[8, 16\]")


def test_check_command(forty: list[Path], tmp_path: Path) -> None:
    bad = write_classifier_pickle(tmp_path / "bad.pkl", _tiny(mbstd=True), {"resolution": 16})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ok = subprocess.run([sys.executable, "-m", "models.celebahq", "check", str(forty[0].parent)],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    rows = [json.loads(line) for line in ok.stdout.splitlines()]
    assert [row["attribute"] for row in rows] == list(CELEBAHQ40_ATTRIBUTES)
    assert rows[0]["resolution"] == 16 and rows[0]["fmaps"] == [16, 16, 8, 4]
    failed = subprocess.run([sys.executable, "-m", "models.celebahq", "check", str(forty[0]),
                             str(bad)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert failed.returncode == 2
    assert failed.stderr.count("\n") == 1 and failed.stderr.startswith(f"error: {bad}: 4x4/Conv")
    assert len(failed.stdout.splitlines()) == 1
