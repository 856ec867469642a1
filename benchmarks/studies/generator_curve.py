"""Quality of generator snapshots over training, and figures of the shipped generator.

``curve``: ``training.quality.generator_quality`` (``--n`` generated vs rendered images, no floor)
for every ``kimg<N>.safetensors`` snapshot in a folder, appended to a JSON-lines file, then a plot
of the per-factor TV distance and the Fréchet distance over kimg.
``compare``: several such curve files (runs) in one plot, for the factors named, over kimg.
``figures``: a sample grid of a generator and a side-by-side grid of rendered and generated
images (rows alternate: rendered, generated).

    PYTHONPATH=. python benchmarks/studies/generator_curve.py curve training-runs/x/snaps \\
        --out docs/generator/data/generator_curve.jsonl \\
        --png docs/generator/shapes3d-generator-curve.png
    PYTHONPATH=. python benchmarks/studies/generator_curve.py compare \\
        docs/generator/data/a.jsonl docs/generator/data/b.jsonl --labels a b \\
        --png docs/generator/shapes3d-generator-a-vs-b.png
    PYTHONPATH=. python benchmarks/studies/generator_curve.py figures \\
        models/weights/shapes3d_generator.safetensors --docs docs/generator
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch

from datasets import load_ground_truth
from models.predictor import RESOLUTION, SHAPES3D_PREDICTOR, load_predictor, uint8_to_input
from models.stylegan2 import load_generator
from training.quality import at_resolution, generator_quality
from training.train_gan import save_image_grid


def snapshot_kimg(path: Path) -> int:
    match = re.fullmatch(r"kimg(\d+)\.safetensors", path.name)
    if not match:
        raise SystemExit(f"{path}: expected a file named kimg<N>.safetensors")
    return int(match.group(1))


def curve(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    done = set()
    if out.is_file():
        done = {json.loads(line)["kimg"] for line in out.read_text().splitlines() if line}
    predictor = load_predictor(SHAPES3D_PREDICTOR)
    ground_truth = load_ground_truth("shapes3d-synth")
    snapshots = sorted(Path(args.folder).glob("kimg*.safetensors"), key=snapshot_kimg)
    for path in snapshots:
        kimg = snapshot_kimg(path)
        if kimg in done or kimg % args.every:
            continue
        figures = generator_quality(load_generator(path), predictor, ground_truth, n=args.n,
                                    seed=0, floor=False, reference=False)
        row = {"kimg": kimg, "n": args.n, "frechet_distance": figures["frechet_distance"],
               **{f"tv_{name}": f["tv_distance"] for name, f in figures["factors"].items()},
               **{f"maxprob_{name}": f["mean_max_prob"]
                  for name, f in figures["factors"].items()}}
        print(json.dumps(row), flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
    plot(out, Path(args.png), args.title)


def plot(path: Path, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_rows(path)
    kimg = [r["kimg"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key in sorted(k for k in rows[0] if k.startswith("tv_")):
        left.plot(kimg, [r[key] for r in rows], "o-", label=key[3:])
    left.axhline(0.12, color="k", ls=":", label="target 0.12")
    left.set_xlabel("kimg")
    left.set_ylabel(f"TV distance (n = {rows[0]['n']})")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    right.semilogy(kimg, [r["frechet_distance"] for r in rows], "o-")
    right.axhline(2000, color="k", ls=":", label="target 2,000")
    right.set_xlabel("kimg")
    right.set_ylabel("predictor-feature Fréchet distance")
    right.legend()
    right.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    print(f"wrote {png}")


def read_rows(path: Path) -> list[dict]:
    return sorted((json.loads(line) for line in path.read_text().splitlines() if line),
                  key=lambda r: r["kimg"])


def compare(args: argparse.Namespace) -> None:
    """Fréchet distance and the named factors' TV distances of several runs over kimg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = args.labels or [Path(f).stem for f in args.files]
    if len(labels) != len(args.files):
        raise SystemExit(f"--labels: expected {len(args.files)} labels, got {len(labels)}")
    runs = [read_rows(Path(f)) for f in args.files]
    panels = ["frechet_distance", *(f"tv_{name}" for name in args.factors)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4))
    for ax, key in zip(axes, panels, strict=True):
        for rows, label in zip(runs, labels, strict=True):
            rows = [r for r in rows if (args.max_kimg is None or r["kimg"] <= args.max_kimg)
                    and (args.min_kimg is None or r["kimg"] >= args.min_kimg)]
            ax.plot([r["kimg"] for r in rows], [r[key] for r in rows], "o-", ms=3, label=label)
        if key == "frechet_distance":
            ax.set_yscale("log")
            ax.set_title("predictor-feature Fréchet")
        else:
            ax.axhline(0.12, color="k", ls=":")
            ax.set_title(f"TV {key[3:]} (target 0.12)")
        ax.set_xlabel("kimg")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(args.title)
    fig.tight_layout()
    png = Path(args.png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    print(f"wrote {png}")


def figures(args: argparse.Namespace) -> None:
    """Both grids at the predictor's 64 px as the pipeline sees them: a smaller generator's
    images nearest-upsampled, renders area-downsampled to the generator's size first."""
    docs = Path(args.docs)
    generator = load_generator(args.generator)
    z = torch.randn(64, generator.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        native = generator.synthesize(generator.mapping(z))
    size = native.shape[-1]
    generated = at_resolution(native, size, RESOLUTION)
    save_image_grid(generated, docs / "shapes3d-generator-samples.png")
    _, renders = load_ground_truth("shapes3d-synth").sample(32, np.random.default_rng(1))
    rendered = at_resolution(uint8_to_input(renders), size, RESOLUTION)
    rows = [block for i in range(4) for block in (rendered[8 * i:8 * i + 8],
                                                  generated[8 * i:8 * i + 8])]
    save_image_grid(torch.cat(rows), docs / "shapes3d-rendered-vs-generated.png")
    print(f"wrote {docs / 'shapes3d-generator-samples.png'}, "
          f"{docs / 'shapes3d-rendered-vs-generated.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("curve")
    c.add_argument("folder")
    c.add_argument("--out", required=True)
    c.add_argument("--png", default="docs/generator/shapes3d-generator-curve.png")
    c.add_argument("--n", type=int, default=2000)
    c.add_argument("--every", type=int, default=1, help="only every k-th kimg")
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--title", default="shapes3d StyleGAN2 quality over training")
    k = sub.add_parser("compare")
    k.add_argument("files", nargs="+", help="curve files (JSON lines) written by `curve`")
    k.add_argument("--labels", nargs="+", default=None)
    k.add_argument("--factors", nargs="+", default=["scale", "shape", "orientation"])
    k.add_argument("--min-kimg", type=float, default=None)
    k.add_argument("--max-kimg", type=float, default=None)
    k.add_argument("--png", required=True)
    k.add_argument("--title", default="shapes3d StyleGAN2 runs compared")
    f = sub.add_parser("figures")
    f.add_argument("generator")
    f.add_argument("--docs", default="docs/generator")
    args = parser.parse_args()
    {"curve": curve, "compare": compare, "figures": figures}[args.command](args)


if __name__ == "__main__":
    main()
