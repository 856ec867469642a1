"""Stand-in methods, datasets and metrics for the bench tests (fast, independent of real ones).
The toy bundles bring their own metrics provider (``Bundle.metrics``: ``ToyMetrics``).

``register_toys()`` adds them to the real registries and ``unregister_toys()`` removes them, so
other tests never see them. ``bench_toy_plugin`` registers them on import (for subprocesses).

Environment knobs read by the toy method (for resume tests):
- ``TOY_COUNTER``: a file that gets one line per training call ("seed").
- ``TOY_BLOCK_SEED`` + ``TOY_READY``: training of that seed writes TOY_READY then sleeps.
- ``TOY_FAIL_SEED``: training of that seed raises RuntimeError.
- ``TOY_BLOCK_METRICS``: a file; scoring writes its PID there and sleeps unless it exists (so a
  requeued or resumed attempt goes on).
- ``TOY_THREADS``: a file that gets one line per training call ("seed torch-threads").
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.planning.bundles import BUNDLES
from datasets.base import GroundTruthData
from methods.base import METHODS, register_method
from metrics import registry
from metrics.registry import describe
from models.bundle import Bundle

TOY_METHODS = ("toy-identity", "toy-nan", "toy-optout", "toy-needs-generator")
TOY_BUNDLES = ("toy-data", "toy-missing", "toy-data-with-generator")


class ToyData(GroundTruthData):
    """Two factors (3 x 4); an observation is a 1 x 2 x 1 image holding the factor indices."""

    name = "toy-data"

    @property
    def factor_names(self) -> tuple[str, ...]:
        return ("a", "b")

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return (3, 4)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return (1, 2, 1)

    def observations(self, factors: np.ndarray) -> np.ndarray:
        factors = self.check_factors(factors)
        return factors.reshape(-1, 1, 2, 1).astype(np.uint8)


@dataclass(frozen=True)
class ToyConfig:
    scale: float = 1.0
    steps: int = 10
    mix: float = 0.0  # 0 = perfectly disentangled codes


class ToyEncoder:
    """codes = scale * (mixed factors) + a seed-dependent offset."""

    def __init__(self, scale: float, mix: float, offset: float) -> None:
        self.scale, self.mix, self.offset = scale, mix, offset

    def represent(self, observations: np.ndarray) -> np.ndarray:
        x = observations.reshape(len(observations), -1).astype(np.float64)
        mixed = np.stack([x[:, 0] + self.mix * x[:, 1], x[:, 1] + self.mix * x[:, 0]], axis=1)
        return self.scale * mixed + self.offset

    def save(self, directory: Path) -> None:
        (Path(directory) / "toy.json").write_text(
            json.dumps({"scale": self.scale, "mix": self.mix, "offset": self.offset}))


def load_toy_encoder(directory: Path) -> ToyEncoder:
    data = json.loads((Path(directory) / "toy.json").read_text())
    return ToyEncoder(data["scale"], data["mix"], data["offset"])


def _train(bundle: Any, config: ToyConfig, seed: int, progress: Any = None) -> ToyEncoder:
    counter = os.environ.get("TOY_COUNTER")
    if counter:
        with open(counter, "a") as handle:
            handle.write(f"{seed}\n")
    threads_log = os.environ.get("TOY_THREADS")
    if threads_log:
        import torch

        with open(threads_log, "a") as handle:
            handle.write(f"{seed} {torch.get_num_threads()}\n")
    if os.environ.get("TOY_FAIL_SEED") == str(seed):
        raise RuntimeError(f"toy training failed for seed {seed}")
    if os.environ.get("TOY_BLOCK_SEED") == str(seed):
        Path(os.environ["TOY_READY"]).write_text("ready")
        time.sleep(120)
    rng = np.random.default_rng(seed)
    for step in range(config.steps):
        if progress is not None:
            progress(step + 1, config.steps, {"loss": 1.0 / (step + 1)})
    return ToyEncoder(config.scale, config.mix, float(rng.normal()))


class ToyMetrics:
    """Cheap stand-in for ``metrics.sampling``: |corr| of code i with factor i, plus rng jitter."""

    @staticmethod
    def metric_settings(profile: str) -> dict[str, Any]:
        return {"num_samples": 64 if profile == "quick" else 256}

    @staticmethod
    def representation_metrics(data: GroundTruthData, represent: Any, rng: np.random.Generator,
                               profile: str) -> dict[str, float]:
        block = os.environ.get("TOY_BLOCK_METRICS")
        if block and not Path(block).exists():
            Path(block).write_text(str(os.getpid()))
            time.sleep(120)
        n = ToyMetrics.metric_settings(profile)["num_samples"]
        factors, observations = data.sample(n, rng)
        codes = represent(observations)
        corr = [abs(np.corrcoef(codes[:, i], factors[:, i])[0, 1]) for i in range(2)]
        score = float(np.mean(corr))
        return {"mig": score, "toy_jitter": float(rng.uniform())}


class NanEncoderMetrics(ToyMetrics):
    pass


def register_toys() -> None:
    """Add the toy datasets, methods and metric provider (idempotent)."""
    if "toy-data" not in BUNDLES:
        BUNDLES.add("toy-data", _toy_bundle, description="toy: two factors, identity")
        BUNDLES.add("toy-missing", _missing_bundle, description="toy: file never there")
        BUNDLES.add("toy-data-with-generator", _toy_bundle_with_generator,
                    description="toy: the toy data plus a (never loaded) generator")
    if "toy-identity" not in METHODS:
        common = dict(kind="representation", config_cls=ToyConfig, requires=("ground_truth",),
                      load_output=load_toy_encoder, profiles={"quick": {"steps": 4}})
        register_method("toy-identity", description="toy: codes are the factors", **common)(
            _train)
        register_method("toy-nan", description="toy: NaN codes", **common)(_train_nan)
        register_method("toy-optout", description="toy: not in default grids", default=False,
                        **common)(_train)
        register_method("toy-needs-generator", description="toy: needs a generator",
                        kind="directions", config_cls=ToyConfig, requires=("generator",))(_train)
    # the provider's own key ("mig" is the registered metric's): metadata, so that it is checked
    describe("toy_jitter", "toy: a uniform draw from the metrics' generator", tolerance=0.5)


def unregister_toys() -> None:
    for name in TOY_METHODS:
        METHODS._entries.pop(name, None)
    for name in TOY_BUNDLES:
        BUNDLES._entries.pop(name, None)
    registry._DESCRIBED.pop("toy_jitter", None)


def _toy_bundle(data_dir: str | None = None) -> Bundle:
    data = ToyData()
    return Bundle("toy-data", ground_truth=data, identity={"ground_truth": data.identity()},
                  metrics=ToyMetrics)


def _toy_bundle_with_generator(data_dir: str | None = None) -> Bundle:
    data = ToyData()
    return Bundle("toy-data-with-generator", ground_truth=data,
                  load_generator=lambda: None,
                  identity={"ground_truth": data.identity(), "generator": {"toy": 1}},
                  metrics=ToyMetrics)


def _missing_bundle(data_dir: str | None = None) -> Bundle:
    raise FileNotFoundError(f"toy.h5 not found in {data_dir or '$BENCH_DATA'}")


def _train_nan(bundle: Any, config: ToyConfig, seed: int, progress: Any = None) -> ToyEncoder:
    return ToyEncoder(float("nan"), 0.0, 0.0)
