"""Fixtures shared by several test modules."""

from __future__ import annotations

from core.cpu_isa import pin_cpu_isa

pin_cpu_isa()  # before any tensor work: the same numbers on AVX2 and AVX-512 hosts

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def one_torch_thread():
    """Small convs on a shared 2-core machine run far faster single-threaded; opt in per module
    with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
