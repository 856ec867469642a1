"""A user's attribute predictor: a saved network with a JSON beside it that says what it reads and
what it outputs, so any network a researcher has can score directions.

The network is ``NAME.pt2`` (``torch.export.save`` of an exported program, the format PyTorch
recommends) or ``NAME.pt`` (``torch.jit.save``, TorchScript, which PyTorch has deprecated but
many existing models are in); either maps float NCHW images to logits or scores. Beside it,
``NAME.json``::

    {"format": "disentangle-bench-predictor", "version": 1,
     "input": {"resolution": 256, "channels": 3, "range": [0, 1],
               "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
     "outputs": [{"name": "smiling", "kind": "binary"},
                 {"name": "shape", "kind": "classes", "classes": 4},
                 {"name": "age", "kind": "score"}]}

The module returns one tensor ``[n, W]`` whose columns are the outputs in order (``binary``:
one logit l, read as the probability group softmax([l, -l]) as NVIDIA's attribute classifiers
are; ``classes``: c logits, read through a softmax; ``score``: one number, used as it is), or a
tuple / list of one tensor per output. Images arrive from the generator in [-1, 1] at its own
size; they are area-resized to ``resolution`` (box filter when shrinking by an integer factor),
mapped to ``range`` and normalised by ``mean`` / ``std`` before the module sees them.

Neither format runs Python from the file beyond its saved graph; load only files you trust as you
would any model. ``export_predictor`` writes either from a module. The discovery metrics read the
result through ``predict_proba`` and ``factor_names``, as they read the suite's own predictor
(``models.predictor``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import DataError
from core.io import atomic_path, atomic_write_json

FORMAT = "disentangle-bench-predictor"
VERSION = 1
KINDS = ("binary", "classes", "score")


class PredictorFormatError(DataError):
    """A predictor file or its JSON that does not follow the format (one line); a DataError,
    and so a ValueError."""


@dataclass(frozen=True)
class Output:
    """One attribute: its name, kind and width in the module's output columns."""

    name: str
    kind: str
    classes: int = 1

    @property
    def columns(self) -> int:
        return self.classes if self.kind == "classes" else 1

    @property
    def group_width(self) -> int:
        """Width of its probability group for the discovery metrics (a score is width 1)."""
        return {"binary": 2, "classes": self.classes, "score": 1}[self.kind]


@dataclass(frozen=True)
class InputSpec:
    resolution: int
    channels: int = 3
    low: float = -1.0
    high: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


def _spec(info: Any, where: str) -> tuple[InputSpec, tuple[Output, ...]]:
    """The input and outputs of a predictor JSON, every field checked (one-line errors)."""
    def bad(problem: str) -> PredictorFormatError:
        return PredictorFormatError(f"{where}: {problem} (see models/user_predictor.py)")

    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise bad(f"not a predictor description: expected \"format\": \"{FORMAT}\"")
    if info.get("version") != VERSION:
        raise bad(f"version {info.get('version')!r}: this release reads version {VERSION}")
    given = info.get("input")
    if not isinstance(given, dict) or not isinstance(given.get("resolution"), int) \
            or given["resolution"] < 1:
        raise bad("'input.resolution' must be a positive integer")
    channels = given.get("channels", 3)
    if channels not in (1, 3):
        raise bad(f"'input.channels' must be 1 or 3, got {channels!r}")
    low, high = given.get("range", [-1, 1])
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise bad(f"'input.range' must be [low, high] with low < high, got {given.get('range')}")
    stats = {}
    for key in ("mean", "std"):
        value = given.get(key)
        if value is not None and (not isinstance(value, list) or len(value) != channels
                                  or not all(isinstance(v, (int, float)) for v in value)):
            raise bad(f"'input.{key}' must be a list of {channels} numbers")
        stats[key] = tuple(float(v) for v in value) if value is not None else None
    if stats["std"] is not None and min(stats["std"]) <= 0:
        raise bad("'input.std' must be positive")
    outputs = info.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        raise bad("'outputs' must be a non-empty list")
    parsed = []
    for index, out in enumerate(outputs):
        if not isinstance(out, dict) or not isinstance(out.get("name"), str) \
                or out.get("kind") not in KINDS:
            raise bad(f"output {index} must have a 'name' and a 'kind' in {', '.join(KINDS)}")
        classes = out.get("classes", 1)
        if out["kind"] == "classes" and (not isinstance(classes, int) or classes < 2):
            raise bad(f"output {out['name']!r}: 'classes' must be an integer >= 2")
        parsed.append(Output(out["name"], out["kind"], classes if out["kind"] == "classes" else 1))
    names = [o.name for o in parsed]
    if len(set(names)) != len(names):
        raise bad("output names must be distinct")
    return InputSpec(given["resolution"], channels, float(low), float(high), stats["mean"],
                     stats["std"]), tuple(parsed)


class UserPredictor(nn.Module):
    """A user's saved network behind the suite's predictor interface."""

    def __init__(self, module: nn.Module, spec: InputSpec,
                 outputs: tuple[Output, ...], source: str = "") -> None:
        super().__init__()
        self.module = module
        self.spec = spec
        self.outputs = outputs
        self.source = source

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return tuple(o.group_width for o in self.outputs)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Generator images NCHW in [-1, 1] -> the module's input (size, range, normalisation)."""
        spec = self.spec
        if images.ndim != 4 or images.shape[1] != spec.channels:
            raise ValueError(f"predictor {self.source} expects NCHW images with {spec.channels} "
                             f"channel(s), got shape {tuple(images.shape)}")
        x = images.float()
        if x.shape[-1] != spec.resolution or x.shape[-2] != spec.resolution:
            x = F.interpolate(x, size=(spec.resolution, spec.resolution), mode="area")
        x = (x + 1) / 2 * (spec.high - spec.low) + spec.low
        if spec.mean is not None:
            x = x - torch.tensor(spec.mean).view(1, -1, 1, 1)
        if spec.std is not None:
            x = x / torch.tensor(spec.std).view(1, -1, 1, 1)
        return x

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Raw outputs per attribute (logits for binary and classes, the score itself)."""
        raw = self.module(self.prepare(images))
        columns = [o.columns for o in self.outputs]
        if isinstance(raw, (tuple, list)):
            parts = [p.reshape(len(images), -1) for p in raw]
            if [p.shape[1] for p in parts] != columns:
                raise ValueError(f"predictor {self.source} returned widths "
                                 f"{[p.shape[1] for p in parts]}, its JSON declares {columns}")
            return parts
        if raw.ndim != 2 or raw.shape[1] != sum(columns):
            raise ValueError(f"predictor {self.source} returned shape {tuple(raw.shape)}, its "
                             f"JSON declares {sum(columns)} output column(s)")
        return list(torch.split(raw, columns, dim=1))

    def predict_proba(self, images: torch.Tensor) -> list[torch.Tensor]:
        """One group per attribute: softmax([l, -l]) for binary, softmax(logits) for classes,
        the score as a width-1 group."""
        groups = []
        for out, raw in zip(self.outputs, self(images), strict=True):
            if out.kind == "binary":
                groups.append(torch.softmax(torch.cat([raw, -raw], dim=1), dim=1))
            elif out.kind == "classes":
                groups.append(torch.softmax(raw, dim=1))
            else:
                groups.append(raw)
        return groups


def description_path(path: str | os.PathLike[str]) -> Path:
    """The JSON beside a predictor file."""
    return Path(path).with_suffix(".json")


def _load_network(path: Path) -> nn.Module:
    """``.pt2``: an exported program (``torch.export.load``); else TorchScript."""
    if path.suffix == ".pt2":
        return torch.export.load(str(path)).module()
    with warnings.catch_warnings():  # the user chose TorchScript; its deprecation is PyTorch's
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


def load_user_predictor(path: str | os.PathLike[str]) -> UserPredictor:
    """Load ``path`` (``.pt2`` exported program or TorchScript) and the JSON beside it; a
    missing, foreign or mismatched file is a one-line ``PredictorFormatError`` (a ValueError)
    naming it."""
    path = Path(path)
    meta = description_path(path)
    if not meta.is_file():
        raise PredictorFormatError(f"predictor {path}: its description {meta.name} is missing "
                                   "beside it (see models/user_predictor.py)")
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PredictorFormatError(f"predictor {path}: {meta.name} is not valid JSON") from None
    spec, outputs = _spec(info, f"predictor description {meta}")
    try:
        module = _load_network(path)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a foreign file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        kind = "an exported program (.pt2)" if path.suffix == ".pt2" else "a TorchScript file"
        raise PredictorFormatError(f"predictor {path}: not {kind} ({first})") from None
    predictor = UserPredictor(module, spec, outputs, source=str(path))
    probe = torch.zeros(1, spec.channels, spec.resolution, spec.resolution)
    try:
        with torch.no_grad():
            predictor(probe * 0)  # one image through: the widths must match the JSON
    except ValueError as err:
        raise PredictorFormatError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - a scripted graph raises its own errors
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise PredictorFormatError(f"predictor {path}: fails on a {spec.resolution}-px image "
                                   f"({first})") from None
    return predictor.requires_grad_(False)


def export_predictor(module: nn.Module, path: str | os.PathLike[str], *, resolution: int,
                     outputs: list[dict[str, Any]], channels: int = 3,
                     value_range: tuple[float, float] = (-1.0, 1.0),
                     mean: list[float] | None = None, std: list[float] | None = None) -> Path:
    """Write ``module`` (it maps the prepared images to the output columns) plus its JSON
    description; returns ``path``. A ``.pt2`` path gets an exported program with a dynamic
    batch size (``torch.export``; tens of seconds on a CPU), any other TorchScript traced on
    one image."""
    path = Path(path)
    info = {"format": FORMAT, "version": VERSION,
            "input": {"resolution": resolution, "channels": channels,
                      "range": list(value_range), "mean": mean, "std": std},
            "outputs": outputs}
    _spec(info, str(description_path(path)))  # refuse a description this loader would refuse
    example = torch.zeros(2, channels, resolution, resolution)
    with torch.no_grad(), atomic_path(path, suffix=path.suffix) as tmp:
        if path.suffix == ".pt2":
            batch = torch.export.Dim("batch", min=1)
            program = torch.export.export(module.eval(), (example,), dynamic_shapes=({0: batch},))
            torch.export.save(program, str(tmp))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.jit.save(torch.jit.trace(module.eval(), example[:1]), str(tmp))
    atomic_write_json(description_path(path), info)
    return path
