"""Photos as generator inputs: PNG / JPEG files read with Pillow, centre-cropped and resized.

``image_files(paths)`` lists the files named (folders: their PNG and JPEG files, sorted by
name); ``load_photo(path, size, channels)`` reads one as uint8 HWC at the generator's size:
centre-cropped to a square and resized with Lanczos filtering (as NVIDIA's projector prepares
its target), or, given 68 face landmarks (the dlib / iBUG layout), aligned the FFHQ way first
(``ffhq_quad``). A file Pillow cannot read, or a grayscale image for a colour generator, is a
BenchError naming the file and what was expected.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.errors import BenchError

SUFFIXES = (".png", ".jpg", ".jpeg")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
LANDMARKS = 68


def image_files(paths: Sequence[str | os.PathLike[str]], origin: str = "--images") -> list[Path]:
    """The image files that ``paths`` name: a file as given (a PNG or JPEG name), a folder's
    PNG and JPEG files sorted by name (not its subfolders). A missing path, a file of another
    kind or a folder without images is a BenchError naming it."""
    found: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            inside = sorted(p for p in path.iterdir()
                            if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not inside:
                raise BenchError(f"{origin} {given}: folder without PNG or JPEG files "
                                 f"(expected files ending in {', '.join(SUFFIXES)})")
            found.extend(inside)
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise BenchError(f"{origin} {given}: not a PNG or JPEG file name (expected "
                                 f"{', '.join(SUFFIXES)})")
            found.append(path)
        else:
            raise BenchError(f"{origin} {given} not found: expected PNG or JPEG files or "
                             "folders holding them")
    if not found:
        raise BenchError(f"{origin}: no images given")
    names = [p.name for p in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BenchError(f"{origin}: two images are named {twice[0]} (expected distinct file "
                         "names: they name the outputs)")
    return found


def load_photo(path: str | os.PathLike[str], size: int, channels: int = 3,
               landmarks: np.ndarray | None = None) -> np.ndarray:
    """uint8 ``[size, size, channels]``: the image at ``path``, FFHQ-aligned when ``landmarks``
    (68 x 2 pixel coordinates) are given, else centre-cropped to a square; then resized."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened.copy()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        reason = type(err).__name__ if isinstance(err, UnidentifiedImageError) else str(err)
        raise BenchError(f"image {path}: cannot be read ({reason[:120]}): expected a PNG or JPEG "
                         "file") from None
    gray = image.mode in GRAY_MODES or (image.mode == "P" and _gray_palette(image))
    if channels == 3 and gray:
        raise BenchError(f"image {path} is grayscale (mode {image.mode}): the generator makes "
                         "RGB images, expected an RGB image")
    image = image.convert("RGB" if channels == 3 else "L")
    if landmarks is not None:
        quad = ffhq_quad(np.asarray(landmarks, dtype=np.float64), path)
        image = image.transform((size, size), Image.Transform.QUAD,
                                tuple((quad + 0.5).flatten()), Image.Resampling.BILINEAR)
    else:
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        if side != size:
            image = image.resize((size, size), Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _gray_palette(image: object) -> bool:
    """A palette image whose colours are all gray."""
    palette = image.getpalette() or []  # type: ignore[attr-defined]
    rgb = np.asarray(palette[: 3 * (len(palette) // 3)]).reshape(-1, 3)
    return bool(len(rgb)) and bool(np.all(rgb == rgb[:, :1]))


def ffhq_quad(landmarks: np.ndarray, origin: object = "landmarks") -> np.ndarray:
    """The FFHQ crop of a face: a square (4 x 2 corners: top-left, bottom-left, bottom-right,
    top-right) centred a tenth of the way from the eyes' midpoint to the mouth's, oriented by
    the eye-to-eye and eye-to-mouth vectors and twice the eye distance (or 1.8 times the
    eye-to-mouth distance) from centre to side, as FFHQ's alignment script builds it. The script
    also shrinks, pads and blurs the border before its transform; this crop samples the image
    directly (pixels outside it are black)."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (LANDMARKS, 2) or not np.all(np.isfinite(points)):
        raise BenchError(f"{origin}: expected {LANDMARKS} landmarks (x, y) in the dlib / iBUG "
                         f"order, got shape {points.shape}")
    eye_left, eye_right = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    eyes = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    mouth = (points[48] + points[54]) / 2
    eye_to_mouth = mouth - eyes
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    norm = np.hypot(*x)
    if norm == 0:
        raise BenchError(f"{origin}: degenerate landmarks (eyes and mouth coincide)")
    x = x / norm * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    centre = eyes + eye_to_mouth * 0.1
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])


def read_landmarks(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """A JSON file ``{image file name: [[x, y] x 68], ...}`` as arrays; a bad file is a
    BenchError naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"--landmarks {path} not found: expected a JSON file of 68 (x, y) "
                         "points per image file name") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BenchError(f"--landmarks {path}: not a readable JSON file ({type(err).__name__}): "
                         "expected 68 (x, y) points per image file name") from None
    if not isinstance(data, dict):
        raise BenchError(f"--landmarks {path}: expected an object mapping image file names to "
                         "68 (x, y) points")
    out = {}
    for name, points in data.items():
        try:
            array = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError):
            array = np.zeros(0)
        if array.shape != (LANDMARKS, 2):
            raise BenchError(f"--landmarks {path}: {name!r} has shape {array.shape}: expected "
                             f"{LANDMARKS} (x, y) points")
        out[str(name)] = array
    return out


__all__ = ["SUFFIXES", "ffhq_quad", "image_files", "load_photo", "read_landmarks"]
