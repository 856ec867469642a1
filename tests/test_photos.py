"""Photos as generator inputs (``datasets.photos``): listing, cropping, resizing, FFHQ alignment
and the one-line errors for files that cannot be used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import BenchError
from datasets.photos import ffhq_quad, image_files, load_photo, read_landmarks


def _save(path: Path, pixels: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path) if mode else Image.fromarray(pixels).save(path)
    return path


def test_folders_list_their_png_and_jpeg_files_sorted(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 3), np.uint8)
    for name in ("b.png", "a.JPG", "c.jpeg"):
        _save(tmp_path / "in" / name, pixels)
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    (tmp_path / "in" / "sub").mkdir()
    single = _save(tmp_path / "z.png", pixels)
    found = image_files([tmp_path / "in", single])
    assert [p.name for p in found] == ["a.JPG", "b.png", "c.jpeg", "z.png"]


@pytest.mark.parametrize(("setup", "fragment"), [
    (lambda root: root / "missing", "not found: expected PNG or JPEG files"),
    (lambda root: (root / "empty").mkdir() or root / "empty", "folder without PNG or JPEG"),
    (lambda root: [(root / "x.gif").write_bytes(b"GIF89a"), root / "x.gif"][1],
     "not a PNG or JPEG file name"),
])
def test_bad_paths_are_named(tmp_path: Path, setup, fragment: str) -> None:
    path = setup(tmp_path)
    with pytest.raises(BenchError, match=fragment):
        image_files([path])


def test_two_images_of_one_name_are_refused(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 3), np.uint8)
    a, b = _save(tmp_path / "1" / "x.png", pixels), _save(tmp_path / "2" / "x.png", pixels)
    with pytest.raises(BenchError, match="two images are named x.png"):
        image_files([a, b])


def test_centre_crop_and_resize(tmp_path: Path) -> None:
    """A 3:1 image whose middle third is green: the square crop keeps only the green."""
    pixels = np.zeros((30, 90, 3), np.uint8)
    pixels[:, :30] = (255, 0, 0)
    pixels[:, 30:60] = (0, 255, 0)
    pixels[:, 60:] = (0, 0, 255)
    out = load_photo(_save(tmp_path / "wide.png", pixels), 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - [0, 255, 0]).max() <= 2
    tall = load_photo(_save(tmp_path / "tall.png", pixels.transpose(1, 0, 2).copy()), 30)
    assert np.array_equal(tall, pixels[:, 30:60].transpose(1, 0, 2))  # same size: exact


def test_alpha_is_dropped_and_jpeg_is_read(tmp_path: Path) -> None:
    rgba = np.full((8, 8, 4), 200, np.uint8)
    assert load_photo(_save(tmp_path / "a.png", rgba), 8).shape == (8, 8, 3)
    path = tmp_path / "b.jpg"
    Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(path, quality=95)
    assert np.abs(load_photo(path, 8).astype(int) - 100).max() <= 3


def test_grayscale_for_an_rgb_generator_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "g.png", np.full((8, 8), 90, np.uint8))
    with pytest.raises(BenchError, match=r"g.png is grayscale \(mode L\).*expected an RGB"):
        load_photo(path, 8)
    assert load_photo(path, 8, channels=1).shape == (8, 8, 1)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(BenchError, match=r"image .*broken.png: cannot be read"):
        load_photo(path, 8)


def _face(cx: float, cy: float, d: float, m: float) -> np.ndarray:
    """68 landmarks of an upright face: eyes (36-41, 42-47) around (cx -+ d, cy), mouth
    corners (48, 54) at (cx -+ 1, cy + m); the rest at the centre."""
    points = np.tile([cx, cy], (68, 1)).astype(float)
    points[36:42] = [cx - d, cy]
    points[42:48] = [cx + d, cy]
    points[48] = [cx - 1, cy + m]
    points[54] = [cx + 1, cy + m]
    return points


def test_ffhq_quad_of_an_upright_face() -> None:
    """Eye distance 2d, eye-to-mouth m: the half side is max(4d, 1.8m) along x once the
    mouth's offset is folded in (FFHQ's rule), centred a tenth of the way to the mouth."""
    quad = ffhq_quad(_face(100, 80, 10, 30))
    half = max(2 * 20, 30 * 1.8)
    centre = np.array([100, 83])
    expected = centre + np.array([[-half, -half], [-half, half], [half, half], [half, -half]])
    assert np.allclose(quad, expected)


def test_landmarks_align_the_face(tmp_path: Path) -> None:
    """The aligned crop of a face whose FFHQ square is exactly the red block is all red."""
    pixels = np.zeros((300, 300, 3), np.uint8)
    quad = ffhq_quad(_face(150, 140, 10, 30))
    (x0, y0), (x1, y1) = quad[0].astype(int), quad[2].astype(int)
    pixels[y0:y1, x0:x1] = (255, 0, 0)
    out = load_photo(_save(tmp_path / "face.png", pixels), 16, landmarks=_face(150, 140, 10, 30))
    assert np.abs(out[2:-2, 2:-2].astype(int) - [255, 0, 0]).max() <= 2


def test_read_landmarks(tmp_path: Path) -> None:
    good = tmp_path / "lm.json"
    good.write_text('{"a.png": ' + str(_face(1, 2, 3, 4).tolist()) + "}")
    assert read_landmarks(good)["a.png"].shape == (68, 2)
    bad = tmp_path / "bad.json"
    bad.write_text('{"a.png": [[1, 2]]}')
    with pytest.raises(BenchError, match=r"'a.png' has shape \(1, 2\): expected 68"):
        read_landmarks(bad)
    with pytest.raises(BenchError, match="not found"):
        read_landmarks(tmp_path / "none.json")


def test_write_images_of_rendered_ground_truth(tmp_path: Path) -> None:
    """`bench prepare shapes3d-synth --write-images DIR`: the images `bench edit
    --dataset-images N` edits, as PNG files named with their factor indices."""
    from datasets import load_ground_truth
    from datasets.prepare import IMAGES_SEED, write_images

    folder = write_images("shapes3d-synth", tmp_path / "photos", 3)
    files = image_files([folder])
    factors, images = load_ground_truth("shapes3d-synth").sample(
        3, np.random.default_rng(IMAGES_SEED))
    assert [p.name for p in files] == [
        f"shapes3d-synth-{i:03d}-f{'-'.join(map(str, f))}.png" for i, f in enumerate(factors)]
    assert np.array_equal(load_photo(files[1], 64), images[1])
    with pytest.raises(ValueError, match="exists; expected a new folder"):
        write_images("shapes3d-synth", folder, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]
