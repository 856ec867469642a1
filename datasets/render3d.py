"""Ray-cast renderer of a 3DShapes-like room, reduced to linear colour-coefficient maps.

Geometry and shading depend only on (scale, shape, orientation); the three hues enter linearly.
So each geometry is rendered once into per-pixel, sub-sample-averaged coefficients

    image = a_floor * rgb(floor_hue) + a_wall * rgb(wall_hue) + a_obj * rgb(object_hue) + beta

stored as a float32 map of 6 channels ``(a_floor, a_wall, a_obj, beta_r, beta_g, beta_b)``.
Any image (on or off the factor grid) is then a cheap, differentiable composition.

Scene (world Y up, object resting on the floor y = 0 at the origin): a room with back wall
z = -16 and side walls x = +-16 of height 6.8, open sky above; a pinhole camera orbiting the
origin at radius 8 and height 1.3 with azimuth = orientation (degrees), pitched 3 degrees up;
a world-fixed light from the front-left and above.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RESOLUTION = 64
SUPERSAMPLE = 3
NUM_CHANNELS = 6  # a_floor, a_wall, a_obj, beta_r, beta_g, beta_b
SHAPE_NAMES = ("cube", "cylinder", "sphere", "capsule")

# Scene constants (a change here must bump RENDER_VERSION so cached maps are rebuilt).
RENDER_VERSION = 1
ROOM_HALF = 16.0
WALL_HEIGHT = 6.8
CAMERA_RADIUS = 8.0
CAMERA_HEIGHT = 1.3
CAMERA_PITCH_DEG = 3.0
FOCAL_PX = 95.0
SKY_RGB = np.array([0.60, 0.886, 0.976])
LIGHT_DIR = np.array([-0.6, 1.0, 0.55]) / np.linalg.norm([-0.6, 1.0, 0.55])
OBJECT_AMBIENT = 0.68
OBJECT_DIFFUSE = 0.32
SPECULAR_WEIGHT = 0.35
SPECULAR_POWER = 20.0
BACK_WALL_LEVEL = 0.97
SIDE_WALL_LEVEL = 0.58
SHADOW_LEVEL = 0.3
FLOOR_FALLOFF = (0.93, 0.018, 0.8)  # level = clip(a - b * camera_x, c, 1)
CUBE_HALF_EDGE = 0.8  # times scale
CYLINDER_RADIUS = 0.9  # times scale; height = 2 * radius
CAPSULE_RADIUS = 0.8  # times scale; cylindrical half-length equal to the radius

_INF = np.inf


def hue_to_rgb(hue: Any) -> Any:
    """Fully saturated, full-value HSV colour of ``hue`` (wraps mod 1): (..., 3) in [0, 1].

    Works on numpy arrays and torch tensors alike (piecewise linear, so differentiable).
    """
    if _is_torch(hue):
        import torch

        h = torch.remainder(hue, 1.0)[..., None] * 6.0
        centres = torch.tensor([3.0, 2.0, 4.0], dtype=h.dtype, device=h.device)
        signs = torch.tensor([1.0, -1.0, -1.0], dtype=h.dtype, device=h.device)
        offsets = torch.tensor([-1.0, 2.0, 2.0], dtype=h.dtype, device=h.device)
        return torch.clamp(signs * torch.abs(h - centres) + offsets, 0.0, 1.0)
    h = np.remainder(np.asarray(hue, dtype=np.float64), 1.0)[..., None] * 6.0
    centres = np.array([3.0, 2.0, 4.0])
    signs = np.array([1.0, -1.0, -1.0])
    offsets = np.array([-1.0, 2.0, 2.0])
    return np.clip(signs * np.abs(h - centres) + offsets, 0.0, 1.0)


def compose(maps: Any, floor_rgb: Any, wall_rgb: Any, object_rgb: Any) -> Any:
    """Linear colour composition: maps (n, H, W, 6), rgbs (n, 3) -> float images (n, H, W, 3).

    One batched matrix product per image, pixels (H*W, 6) @ colours (6, 3); numpy or torch
    (differentiable in maps and colours). Values are not clipped.
    """
    n, height, width, channels = maps.shape
    if _is_torch(maps):
        import torch

        eye = torch.eye(3, dtype=maps.dtype, device=maps.device).expand(n, 3, 3)
        colours = torch.cat([floor_rgb[:, None], wall_rgb[:, None], object_rgb[:, None], eye], 1)
        return torch.bmm(maps.reshape(n, height * width, channels),
                         colours.to(maps.dtype)).reshape(n, height, width, 3)
    colours = np.concatenate([floor_rgb[:, None], wall_rgb[:, None], object_rgb[:, None],
                              np.broadcast_to(np.eye(3), (n, 3, 3))], axis=1).astype(maps.dtype)
    return np.matmul(maps.reshape(n, height * width, channels), colours).reshape(
        n, height, width, 3)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] -> uint8 by clipping and rounding half up."""
    scaled = np.multiply(images, 255.0, dtype=np.float32)
    scaled += 0.5
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return scaled.astype(np.uint8)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


# --------------------------------------------------------------------------- camera and rays


def camera_rays(orientation_deg: float, resolution: int = RESOLUTION,
                supersample: int = SUPERSAMPLE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Origin (3,), unit directions (H*W*S*S, 3) and camera right axis (3,) for one azimuth.

    Rays are ordered (row, col, sub_row, sub_col) so sub-samples average by a reshape.
    """
    theta = np.deg2rad(orientation_deg)
    pitch = np.deg2rad(CAMERA_PITCH_DEG)
    origin = np.array([CAMERA_RADIUS * np.sin(theta), CAMERA_HEIGHT, CAMERA_RADIUS * np.cos(theta)])
    forward = np.array([-np.sin(theta) * np.cos(pitch), np.sin(pitch),
                        -np.cos(theta) * np.cos(pitch)])
    right = np.array([np.cos(theta), 0.0, -np.sin(theta)])
    up = np.cross(right, forward)
    focal = FOCAL_PX * resolution / 64.0
    offsets = (np.arange(supersample) + 0.5) / supersample
    pix = np.arange(resolution)
    rows = (pix[:, None] + offsets[None, :]).reshape(-1) - resolution / 2  # (H*S,)
    cols = rows.copy()
    v = np.broadcast_to(rows.reshape(resolution, 1, supersample, 1), (resolution, resolution,
                        supersample, supersample)).reshape(-1)
    u = np.broadcast_to(cols.reshape(1, resolution, 1, supersample), (resolution, resolution,
                        supersample, supersample)).reshape(-1)
    dirs = focal * forward[None, :] + u[:, None] * right[None, :] - v[:, None] * up[None, :]
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return origin, dirs, right


# --------------------------------------------------------------------------- intersections


def _sphere_hit(o: np.ndarray, d: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Nearest positive t of unit-direction rays with a sphere (inf on a miss)."""
    oc = o - centre
    b = np.sum(oc * d, axis=-1)
    c = np.sum(oc * oc, axis=-1) - radius * radius
    disc = b * b - c
    with np.errstate(invalid="ignore"):
        sq = np.sqrt(np.maximum(disc, 0.0))
    t0, t1 = -b - sq, -b + sq
    t = np.where(t0 > 1e-6, t0, np.where(t1 > 1e-6, t1, _INF))
    return np.where(disc >= 0.0, t, _INF)


def _box_hit(o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Slab test: entry t of rays with an axis-aligned box (inf on a miss)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        ta = (lo - o) * inv
        tb = (hi - o) * inv
    tmin = np.nanmax(np.minimum(ta, tb), axis=-1)
    tmax = np.nanmin(np.maximum(ta, tb), axis=-1)
    hit = (tmax >= tmin) & (tmax > 1e-6)
    t = np.where(tmin > 1e-6, tmin, tmax)
    return np.where(hit, t, _INF)


def _cylinder_hit(o: np.ndarray, d: np.ndarray, radius: float, y0: float, y1: float,
                  caps: bool = True) -> np.ndarray:
    """Vertical cylinder about the y axis between heights y0 and y1 (optionally capped)."""
    a = d[..., 0] ** 2 + d[..., 2] ** 2
    b = o[..., 0] * d[..., 0] + o[..., 2] * d[..., 2]
    c = o[..., 0] ** 2 + o[..., 2] ** 2 - radius * radius
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = b * b - a * c
        sq = np.sqrt(np.maximum(disc, 0.0))
        t_side = (-b - sq) / a
    y = o[..., 1] + t_side * d[..., 1]
    side_ok = (disc >= 0) & (a > 1e-12) & (t_side > 1e-6) & (y >= y0) & (y <= y1)
    t = np.where(side_ok, t_side, _INF)
    if caps:
        for yc in (y0, y1):
            with np.errstate(divide="ignore", invalid="ignore"):
                tc = (yc - o[..., 1]) / d[..., 1]
            px = o[..., 0] + tc * d[..., 0]
            pz = o[..., 2] + tc * d[..., 2]
            ok = (tc > 1e-6) & (px * px + pz * pz <= radius * radius)
            t = np.minimum(t, np.where(ok, tc, _INF))
    return t


def object_hit(shape: int, scale: float, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Nearest hit distance of rays with object ``shape`` at ``scale`` (inf on a miss)."""
    s = float(scale)
    if shape == 0:
        h = CUBE_HALF_EDGE * s
        return _box_hit(o, d, np.array([-h, 0.0, -h]), np.array([h, 2 * h, h]))
    if shape == 1:
        r = CYLINDER_RADIUS * s
        return _cylinder_hit(o, d, r, 0.0, 2 * r)
    if shape == 2:
        return _sphere_hit(o, d, np.array([0.0, s, 0.0]), s)
    if shape == 3:
        r = CAPSULE_RADIUS * s
        y0, y1 = r, 3 * r
        t = _cylinder_hit(o, d, r, y0, y1, caps=False)
        t = np.minimum(t, _sphere_hit(o, d, np.array([0.0, y0, 0.0]), r))
        return np.minimum(t, _sphere_hit(o, d, np.array([0.0, y1, 0.0]), r))
    raise ValueError(f"shape index must be 0..3 ({', '.join(SHAPE_NAMES)}), got {shape}")


def object_normal(shape: int, scale: float, p: np.ndarray) -> np.ndarray:
    """Outward unit normal of the object surface at points ``p`` (n, 3)."""
    s = float(scale)
    if shape == 0:
        h = CUBE_HALF_EDGE * s
        q = (p - np.array([0.0, h, 0.0])) / h
        axis = np.argmax(np.abs(q), axis=-1)
        n = np.zeros_like(p)
        n[np.arange(len(p)), axis] = np.sign(q[np.arange(len(p)), axis])
        return n
    if shape == 1:
        r = CYLINDER_RADIUS * s
        radial = np.hypot(p[:, 0], p[:, 2])
        on_cap = (p[:, 1] >= 2 * r - 1e-4 * max(s, 1.0)) & (radial < r * (1 - 1e-4))
        n = np.stack([p[:, 0], np.zeros(len(p)), p[:, 2]], axis=-1)
        n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
        n[on_cap] = [0.0, 1.0, 0.0]
        return n
    if shape == 2:
        n = p - np.array([0.0, s, 0.0])
    else:
        r = CAPSULE_RADIUS * s
        axis_point = np.zeros_like(p)
        axis_point[:, 1] = np.clip(p[:, 1], r, 3 * r)
        n = p - axis_point
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------- room


def _room_layer(orientation_deg: float, resolution: int, supersample: int) -> dict[str, Any]:
    """Everything about the empty room for one azimuth: exit distances, classes, shading."""
    o, d, right = camera_rays(orientation_deg, resolution, supersample)
    half = ROOM_HALF
    lo = np.array([-half, 0.0, -half])
    hi = np.array([half, WALL_HEIGHT, half])
    with np.errstate(divide="ignore", invalid="ignore"):
        t_axes = np.where(d > 0, (hi - o) / d, np.where(d < 0, (lo - o) / d, _INF))
    exit_axis = np.argmin(t_axes, axis=-1)
    t_exit = t_axes[np.arange(len(d)), exit_axis]
    p = o + t_exit[:, None] * d
    is_floor = (exit_axis == 1) & (d[:, 1] < 0)
    is_sky = (exit_axis == 1) & (d[:, 1] > 0)
    is_back = (exit_axis == 2) & (d[:, 2] < 0)
    is_side = ~(is_floor | is_sky | is_back)
    cam_x = (p - o) @ right
    floor_level = np.clip(FLOOR_FALLOFF[0] - FLOOR_FALLOFF[1] * cam_x, FLOOR_FALLOFF[2], 1.0)
    along = np.where(is_back, p[:, 0], p[:, 2])
    texture = (1.0 + 0.018 * np.sin(2 * np.pi * (along + p[:, 1]) / 1.3)
               + 0.010 * np.sin(2 * np.pi * (along - 0.6 * p[:, 1]) / 0.47 + 1.0))
    wall_level = np.where(is_back, BACK_WALL_LEVEL * (1.0 - 0.004 * cam_x),
                          SIDE_WALL_LEVEL) * texture
    return {"o": o, "d": d, "t": t_exit, "p": p, "floor": is_floor, "sky": is_sky,
            "wall": is_back | is_side, "floor_level": floor_level, "wall_level": wall_level}


def _render(room: dict[str, Any], shape: int, scale: float, resolution: int,
            supersample: int) -> np.ndarray:
    """Coefficient map (H, W, 6) float64 for one object in a precomputed room."""
    o, d = room["o"], room["d"]
    n_rays = len(d)
    t_obj = object_hit(shape, scale, np.broadcast_to(o, d.shape), d)
    is_obj = t_obj < room["t"]
    a_floor = np.zeros(n_rays)
    a_wall = np.zeros(n_rays)
    a_obj = np.zeros(n_rays)
    beta = np.zeros((n_rays, 3))

    floor = room["floor"] & ~is_obj
    fp = room["p"][floor]
    fp_up = fp + np.array([0.0, 1e-4, 0.0])
    shadowed = np.isfinite(object_hit(shape, scale, fp_up, np.broadcast_to(LIGHT_DIR, fp.shape)))
    a_floor[floor] = room["floor_level"][floor] * np.where(shadowed, SHADOW_LEVEL, 1.0)

    wall = room["wall"] & ~is_obj
    a_wall[wall] = room["wall_level"][wall]

    sky = room["sky"] & ~is_obj
    beta[sky] = SKY_RGB

    if is_obj.any():
        dv = d[is_obj]
        p = o + t_obj[is_obj, None] * dv
        n = object_normal(shape, scale, p)
        ndl = n @ LIGHT_DIR
        diffuse = np.maximum(ndl, 0.0)
        reflect = 2.0 * ndl[:, None] * n - LIGHT_DIR
        spec = np.where(ndl > 0, np.maximum(np.sum(reflect * -dv, axis=-1), 0.0), 0.0)
        spec = SPECULAR_WEIGHT * spec**SPECULAR_POWER
        a_obj[is_obj] = (OBJECT_AMBIENT + OBJECT_DIFFUSE * diffuse) * (1.0 - spec)
        beta[is_obj] = spec[:, None]

    out = np.concatenate([a_floor[:, None], a_wall[:, None], a_obj[:, None], beta], axis=1)
    out = out.reshape(resolution, resolution, supersample * supersample, NUM_CHANNELS)
    return out.mean(axis=2)


def render_geometry(shape: int, scale: float, orientation_deg: float,
                    resolution: int = RESOLUTION, supersample: int = SUPERSAMPLE) -> np.ndarray:
    """Coefficient map (H, W, 6) float32 for one geometry; scale and orientation continuous."""
    room = _room_layer(float(orientation_deg), resolution, supersample)
    return _render(room, int(shape), float(scale), resolution, supersample).astype(np.float32)


def render_grid(scales: np.ndarray, shapes: np.ndarray, orientations: np.ndarray,
                resolution: int = RESOLUTION, supersample: int = SUPERSAMPLE,
                progress: bool = False) -> np.ndarray:
    """Maps for the product grid, float32 (n_scale, n_shape, n_orient, H, W, 6).

    The room is ray-cast once per orientation and reused for every object.
    """
    out = np.zeros((len(scales), len(shapes), len(orientations), resolution, resolution,
                    NUM_CHANNELS), np.float32)
    iterator = range(len(orientations))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="render 3dshapes geometry", unit="orientation")
    for k in iterator:
        room = _room_layer(float(orientations[k]), resolution, supersample)
        for i, scale in enumerate(scales):
            for j, shape in enumerate(shapes):
                out[i, j, k] = _render(room, int(shape), float(scale), resolution, supersample)
    return out
