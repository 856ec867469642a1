"""Fixtures shared by several test modules."""

from __future__ import annotations

from core.cpu_isa import pin_cpu_isa
from core.thread_wait import pin_passive_waiting

pin_cpu_isa()  # before any tensor work: the same numbers on AVX2 and AVX-512 hosts
pin_passive_waiting()  # before torch loads its OpenMP runtime: a busy machine costs its share

import os  # noqa: E402

# `bench run` in a test runs its cells one at a time, in the test's process (where the toys are
# registered), unless the test says --jobs; the default layout's pool has tests of its own.
os.environ["BENCH_JOBS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests draw the same examples on every run, so a test run (and CI) passes or fails with
# the code, not with the draw; `pytest --hypothesis-profile explore` searches afresh for new cases
# (pin what it finds with @example).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")


@pytest.fixture
def toys(tmp_path, monkeypatch):
    """The toy methods and datasets of ``bench_toys`` registered for one test; yields the file
    the toy method counts its trainings in (``$TOY_COUNTER``)."""
    from bench_toys import register_toys, unregister_toys

    register_toys()
    counter = tmp_path / "counter.txt"
    monkeypatch.setenv("TOY_COUNTER", str(counter))
    yield counter
    unregister_toys()


@pytest.fixture
def one_torch_thread():
    """Small convs on a shared 2-core machine run far faster single-threaded; opt in per module
    with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def logistic_regression_spy():
    """``(Spy, made)``: a LogisticRegression that records its keyword arguments in ``made`` and
    warns twice when fitted, a ConvergenceWarning (which the metrics silence) and a UserWarning
    (which they must let through). Monkeypatch it over
    ``sklearn.linear_model.LogisticRegression`` (the metrics import it when they fit)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    made: list[dict] = []

    class Spy(LogisticRegression):
        def __init__(self, **kwargs):
            made.append(kwargs)
            super().__init__(**kwargs)

        def fit(self, x, y):
            warnings.warn("not converged", ConvergenceWarning, stacklevel=2)
            warnings.warn("something else", UserWarning, stacklevel=2)
            return super().fit(x, y)

    return Spy, made
