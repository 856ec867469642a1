"""Figures of a directions cell: a traversal grid and the R-matrix heatmap, and for correlation
analysis a sensitivity bar plot and a class-to-class translation grid; of ``bench edit``: the
photos beside their projections and an edit grid per photo (PNG, Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.plots import pyplot, save_figure
from models.directions import Directions
from models.generator import Generator
from models.sampling import latent_bank, synthesize

GAP = 4  # pixels between the column blocks of different seeds


@torch.no_grad()
def traversal_images(
    generator: Generator,
    directions: Directions,
    *,
    rows: int = 10,
    steps: int = 7,
    span: float = 2.0,
    num_seeds: int = 3,
    truncation_psi: float = 0.5,
    seed: int = 0,
    cell_px: int = 128,
) -> np.ndarray:
    """uint8 HWC mosaic: row j = direction j, columns = amounts in [-span, span] x scale[j],
    one block of ``steps`` columns per seed (blocks separated by a white gap)."""
    if steps < 2 or num_seeds < 1 or rows < 1:
        raise ValueError(f"need steps >= 2, num_seeds >= 1, rows >= 1 (got {steps}, "
                         f"{num_seeds}, {rows})")
    rows = min(rows, directions.num_directions)
    bank = latent_bank(generator, num_seeds, seed, truncation_psi)  # [s, L, D]
    amounts = torch.linspace(-span, span, steps)
    size = min(int(generator.resolution), cell_px)
    width = num_seeds * steps * size + (num_seeds - 1) * GAP
    mosaic = np.full((rows * size, width, 3), 255, dtype=np.uint8)
    for j in range(rows):
        delta = directions.scale[j] * directions.vectors[j]
        ws = bank[:, None] + amounts[None, :, None, None] * delta  # [s, steps, L, D]
        images = synthesize(generator, ws.reshape(-1, *bank.shape[1:]), batch=64)
        pixels = to_pixels(images, size)
        for s in range(num_seeds):
            for c in range(steps):
                x = s * (steps * size + GAP) + c * size
                mosaic[j * size : (j + 1) * size, x : x + size] = pixels[s * steps + c]
    return mosaic


def to_pixels(images: torch.Tensor, size: int | None = None) -> np.ndarray:
    """uint8 NHWC RGB of NCHW images in [-1, 1] (area-resized to ``size`` px when given and
    different; one channel repeated three times)."""
    images = images.detach().float().cpu()
    if size is not None and images.shape[-1] != size:
        images = F.interpolate(images, size=(size, size), mode="area")
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    pixels = pixels.permute(0, 2, 3, 1).numpy()
    if pixels.shape[3] == 1:
        pixels = np.repeat(pixels, 3, axis=3)
    return pixels[..., :3]


def save_traversal_grid(
    generator: Generator,
    directions: Directions,
    path: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
    title: str = "",
    attention: np.ndarray | None = None,
    **kwargs: Any,
) -> Path:
    """Render ``traversal_images`` with direction names on the left and, when ``attention``
    ``[directions, num_ws]`` is given, each row's attention over W+ rows drawn beside it;
    returns the PNG path."""
    mosaic = traversal_images(generator, directions, **kwargs)
    rows = kwargs.get("rows", 10)
    rows = min(rows, directions.num_directions)
    cell = mosaic.shape[0] // rows
    names = list(names) if names is not None else [f"d{j}" for j in range(rows)]
    height, width = mosaic.shape[:2]
    dpi = 100
    side = 1.6 if attention is not None else 0.0  # inches for the attention panel
    bottom = 0.45 if attention is not None else 0.1  # room for the panel's axis labels
    total_w, total_h = width / dpi + 1.4 + side, height / dpi + 0.5 + bottom
    fig = pyplot().figure(figsize=(total_w, total_h), dpi=dpi)
    ax = fig.add_axes((1.2 / total_w, bottom / total_h, width / dpi / total_w,
                       height / dpi / total_h))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_yticks([cell * (j + 0.5) for j in range(rows)], names[:rows], fontsize=8)
    ax.set_xticks([])
    if attention is not None:
        weights = np.asarray(attention, dtype=float)[:rows]
        panel = fig.add_axes(((1.3 + width / dpi) / total_w, bottom / total_h,
                              (side - 0.3) / total_w, height / dpi / total_h))
        panel.imshow(weights, aspect="auto", cmap="viridis", vmin=0.0,
                     vmax=max(float(weights.max()), 1e-6), interpolation="nearest")
        panel.set_yticks([])
        panel.set_xticks(range(weights.shape[1]), [str(i) for i in range(weights.shape[1])],
                         fontsize=6)
        panel.set_xlabel("attention per W+ row", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9, y=1.0 - 0.05 / total_h)
    return save_figure(fig, Path(path))


def save_r_heatmap(
    normed: np.ndarray,
    path: str | os.PathLike[str],
    *,
    attribute_names: Sequence[str],
    direction_names: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """Heatmap of a row-normalised R (directions x attributes, values in [0, 1]; the caller
    normalises it with the metric's own rule) with values written in; the attribute and
    direction names, one per line, are also in the PNG's text chunks ``Attributes`` and
    ``Directions`` (readable without looking at the picture)."""
    normed = np.asarray(normed, dtype=np.float64)
    if normed.ndim != 2 or not np.all((normed >= 0) & (normed <= 1)):
        raise ValueError("save_r_heatmap expects a row-normalised R: 2-D, values in [0, 1]")
    k, a = normed.shape
    if len(attribute_names) != a:
        raise ValueError(f"{a} attribute columns but {len(attribute_names)} attribute names")
    direction_names = list(direction_names or [f"d{j}" for j in range(k)])[:k]
    fig, ax = pyplot().subplots(figsize=(1.2 + 0.7 * a, 1.0 + 0.35 * k), dpi=100)
    image = ax.imshow(normed, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(a), list(attribute_names), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), direction_names, fontsize=8)
    if k * a <= 400:
        for i in range(k):
            for j in range(a):
                colour = "black" if normed[i, j] > 0.6 else "white"
                ax.text(j, i, f"{normed[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color=colour)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, Path(path), text={"Attributes": "\n".join(attribute_names),
                                   "Directions": "\n".join(direction_names)})


def save_sensitivity_bars(
    meta: dict[str, Any], path: str | os.PathLike[str], *, title: str = "", top: int = 40,
) -> Path:
    """One bar plot per concept of a correlation-analysis result (``Directions.meta``): the
    sensitivity of its ``top`` most sensitive dimensions, the controlling set highlighted."""
    concepts = meta["correlation"]["concepts"]
    if not concepts:
        raise ValueError("no concepts to plot")
    fig, axes = pyplot().subplots(len(concepts), 1, figsize=(8, 1.6 * len(concepts) + 0.4),
                                   dpi=100, squeeze=False)
    for ax, record in zip(axes[:, 0], concepts, strict=True):
        order = record["ranking"][:top]
        values = [record["sensitivity"][i] for i in order]
        chosen = set(record["set"])
        ax.bar(range(len(order)), values,
               color=["tab:red" if i in chosen else "tab:gray" for i in order])
        ax.set_xticks(range(len(order)), [str(i) for i in order], fontsize=6, rotation=90)
        ax.set_ylabel("sensitivity", fontsize=7)
        ax.set_title(f"{record['name']}: set {record['set']}, Gini {record['gini']:.2f}, "
                     f"top-10% mass {record['top10_mass']:.2f}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, Path(path))


@torch.no_grad()
def translation_images(
    generator: Generator, meta: dict[str, Any], *, num_originals: int = 6, seed: int = 0,
) -> np.ndarray:
    """uint8 HWC mosaic: the first row holds ``num_originals`` random codes' images, row k + 1
    the same codes with concept k's controlling set set to its class mean (its translation)."""
    from methods.correlation import intervene
    from models.generator import broadcast_ws, generator_device

    info = meta["correlation"]
    device = generator_device(generator)
    z = torch.randn(num_originals, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    codes = z if info["space"] == "z" else generator.mapping(z.to(device)).float().cpu()
    rows = [codes] + [intervene(codes, c["set"], c["target_values"]) for c in info["concepts"]]

    def pixels(batch: torch.Tensor) -> np.ndarray:
        w = generator.mapping(batch.to(device)) if info["space"] == "z" else batch.to(device)
        images = generator.synthesize(broadcast_ws(w, generator.num_ws)).float().cpu()
        out = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
        out = out.numpy()
        return np.repeat(out, 3, axis=3) if out.shape[3] == 1 else out[..., :3]

    return np.concatenate([np.concatenate(list(pixels(r)), axis=1) for r in rows], axis=0)


def save_translation_grid(
    generator: Generator, meta: dict[str, Any], path: str | os.PathLike[str], *, title: str = "",
    **kwargs: Any,
) -> Path:
    """Render ``translation_images`` with row labels (original, then each concept)."""
    mosaic = translation_images(generator, meta, **kwargs)
    concepts = meta["correlation"]["concepts"]
    labels = ["original"] + [f"-> {c['name']}" for c in concepts]
    cell = mosaic.shape[0] // len(labels)
    height, width = mosaic.shape[:2]
    dpi = 100
    fig = pyplot().figure(figsize=(width / dpi + 1.4, height / dpi + 0.6), dpi=dpi)
    ax = fig.add_axes((1.2 / (width / dpi + 1.4), 0.1 / (height / dpi + 0.6),
                       width / dpi / (width / dpi + 1.4), height / dpi / (height / dpi + 0.6)))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_yticks([cell * (j + 0.5) for j in range(len(labels))], labels, fontsize=8)
    ax.set_xticks([])
    if title:
        fig.suptitle(title, fontsize=9, y=1.0 - 0.05 / (height / dpi + 0.6))
    return save_figure(fig, Path(path))


def save_edit_grid(
    photo: np.ndarray, edited: torch.Tensor, path: str | os.PathLike[str], *,
    names: Sequence[str], amounts: Sequence[float], title: str = "", cell_px: int = 128,
) -> Path:
    """One photo's edit grid: row j holds ``edited[j]`` (``[columns, C, H, W]``, the projection
    moved by each of ``amounts`` calibrated steps along direction j), the photo (uint8 HWC) at
    the left of every row; columns labelled with the amounts."""
    rows, columns = int(edited.shape[0]), int(edited.shape[1])
    if len(names) != rows or len(amounts) != columns:
        raise ValueError(f"{rows} x {columns} edited images, {len(names)} names, "
                         f"{len(amounts)} amounts")
    size = min(int(edited.shape[-1]), cell_px)
    pixels = to_pixels(edited.reshape(-1, *edited.shape[2:]), size)
    source = to_pixels(torch.as_tensor(photo).permute(2, 0, 1)[None].float() / 127.5 - 1, size)[0]
    width = (columns + 1) * size + GAP
    mosaic = np.full((rows * size, width, 3), 255, dtype=np.uint8)
    for j in range(rows):
        mosaic[j * size:(j + 1) * size, :size] = source
        for c in range(columns):
            x = size + GAP + c * size
            mosaic[j * size:(j + 1) * size, x:x + size] = pixels[j * columns + c]
    height = mosaic.shape[0]
    dpi = 100
    total_w, total_h = width / dpi + 1.4, height / dpi + 0.8
    fig = pyplot().figure(figsize=(total_w, total_h), dpi=dpi)
    ax = fig.add_axes((1.2 / total_w, 0.35 / total_h, width / dpi / total_w,
                       height / dpi / total_h))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_yticks([size * (j + 0.5) for j in range(rows)], list(names), fontsize=8)
    ax.set_xticks([size / 2] + [size + GAP + size * (c + 0.5) for c in range(columns)],
                  ["photo"] + [f"{a:+.2g}" if a else "0" for a in amounts], fontsize=7)
    ax.tick_params(axis="x", length=0)
    if title:
        fig.suptitle(title, fontsize=9, y=1.0 - 0.05 / total_h)
    return save_figure(fig, Path(path))


def save_reconstructions(
    photos: np.ndarray, projections: torch.Tensor, path: str | os.PathLike[str], *,
    labels: Sequence[str], title: str = "", per_row: int = 4, cell_px: int = 128,
) -> Path:
    """Photos (uint8 NHWC) beside their projections (NCHW in [-1, 1]): pairs (photo |
    projection), ``per_row`` pairs per row, each labelled below (e.g. name and PSNR)."""
    n = len(photos)
    if len(projections) != n or len(labels) != n or n == 0:
        raise ValueError(f"{n} photos, {len(projections)} projections, {len(labels)} labels")
    size = min(int(projections.shape[-1]), cell_px)
    left = to_pixels(torch.as_tensor(np.asarray(photos)).permute(0, 3, 1, 2).float() / 127.5 - 1,
                     size)
    right = to_pixels(projections, size)
    per_row = max(1, min(per_row, n))
    rows = -(-n // per_row)
    label_px = 14
    pair = 2 * size
    width = per_row * pair + (per_row - 1) * GAP * 2
    mosaic = np.full((rows * (size + label_px), width, 3), 255, dtype=np.uint8)
    spots = []
    for i in range(n):
        r, c = divmod(i, per_row)
        x, y = c * (pair + 2 * GAP), r * (size + label_px)
        mosaic[y:y + size, x:x + size] = left[i]
        mosaic[y:y + size, x + size:x + pair] = right[i]
        spots.append((x + size, y + size + label_px / 2))
    height = mosaic.shape[0]
    dpi = 100
    total_w, total_h = width / dpi + 0.2, height / dpi + 0.5
    fig = pyplot().figure(figsize=(total_w, total_h), dpi=dpi)
    ax = fig.add_axes((0.1 / total_w, 0.05 / total_h, width / dpi / total_w,
                       height / dpi / total_h))
    ax.imshow(mosaic, interpolation="nearest")
    for (x, y), label in zip(spots, labels, strict=True):
        ax.text(x, y, label, ha="center", va="center", fontsize=6)
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9, y=1.0 - 0.05 / total_h)
    return save_figure(fig, Path(path))
