"""The ``shapes3d-disc`` sensor asset from a GAN training state: the discriminator's residual
blocks in float16 plus a JSON naming the state by sha256 (``models.sensors`` loads it).

    python -m training.sensor_export export-disc --state STATE [--out PATH]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file

from core.hashing import file_sha256
from core.io import atomic_path, atomic_write_text, dumps_json
from models.sensors import SHAPES3D_SENSOR, DiscriminatorSensor
from models.stylegan2.config import StyleGAN2Config
from training.train_gan import load_training_state


def export_disc_sensor(state_path: Path, target: Path = SHAPES3D_SENSOR) -> Path:
    """Write the discriminator blocks of a (full or compact) training state as the sensor asset
    (float16 safetensors + JSON naming the source by sha256)."""
    state = load_training_state(state_path)
    config = StyleGAN2Config.from_dict(state["config"])
    blocks = DiscriminatorSensor(config).state_dict()
    tensors = {k: state["D"][k].to(torch.float16).contiguous() for k in blocks}
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp))
    doc = {"format": "disentangle-bench/sensor", "sensor": "shapes3d-disc",
           "config": config.to_dict(),
           "source": {"training_state": Path(state_path).name,
                      "sha256": file_sha256(state_path),
                      "cur_nimg": int(state.get("cur_nimg", 0))},
           "command": "python -m training.sensor_export export-disc --state "
                      + Path(state_path).name}
    atomic_write_text(target.with_suffix(".json"), dumps_json(doc))
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.sensor_export",
                                     description="Build sensor assets.")
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export-disc", help="the shapes3d-disc asset from a training state")
    export.add_argument("--state", type=Path, required=True,
                        help="a full or compact training state (train-generator's state.pt)")
    export.add_argument("--out", type=Path, default=SHAPES3D_SENSOR)
    args = parser.parse_args(argv)
    target = export_disc_sensor(args.state, args.out)
    print(json.dumps({"sensor": str(target), "bytes": target.stat().st_size}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
