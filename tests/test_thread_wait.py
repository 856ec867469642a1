"""Sleeping OpenMP waiters: set by ``bench`` before torch loads, overridable, and the same
numbers as spinning ones to the last bit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

TRAIN = """
import hashlib, os, sys
import bench  # sets the policy (unless the environment did) before torch loads
import torch
torch.set_num_threads(2)
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                          torch.nn.Linear(8 * 14 * 14, 4))
opt = torch.optim.Adam(net.parameters())
x = torch.randn(8, 3, 16, 16)
for _ in range(2):
    loss = net(x).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in net.parameters()))
print(os.environ["OMP_WAIT_POLICY"], digest.hexdigest())
"""


def _train(policy: str | None) -> tuple[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("OMP_WAIT_POLICY", None)
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", TRAIN], env=env, check=True, capture_output=True,
                         text=True, timeout=300).stdout.split()
    return out[0], out[1]


def test_bench_makes_waiters_sleep_and_the_numbers_do_not_change():
    default_policy, default_weights = _train(None)
    active_policy, active_weights = _train("ACTIVE")
    assert default_policy == "PASSIVE"
    assert active_policy == "ACTIVE"  # a value in the environment wins
    assert default_weights == active_weights
