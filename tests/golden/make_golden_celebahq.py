"""Write ``celebahq_diffpure.npz``: logits of NVIDIA's PyTorch port of the CelebA-HQ attribute
classifiers (NVlabs/DiffPure ``classifiers/``) on seeded random weights.

Run by hand, once, when the fixture needs remaking; ``tests/test_celebahq.py`` only reads the file
written here and never needs DiffPure. NVlabs/DiffPure at commit
985703facc13da38d84bcaf52b3bc5b2ef9906f1: ``classifiers/attribute_net.py`` (the ProGAN
discriminator ``D``, built as its ``load_attribute_classifier`` builds it: ``fixed_size=True``,
``use_mbstd=False``) and ``classifiers/attribute_classifier.py`` (``downsample``, ``get_logit``,
``get_softmaxed``), both unchanged.

Per case the weights are the TF variables of ``celebahq_fixtures.d_paper_layout`` drawn by
``celebahq_fixtures.random_variables(layout, weight_seed)`` (the layout of NVIDIA's pickles),
placed into DiffPure's state dict here (conv ``[k, k, in, out]`` -> ``[out, in, k, k]``, dense
``[in, out]`` -> ``[out, in]``, ``<scope>/bias`` -> ``wscale.b``, ``lod_in`` = 0) and loaded with
``load_state_dict(strict=True)``; the images are ``celebahq_fixtures.random_images(n, size,
image_seed)``. Cases:

* ``paper256``: the real layout (256 px, fmap_base 8192, fmap_max 512), two 512-px images through
  DiffPure's ``get_softmaxed`` (its 2x2 box downsampling to 256 px, then the net): ``logits``
  ``[n, 2]`` (= [l, -l]) and ``softmaxed`` ``[n]`` (softmax column 1, as DiffPure returns it).
* ``tiny16`` (16 px, 64 / 32) and ``clamped32`` (32 px, 128 / 24: nf 24, 24, 24, 16, 8): the net
  called directly (DiffPure's ``downsample`` only knows 256 px): ``logits`` ``[n, 1]``.

``info`` (a JSON string) holds the cases' settings, the commit and the torch / numpy versions.

How to run (about a minute on one CPU core)::

    mkdir -p /tmp/refs-celebahq/diffpure
    git -C <mirror of NVlabs/DiffPure> archive 985703fa classifiers/attribute_net.py \\
        classifiers/attribute_classifier.py | tar -x -C /tmp/refs-celebahq/diffpure
    OMP_NUM_THREADS=1 python tests/golden/make_golden_celebahq.py \\
        --diffpure /tmp/refs-celebahq/diffpure

The export stays outside the repository; nothing of it is copied in. Everything is float32 on
the CPU; reruns reproduce the file.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # celebahq_fixtures, tf_network_pickle

from celebahq_fixtures import d_paper_layout, random_images, random_variables  # noqa: E402

COMMIT = "985703facc13da38d84bcaf52b3bc5b2ef9906f1"
CASES = {
    "paper256": {"resolution": 256, "fmap_base": 8192, "fmap_max": 512, "weight_seed": 256,
                 "image_seed": 1256, "n": 2, "size": 512},
    "tiny16": {"resolution": 16, "fmap_base": 64, "fmap_max": 32, "weight_seed": 16,
               "image_seed": 1016, "n": 8, "size": 16},
    "clamped32": {"resolution": 32, "fmap_base": 128, "fmap_max": 24, "weight_seed": 32,
                  "image_seed": 1032, "n": 4, "size": 32},
}


def diffpure_state(variables: dict[str, np.ndarray], resolution: int) -> dict[str, torch.Tensor]:
    """TF variables -> DiffPure ``D`` parameter names (its WScale layers hold the raw weights)."""
    scopes = {"FromRGB_lod0": "fromrgb_lod0.conv", "4x4/Conv": "4x4.conv",
              "4x4/Dense0": "4x4.dense0", "4x4/Dense1": "4x4.dense1"}
    r = resolution
    while r >= 8:
        scopes[f"{r}x{r}/Conv0"] = f"{r}x{r}.conv0"
        scopes[f"{r}x{r}/Conv1_down"] = f"{r}x{r}.conv1"
        r //= 2
    state = {"lod_in": torch.tensor(0.0, dtype=torch.float64)}
    for scope, prefix in scopes.items():
        w = variables[f"{scope}/weight"]
        inner = "linear" if w.ndim == 2 else "conv"
        w = w.T if w.ndim == 2 else w.transpose(3, 2, 0, 1)
        state[f"{prefix}.{inner}.weight"] = torch.from_numpy(np.ascontiguousarray(w))
        state[f"{prefix}.wscale.b"] = torch.from_numpy(variables[f"{scope}/bias"])
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--diffpure", type=Path, required=True,
                        help="folder holding DiffPure's classifiers/ (the export above)")
    parser.add_argument("--out", type=Path, default=HERE / "celebahq_diffpure.npz")
    args = parser.parse_args()
    sys.path.insert(0, str(args.diffpure))
    attribute_net = importlib.import_module("classifiers.attribute_net")
    attribute_classifier = importlib.import_module("classifiers.attribute_classifier")
    torch.set_num_threads(1)
    out: dict[str, np.ndarray] = {}
    for name, case in CASES.items():
        layout = d_paper_layout(case["resolution"], case["fmap_base"], case["fmap_max"])
        variables = dict(random_variables(layout, case["weight_seed"]))
        net = attribute_net.D(num_channels=3, resolution=case["resolution"],
                              fmap_base=case["fmap_base"], fmap_max=case["fmap_max"],
                              fixed_size=True, use_mbstd=False)
        net.load_state_dict(diffpure_state(variables, case["resolution"]), strict=True)
        net.eval()
        images = torch.from_numpy(random_images(case["n"], case["size"], case["image_seed"]))
        with torch.no_grad():
            if name == "paper256":
                logits, softmaxed = attribute_classifier.get_softmaxed(net, images)
                out[f"{name}/softmaxed"] = softmaxed.numpy()
            else:
                logits = net(images)
        out[f"{name}/logits"] = logits.numpy()
        print(name, out[f"{name}/logits"].ravel())
    out["info"] = np.array(json.dumps({
        "diffpure_commit": COMMIT, "cases": CASES, "torch": torch.__version__,
        "numpy": np.__version__}, sort_keys=True))
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
