"""A dataset bundle: what one grid dataset provides (ground truth, generator, predictor, the
default sensor of the feature-contrast methods).

It lives in models, below methods and metrics, so that a method's ``run`` can type its first
argument; it joins the layers below (datasets and models).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from datasets.base import GroundTruthData
from models.generator import Generator

COMPONENTS = ("ground_truth", "generator", "predictor", "sensor")


class MetricsProvider(Protocol):
    """What scores a learned representation on ground truth: the registered metrics
    (``metrics.sampling``) unless a bundle brings its own (``Bundle.metrics``, e.g. a test's
    stand-in). ``metric_settings(profile)`` enters the cell id."""

    def metric_settings(self, profile: str) -> Mapping[str, Any]: ...

    def representation_metrics(self, data: GroundTruthData,
                               represent: Callable[[np.ndarray], np.ndarray],
                               rng: np.random.Generator, profile: str) -> Mapping[str, float]: ...


@dataclass
class Bundle:
    """Everything a cell may need from one dataset; heavy parts load lazily on first use.

    ``identity`` is what the cell hash sees: it must change whenever any component would.
    ``capabilities`` names extra things the bundle knows (e.g. ``"true_directions"``: its
    generator has ``true_directions()``); methods can require them like components.
    ``describe`` opens the named inputs and says what each component is (``sources``).
    ``sensor`` names the registered sensor (``models.sensors``) that methods comparing deep
    features use unless their config names another; its identity belongs in ``identity``.
    ``protocol`` maps a profile name to the dataset's own values of the directions flow's
    settings under it (``bench.flows.directions.DirectionsFlowSettings`` fields; a mapping for
    ``discovery`` / ``calibration`` replaces only the sub-fields it names), e.g. the paper's
    evaluation protocol for that dataset. They enter the cell's metric settings, hence its id;
    a bundle without one (most) keeps the profile's settings and its ids.
    ``metrics`` scores the representations of cells on this dataset; None (every built-in
    bundle): the registered metrics (``bench.results.context.metrics_of``).
    """

    name: str
    ground_truth: GroundTruthData | None = None
    load_generator: Callable[[], Generator] | None = None
    load_predictor: Callable[[], Any] | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset()
    sensor: str | None = None
    describe: Callable[[], dict[str, str]] | None = None
    protocol: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    metrics: MetricsProvider | None = None

    def sources(self) -> dict[str, str]:
        """What each component will load (component -> one line), after opening every input
        the user named as a cell would; a bad one is an error here, before any cell starts."""
        return self.describe() if self.describe is not None else {}

    def provides(self) -> set[str]:
        have = set(self.capabilities)
        if self.ground_truth is not None:
            have.add("ground_truth")
        if self.load_generator is not None:
            have.add("generator")
        if self.load_predictor is not None:
            have.add("predictor")
        if self.sensor is not None:
            have.add("sensor")
        return have

    @property
    def data_identity(self) -> dict[str, Any]:
        """The part of ``identity`` about the ground-truth data alone (what a method trained
        on that data depends on; the generator, predictor and sensor are not part of it)."""
        return {k: v for k, v in self.identity.items() if k.startswith("ground_truth")}

    @cached_property
    def generator(self) -> Generator:
        if self.load_generator is None:
            raise ValueError(f"dataset {self.name!r} has no generator")
        return self.load_generator()

    @cached_property
    def predictor(self) -> Any:
        if self.load_predictor is None:
            raise ValueError(f"dataset {self.name!r} has no attribute predictor")
        return self.load_predictor()
