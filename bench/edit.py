"""``bench edit``: project photos into a generator and edit them with a finished cell's directions.

The photos (files, or images of the dataset's ground truth, whose true factors are then known)
are projected into W or W+ of the cell's generator (``models.projection``, NVIDIA's projector
recipe, with the dataset's sensor as perceptual loss unless another is named). Each projection is
then moved along each chosen direction by ``amounts`` calibrated steps (the cell's edit scale:
one step changes the calibration's target share of the pixel range). Everything goes to
``<results>/edits/<name>/``, written under a temporary name and renamed whole:

- ``projection.npz``: ``ws`` [n, num_ws, w_dim], per-image noise maps (``noise/<layer>``) when
  the generator has noise inputs, the image names, and as JSON text the generator identity, the
  cell and the projection settings;
- ``reconstruction.png``: every photo beside its projection;
- ``edits/<image>.png``: per photo, one row per direction, one column per amount;
- ``edits.json``: per photo its projection loss, PSNR, LPIPS (when LPIPS-VGG weights are given),
  and, when the dataset has an attribute predictor, the predicted attributes of the photo, the
  projection and every edited image; a summary (mean PSNR, the share of projections classified
  with the photo's true factors, how often each direction changes each attribute).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.flows.directions import attribute_predict, flow_settings
from bench.flows.figures import save_edit_grid, save_reconstructions, to_pixels
from bench.results.context import make_progress
from bench.results.store import ResultStore
from bench.running.finished import cell_directions, check_generator
from bench.threads import torch_threads
from core.config import resolve_config
from core.errors import BenchError, DataError, SettingError
from core.io import atomic_path, atomic_write_text, dumps_json, publish_folder, temp_folder
from datasets.photos import image_files, load_photo, read_landmarks
from datasets.prepare import IMAGES_SEED
from models.bundle import Bundle
from models.directions import Directions
from models.perceptual import PerceptualDistance, perceptual_distance, psnr
from models.projection import Projection, ProjectionConfig, join, project_batches, render

EDITS_DIR = "edits"
EDITS_FILE = "edits.json"
LATENTS_FILE = "projection.npz"
RECONSTRUCTION_FILE = "reconstruction.png"
EDITS_SCHEMA = 1
DEFAULT_SENSOR = "pixels"
FIGURE_PX = 128  # the reconstruction figure's cell size (save_reconstructions)
DATASET_IMAGE_SEED = IMAGES_SEED  # --dataset-images draws what `prepare --write-images` writes
# Projection settings per cell profile (defaults: projector.py's). The quick profile's 300 steps
# keep 32 images of a 64-px generator within minutes on 2 cores; docs/editing.md has the curve.
PROJECTION_PROFILES: dict[str, dict[str, Any]] = {"quick": {"num_steps": 300}}
# Pixel MSE weight per sensor when none is given: the shapes3d discriminator's blocks hardly
# see flat colours, so its projections need the pixels too (docs/editing.md).
DEFAULT_MSE = {"shapes3d-disc": 10.0}


@dataclass
class Photos:
    """The images to edit: uint8 NHWC ``pixels`` at the generator's size, their ``names``
    (unique, file-name safe), where each came from, and true factors when known."""

    pixels: np.ndarray
    names: list[str]
    sources: list[str]
    factors: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def projection_config(profile: str, **overrides: Any) -> ProjectionConfig:
    """The projector's settings for a cell of ``profile`` with ``overrides`` (None: default);
    a bad value is a SettingError."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return resolve_config(ProjectionConfig, PROJECTION_PROFILES, profile, given)
    except SettingError as err:
        raise SettingError(f"projection settings: {err}") from None


def read_photos(paths: Sequence[str], size: int, channels: int,
                landmarks_file: str | None = None) -> Photos:
    """PNG / JPEG files (or folders of them) at ``size`` px; FFHQ-aligned where the landmarks
    file has the image's name."""
    files = image_files(paths)
    landmarks = read_landmarks(landmarks_file) if landmarks_file else {}
    unknown = sorted(set(landmarks) - {f.name for f in files})
    if unknown:
        raise BenchError(f"--landmarks {landmarks_file}: {unknown[0]!r} is not one of the images "
                         "given (expected image file names as keys)")
    pixels = [load_photo(f, size, channels, landmarks.get(f.name)) for f in files]
    aligned = [f.name for f in files if f.name in landmarks]
    notes = [f"{len(aligned)} of {len(files)} image(s) FFHQ-aligned from the given landmarks; "
             "the others centre-cropped"] if landmarks else [
        "centre-cropped and resized (no landmarks given, and no face aligner is built in)"]
    return Photos(np.stack(pixels), _names([f.stem for f in files]),
                  [str(f) for f in files], None, notes)


def dataset_photos(bundle: Bundle, count: int, size: int) -> Photos:
    """``count`` images of ``bundle``'s ground truth drawn from a fixed seed (the real
    3dshapes.h5 with --data-dir), with their true factors."""
    gt = bundle.ground_truth
    if gt is None:
        raise BenchError(f"--dataset-images: dataset {bundle.name!r} has no ground-truth images "
                         "(expected a dataset such as shapes3d; use --images for photos)")
    if count < 1:
        raise BenchError(f"--dataset-images must be >= 1, got {count}")
    factors, observations = gt.sample(count, np.random.default_rng(DATASET_IMAGE_SEED))
    pixels = np.asarray(observations, dtype=np.uint8)
    if pixels.shape[1] != size:
        from PIL import Image

        pixels = np.stack([np.asarray(Image.fromarray(p.squeeze()).resize(
            (size, size), Image.Resampling.LANCZOS)) for p in pixels])
        pixels = pixels[..., None] if pixels.ndim == 3 else pixels
    where = str(getattr(gt, "path", None) or gt.name)
    names = [f"{bundle.name}-{i:03d}" for i in range(count)]
    return Photos(pixels, names, [f"{where} factors {list(map(int, f))}" for f in factors],
                  np.asarray(factors, dtype=np.int64),
                  [f"{count} images of {where} (seed {DATASET_IMAGE_SEED})"])


def _names(stems: list[str]) -> list[str]:
    safe = [re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._") or "image" for s in stems]
    seen: dict[str, int] = {}
    out = []
    for name in safe:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def select_directions(text: str | None, available: int) -> list[int]:
    """Direction indices from ``--directions`` ("0,2,5" or "0-3"; default all ``available``);
    an index outside ``[0, available)`` is a BenchError."""
    if text is None or not str(text).strip():
        return list(range(available))
    chosen: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        bounds = part.split("-", 1) if re.fullmatch(r"\d+-\d+", part) else [part, part]
        if not all(re.fullmatch(r"\d+", b) for b in bounds):
            raise BenchError(f"--directions {text!r}: {part!r} is not an index or a range "
                             f"(expected e.g. 0,2,5 or 0-3 within 0-{available - 1})")
        low, high = int(bounds[0]), int(bounds[1])
        if high < low or high >= available:
            raise BenchError(f"--directions {text!r}: {part} is out of range: the cell has "
                             f"{available} scored direction(s), 0-{available - 1}")
        chosen.extend(i for i in range(low, high + 1) if i not in chosen)
    return chosen


def edit_amounts(span: float, columns: int) -> list[float]:
    """``columns`` evenly spaced amounts from ``-span`` to ``span`` (calibrated steps)."""
    if columns < 2 or not span > 0:
        raise BenchError(f"edit grid needs --columns >= 2 and --span > 0, got {columns} and "
                         f"{span}")
    return [float(a) for a in np.linspace(-span, span, columns)]


def load_distance(name: str, weights: str | None) -> PerceptualDistance:
    """The perceptual distance over sensor ``name``; an unknown sensor (a SettingError) or
    unusable weights (a DataError) is one naming --loss."""
    try:
        return perceptual_distance(name, weights)
    except SettingError as err:
        raise SettingError(f"--loss {name}: {err}") from None
    # the sensors keep FileNotFoundError for missing weights, always the user's file
    except (DataError, FileNotFoundError) as err:
        raise DataError(f"--loss {name}: {err}") from None


def lpips_distance() -> PerceptualDistance | None:
    """LPIPS-VGG (with its learned weights) when ``$BENCH_LPIPS_VGG`` names them, else None."""
    from models.sensors import LPIPS_VGG_ENV

    if not os.environ.get(LPIPS_VGG_ENV, "").strip():
        return None
    distance = load_distance("lpips-vgg", None)
    return distance if distance.channel_weights is not None else None


# -- predictions ---------------------------------------------------------------------------------


def predicted(groups: Sequence[np.ndarray]) -> list[list[float | int]]:
    """Per image, per attribute: the class (a probability group) or the value (a scalar)."""
    columns = []
    for group in groups:
        group = np.asarray(group, dtype=np.float64)
        if group.ndim == 2 and group.shape[1] > 1:
            columns.append([int(c) for c in group.argmax(axis=1)])
        else:
            columns.append([round(float(v), 6) for v in group.reshape(len(group), -1)[:, 0]])
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def change_fractions(base: np.ndarray, edited: np.ndarray) -> np.ndarray:
    """[directions, attributes]: the share of images whose predicted class of the attribute at
    either end of the edit (first or last amount) differs from the projection's.

    ``base`` [n, A] classes of the projections, ``edited`` [n, k, m, A] of the edited images."""
    ends = edited[:, :, [0, -1], :]  # [n, k, 2, A]
    changed = (ends != base[:, None, None, :]).any(axis=2)  # [n, k, A]
    return changed.mean(axis=0)


def any_other_fraction(base: np.ndarray, edited: np.ndarray, targets: Sequence[int]) -> list[float]:
    """Per direction j: the share of images in which any attribute other than ``targets[j]``
    changes (as ``change_fractions`` counts a change)."""
    ends = edited[:, :, [0, -1], :]
    changed = (ends != base[:, None, None, :]).any(axis=2)  # [n, k, A]
    out = []
    for j, target in enumerate(targets):
        others = np.delete(changed[:, j, :], target, axis=1)
        out.append(float(others.any(axis=1).mean()) if others.shape[1] else 0.0)
    return out


# -- the command ---------------------------------------------------------------------------------


@dataclass
class EditRun:
    """Everything one ``bench edit`` needs, resolved from the command line."""

    store: ResultStore
    result: dict[str, Any]
    bundle: Bundle
    directions: Directions
    indices: list[int]
    photos: Photos
    config: ProjectionConfig
    loss_name: str
    loss_weights: str | None
    amounts: list[float]
    seed: int
    threads: int
    name: str
    quiet: bool = True


def output_name(result: dict[str, Any], photos: Photos, given: str | None,
                images: Sequence[str] | None) -> str:
    """The edits folder name: ``given``, else method-dataset-seed and the photos' folder or
    file (or ``dataset-N``)."""
    if given is not None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", given):
            raise BenchError(f"--name {given!r}: expected letters, digits, '.', '_' or '-' "
                             "(a folder name under results/edits/)")
        return given
    if images:
        first = Path(images[0]).expanduser()
        source = first.name if first.is_dir() else first.stem
        if len(images) > 1:
            source += f"-and-{len(images) - 1}"
    else:
        source = f"dataset-{len(photos.names)}"
    text = f"{result['method']}-{result['dataset']}-seed{result['seed']}-{source}"
    return _names([text])[0]


def check_output(store: ResultStore, name: str) -> Path:
    """The edits folder ``name``: new, or an earlier ``bench edit`` output (replaced whole at the
    end); anything else there is a BenchError, before any work."""
    target = store.root / EDITS_DIR / name
    if target.exists() and not (target.is_dir() and (target / EDITS_FILE).is_file()):
        raise BenchError(f"edits folder {target} exists and is not a `bench edit` output: "
                         "expected a new name (see --name)")
    for path in (store.root / EDITS_DIR, *(store.root / EDITS_DIR).parents):
        if path.exists() and not path.is_dir():
            raise BenchError(f"cannot write edits under {path}: it is a file, expected a folder")
        if path.exists():
            break
    return target


def run_edit(run: EditRun) -> Path:
    """Project, edit, and write ``<results>/edits/<name>/``; returns that folder.

    Streams: each batch of photos is projected, rendered, edited, classified and its edit grids
    written before the next batch is projected, so memory holds one batch's images (and one
    photo's edited images) rather than every photo's; only the latents, the predicted classes
    and small copies of the projections (for the reconstruction figure) are kept for all."""
    target = check_output(run.store, run.name)
    directions = check_directions(run)
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    work = temp_folder(target)
    try:
        with torch_threads(run.threads):
            _stream(run, directions, work)
        publish_folder(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for folder in created:  # nothing left behind by a run that did not finish
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return target


def check_directions(run: EditRun) -> Directions:
    """The chosen directions of the cell, or a BenchError when they are not W+ edits of the
    generator's shape."""
    generator = run.bundle.generator
    directions = run.directions.subset(run.indices)
    if (directions.num_ws, directions.w_dim) != (int(generator.num_ws), int(generator.w_dim)):
        raise BenchError(f"cell {run.result['id']}: its directions are [{directions.num_ws}, "
                         f"{directions.w_dim}] W+ edits, the generator's W+ is "
                         f"[{generator.num_ws}, {generator.w_dim}]")
    return directions


def _progress(quiet: bool) -> Any:
    return lambda total, desc: make_progress(total, desc, quiet)


class _Targets:
    """The photos as the projector's targets: float NCHW in [-1, 1], converted per slice."""

    def __init__(self, pixels: np.ndarray) -> None:
        self.pixels = pixels

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index: slice) -> torch.Tensor:
        return torch.as_tensor(self.pixels[index]).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def edit_row(generator: Any, ws: torch.Tensor, noise: dict[str, torch.Tensor],
             step: torch.Tensor, amounts: Sequence[float]) -> torch.Tensor:
    """[m, C, H, W]: one projection (``ws`` [num_ws, w_dim], its ``noise`` maps [h, w]) moved
    by each of ``amounts`` times ``step`` (one direction's calibrated step, [num_ws, w_dim])."""
    factors = torch.tensor(list(amounts), dtype=torch.float32)
    moved = ws[None] + factors[:, None, None] * step[None]  # [m, L, D]
    maps = {name: v[None].expand(len(factors), -1, -1) for name, v in noise.items()}
    return render(generator, moved, maps)


def shrink(images: torch.Tensor, size: int) -> torch.Tensor:
    """``images`` area-resized to ``size`` px (the figures' cell size) when larger."""
    if images.shape[-1] <= size:
        return images
    return torch.nn.functional.interpolate(images, size=(size, size), mode="area")


def _stream(run: EditRun, directions: Directions, work: Path) -> None:
    generator, photos, result = run.bundle.generator, run.photos, run.result
    distance = load_distance(run.loss_name, run.loss_weights)
    lpips = lpips_distance()
    predict, attributes = (attribute_predict(run.bundle.predictor)
                           if "predictor" in run.bundle.provides() else (None, None))
    names = _direction_names(run, directions)
    label = (f"{result['method']} on {result['dataset']}, seed {result['seed']} "
             f"({result['profile']})")
    size = min(int(generator.resolution), FIGURE_PX)
    (work / EDITS_DIR).mkdir()
    steps = directions.scale[:, None, None] * directions.vectors  # [k, L, D]: one step each
    parts, small, images = [], [], []
    targets = _Targets(photos.pixels)
    bar = make_progress(len(photos.names), "edit", run.quiet)
    try:
        for index, part in project_batches(generator, targets, distance, run.config,
                                           seed=run.seed,
                                           progress=None if run.quiet else _progress(False)):
            batch = targets[index.start:index.stop]
            recon = render(generator, part.ws, part.noise)
            scores = psnr(recon, batch)
            lpips_values = None
            if lpips is not None:
                with torch.no_grad():
                    lpips_values = lpips(recon, batch)
            photo_classes = predicted(_batched(predict, batch)) if predict else None
            recon_classes = predicted(_batched(predict, recon)) if predict else None
            for j, i in enumerate(index):
                rows, classes = [], []
                for d in range(len(names)):  # one row at full size at a time
                    row = edit_row(generator, part.ws[j], {k: v[j] for k, v in
                                                           part.noise.items()},
                                   steps[d], run.amounts)
                    if predict is not None:
                        classes.append(predicted(_batched(predict, row)))
                    rows.append(shrink(row, size))
                figure = f"{EDITS_DIR}/{photos.names[i]}.png"
                save_edit_grid(photos.pixels[i], torch.stack(rows), work / figure, names=names,
                               amounts=run.amounts, cell_px=size,
                               title=f"{photos.names[i]}\n{label}, edits in calibrated steps")
                entry: dict[str, Any] = {
                    "name": photos.names[i], "source": photos.sources[i], "edit_figure": figure,
                    "distance": float(part.distance[j]), "mse": float(part.mse[j]),
                    "loss": float(part.loss[j]), "psnr": _finite(float(scores[j])),
                    "lpips": None if lpips_values is None else float(lpips_values[j])}
                if photos.factors is not None:
                    entry["true_factors"] = [int(v) for v in photos.factors[i]]
                if predict is not None:
                    entry["predicted"] = {"photo": photo_classes[j],
                                          "projection": recon_classes[j], "edited": classes}
                images.append(entry)
                bar.update(1)
            small.append(torch.as_tensor(to_pixels(recon, size)))
            parts.append(part)
    finally:
        bar.close()
    projection = join(parts, run.config, run.seed)
    psnrs = [e["psnr"] for e in images]
    reconstructions = torch.cat(small).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    save_reconstructions(photos.pixels, reconstructions, work / RECONSTRUCTION_FILE,
                         labels=[f"{e['name']} " + ("identical" if p is None else f"{p:.1f} dB")
                                 for e, p in zip(images, psnrs, strict=True)],
                         title=f"photo | projection into {run.config.space.upper()} of "
                               f"{result['dataset']} ({run.loss_name} loss, "
                               f"{run.config.num_steps} steps)")
    _write(run, projection, directions, names, label, images, attributes,
           with_lpips=lpips is not None, work=work)


def _batched(predict: Any, images: torch.Tensor, batch: int = 256) -> list[np.ndarray]:
    parts = [predict(images[s:s + batch]) for s in range(0, len(images), batch)]
    return [np.concatenate([np.asarray(p[a]) for p in parts]) for a in range(len(parts[0]))]


def _direction_names(run: EditRun, directions: Directions) -> list[str]:
    names = list(run.directions.meta.get("names") or [])
    return [str(names[i]) if i < len(names) else f"d{i}" for i in run.indices]


def _write(run: EditRun, projection: Projection, directions: Directions, names: list[str],
           label: str, images: list[dict[str, Any]], attributes: list[str] | None, *,
           with_lpips: bool, work: Path) -> None:
    photos, result = run.photos, run.result
    generator_identity = {k: v for k, v in run.bundle.identity.items()
                          if k in ("generator", "generator_source")}
    cell = {k: result[k] for k in ("id", "method", "dataset", "seed", "profile")}
    cell["overrides"] = result.get("overrides", {})
    settings = {"config": run.config.to_dict(), "seed": run.seed, "loss": run.loss_name,
                "loss_weights": run.loss_weights, "torch_threads": run.threads}
    arrays = {"ws": projection.ws.numpy(), "names": np.asarray(photos.names),
              "generator_identity": np.asarray(dumps_json(generator_identity)),
              "cell": np.asarray(dumps_json(cell)),
              "projection": np.asarray(dumps_json(settings))}
    arrays.update({f"noise/{k}": v.numpy() for k, v in projection.noise.items()})
    with atomic_path(work / LATENTS_FILE, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    doc = {
        "schema": EDITS_SCHEMA, "name": run.name, "cell": cell, "label": label,
        "generator": generator_identity, "projection": settings, "inputs": photos.notes,
        "directions": [{"index": i, "name": nm, "scale": float(directions.scale[j])}
                       for j, (i, nm) in enumerate(zip(run.indices, names, strict=True))],
        "amounts": run.amounts, "reconstruction_figure": RECONSTRUCTION_FILE,
        "latents": LATENTS_FILE,
        "attributes": attributes,
        "images": images,
        "summary": summarise(images, names, attributes, with_lpips),
    }
    atomic_write_text(work / EDITS_FILE, dumps_json(doc))


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def summarise(images: list[dict[str, Any]], direction_names: list[str],
              attributes: list[str] | None, with_lpips: bool) -> dict[str, Any]:
    """Mean PSNR (and LPIPS), and with a predictor: the share of projections classified as the
    photo's true factors (when known) and as the photo, and per direction how often each
    attribute changes (``change_fractions``) with, for a direction named after an attribute
    (or else its most changed one), the share of images where any other attribute changes."""
    values = [e["psnr"] for e in images]
    finite = [v for v in values if v is not None]
    summary: dict[str, Any] = {
        "images": len(images),
        "mean_psnr": float(np.mean(finite)) if finite else None,
        "median_psnr": float(np.median(finite)) if finite else None,
        "identical_projections": len(values) - len(finite),
        "mean_lpips": float(np.mean([e["lpips"] for e in images])) if with_lpips else None,
        "mean_distance": float(np.mean([e["distance"] for e in images])),
    }
    if not attributes or not images or "predicted" not in images[0]:
        return summary
    base = np.asarray([e["predicted"]["projection"] for e in images])
    photo = np.asarray([e["predicted"]["photo"] for e in images])
    if not all(isinstance(v, int) for v in images[0]["predicted"]["projection"]):
        return summary  # scalar attributes: no classes to compare
    summary["projection_as_photo_fraction"] = float((base == photo).all(axis=1).mean())
    if "true_factors" in images[0] and len(images[0]["true_factors"]) == base.shape[1]:
        truth = np.asarray([e["true_factors"] for e in images])
        summary["projection_true_factors_fraction"] = float((base == truth).all(axis=1).mean())
        summary["photo_true_factors_fraction"] = float((photo == truth).all(axis=1).mean())
        summary["projection_true_per_factor"] = dict(zip(
            attributes, (float(v) for v in (base == truth).mean(axis=0)), strict=True))
    edited = np.asarray([e["predicted"]["edited"] for e in images])  # [n, k, m, A]
    fractions = change_fractions(base, edited)
    targets = [attributes.index(name) if name in attributes else int(np.argmax(fractions[j]))
               for j, name in enumerate(direction_names)]
    others = any_other_fraction(base, edited, targets)
    summary["changes"] = [
        {"direction": name, "attribute": attributes[t], "named": name in attributes,
         "changed_fraction": float(fractions[j, t]), "any_other_changed_fraction": others[j],
         "per_attribute": dict(zip(attributes, (float(v) for v in fractions[j]), strict=True))}
        for j, (name, t) in enumerate(zip(direction_names, targets, strict=True))]
    return summary


def print_summary(folder: Path) -> None:
    """A few lines about an edits folder on stdout."""
    doc = json.loads((folder / EDITS_FILE).read_text(encoding="utf-8"))
    s = doc["summary"]
    psnr_text = "n/a" if s["mean_psnr"] is None else f"{s['mean_psnr']:.2f} dB"
    lines = [f"{folder}: {s['images']} image(s), {doc['label']}",
             f"  mean PSNR {psnr_text}, mean {doc['projection']['loss']} distance "
             f"{s['mean_distance']:.4f}"
             + ("" if s["mean_lpips"] is None else f", mean LPIPS {s['mean_lpips']:.4f}")]
    if "projection_true_factors_fraction" in s:
        lines.append(f"  projections classified with every true factor: "
                     f"{s['projection_true_factors_fraction']:.2f} (the photos themselves: "
                     f"{s['photo_true_factors_fraction']:.2f})")
    for change in s.get("changes", []):
        lines.append(f"  {change['direction']}: changes {change['attribute']} in "
                     f"{change['changed_fraction']:.2f}, any other attribute in "
                     f"{change['any_other_changed_fraction']:.2f} of the images")
    print("\n".join(lines))
    sys.stdout.flush()


def default_span_columns(result: dict[str, Any]) -> tuple[float, int]:
    """The traversal span and steps the cell's flow settings recorded (else its profile's)."""
    flow = result.get("metric_settings", {}).get("directions_flow")
    if not isinstance(flow, dict):
        settings = flow_settings(result["profile"])
        return float(settings.traversal_span), int(settings.traversal_steps)
    return float(flow.get("traversal_span", 2.0)), int(flow.get("traversal_steps", 5))


def default_loss(bundle: Bundle) -> str:
    """The dataset's sensor, unless it needs weights nobody gave (``alexnet`` without
    ``$BENCH_ALEXNET``): then ``pixels``, which needs none."""
    from models.sensors import SENSORS

    name = bundle.sensor
    if not name or name not in SENSORS:
        return DEFAULT_SENSOR
    if name != DEFAULT_SENSOR and SENSORS.get(name).weights_path(None) is None:
        return DEFAULT_SENSOR
    return name


__all__ = ["EDITS_DIR", "EDITS_FILE", "EditRun", "Photos", "any_other_fraction",
           "cell_directions", "change_fractions", "check_generator", "dataset_photos",
           "edit_amounts", "projection_config", "read_photos", "run_edit", "select_directions",
           "summarise"]
