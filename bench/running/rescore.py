"""Filling in the direction-recovery score of cells run before it existed: ``bench rescore``.

The score is computed at the end of the directions flow from the scored directions and the
bundle's true directions, and it is not part of the cell id, so cells run before it keep their
ids and lack it. For each done directions cell of a grid on a bundle with ``true_directions``
whose result.json has no ``direction_recovery`` record, this recomputes only the directions
(stages "discover" and "calibrate": the method's run with the cell's config, seed and thread
count, from the stage cache where it holds them) and, as the proof that they are the directions
the cell scored, the "discovery-metrics" stage: its R.json must equal the cell's committed
R.json number for number (within ``CROSS_CPU_R_TOLERANCE`` when the cell ran on another CPU
model), and the three stage keys the ones result.json records. Only then is
the score written into result.json (atomically, ``core.io``) with a ``rescored`` record (the
scores filled in, the commit that computed them, when, and how long it took). A cell whose R
differs is refused with one line and left as it was.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.flows.directions import (
    RECOVERY_RECORD,
    discovery_stage,
    flow_generator,
    flow_settings,
    recovery_scores,
    scored_directions,
)
from bench.planning.plan import CellPlan, load_bundle, plain_config
from bench.results.context import CellContext
from bench.results.store import ResultStore
from bench.running.worker import collect_versions
from bench.threads import torch_threads
from core.cpu_isa import cpu_model
from core.io import read_json
from methods.base import method_spec

PROOF_STAGES = ("discover", "calibrate", "discovery-metrics")
R_FILE = "R.json"
# A cell run on another CPU model: oneDNN's kernels differ in the last float32 digits (measured:
# R entries within 1e-6 for oracle, random and ganspace cells run on a Xeon, recomputed on an
# EPYC), so its R must agree within this instead of exactly: ten times that noise, far below
# any difference between two sets of directions.
CROSS_CPU_R_TOLERANCE = 1e-5


@dataclass(frozen=True)
class RescoreOutcome:
    """One cell: ``rescored`` (with its new scores), or ``refused`` with the reason (one line)."""

    cell_id: str
    label: str
    rescored: bool
    seconds: float
    message: str = ""
    scores: dict[str, float] | None = None
    notices: tuple[str, ...] = ()  # damaged stage caches moved aside and recomputed


def needs_rescore(plan: CellPlan, store: ResultStore, true_directions: bool) -> bool:
    """A done directions cell of a bundle with true directions, without the recovery record."""
    if plan.kind != "directions" or not true_directions or store.status(plan.id) != "done":
        return False
    return RECOVERY_RECORD not in store.load(plan.id)


def rescore_plans(plans: Sequence[CellPlan], store: ResultStore, data_dir: str | None
                  ) -> list[CellPlan]:
    """The cells of ``plans`` that lack the score and can get it (``needs_rescore``)."""
    capable: dict[str, bool] = {}
    chosen = []
    for plan in plans:
        dataset = plan.cell.dataset
        if dataset not in capable:
            capable[dataset] = "true_directions" in load_bundle(dataset, data_dir).provides()
        if needs_rescore(plan, store, capable[dataset]):
            chosen.append(plan)
    return chosen


def r_difference(recomputed: dict[str, Any], committed: dict[str, Any]) -> str | None:
    """None if the two R.json records are equal (every number to the last digit), else what
    differs, in a few words."""
    if recomputed == committed:
        return None
    for variant in ("R_absdiff", "R_meandiff"):
        a = np.asarray(recomputed.get(variant), dtype=float)
        b = np.asarray(committed.get(variant), dtype=float)
        if a.shape != b.shape:
            return f"{variant} has shape {a.shape}, the committed one {b.shape}"
        if not np.array_equal(a, b):
            return (f"{variant} differs by up to {float(np.abs(a - b).max()):.3g} "
                    f"({int((a != b).sum())} of {a.size} entries)")
    fields = sorted(k for k in set(recomputed) | set(committed)
                    if recomputed.get(k) != committed.get(k))
    return f"{', '.join(fields)} differ"


def r_max_difference(recomputed: dict[str, Any], committed: dict[str, Any]) -> float | None:
    """The largest absolute difference between the two records' R matrices, or None where they
    differ in anything else (a shape, a name, a setting). The scores stored beside R are read
    off it and left out: a count over a threshold may flip on the last digit."""
    numeric = ("R_absdiff", "R_meandiff")
    if any(recomputed.get(k) != committed.get(k) for k in set(recomputed) | set(committed)
           if k not in (*numeric, "scores")):
        return None
    largest = 0.0
    for key in numeric:
        a = np.asarray(recomputed.get(key), dtype=float)
        b = np.asarray(committed.get(key), dtype=float)
        if a.shape != b.shape:
            return None
        if a.size:
            largest = max(largest, float(np.abs(a - b).max()))
    return largest


def rescore_cell(plan: CellPlan, store: ResultStore, data_dir: str | None,
                 versions: dict[str, Any], quiet: bool = True) -> RescoreOutcome:
    """Recompute one cell's directions, prove them equal to the stored cell's, write the score
    (see the module docstring). Call with the results lock held."""
    start = time.perf_counter()
    label = plan.cell.label
    committed_r = store.run_dir(plan.id) / R_FILE
    notices: list[str] = []

    def refuse(why: str) -> RescoreOutcome:
        return RescoreOutcome(plan.id, label, False, time.perf_counter() - start,
                              f"{label} [{plan.id}]: {why}; not rescored",
                              notices=tuple(notices))

    if not committed_r.is_file():
        return refuse(f"no {committed_r}: nothing to prove the recomputed directions against")
    with torch_threads(plan.threads):
        bundle = load_bundle(plan.cell.dataset, data_dir)
        if dict(bundle.identity) != plan.bundle_identity:
            return refuse(f"dataset {plan.cell.dataset!r} changed since the grid was planned")
        config = method_spec(plan.cell.method).config(plan.cell.profile,
                                                      **dict(plan.cell.overrides))
        if plain_config(config) != plan.config:
            return refuse("the method's config changed since the grid was planned")
        with tempfile.TemporaryDirectory(prefix=".rescore-", dir=store.root) as scratch:
            ctx = CellContext(cell=plan.cell, bundle=bundle, config=config, store=store,
                              artifacts_dir=Path(scratch), stage_versions=plan.stage_versions,
                              quiet=quiet, threads=plan.threads, notices=notices)
            settings = flow_settings(ctx.profile, bundle.protocol.get(ctx.profile))
            generator = flow_generator(ctx)
            directions = scored_directions(ctx, generator, settings)
            discovery_stage(ctx, generator, directions, settings)
            recomputed = read_json(Path(scratch) / R_FILE)
        committed = read_json(committed_r)
        difference = r_difference(recomputed, committed)
        result = store.load(plan.id)
        proof = f"stages {', '.join(PROOF_STAGES)} recomputed; R.json equal to the cell's"
        if difference is not None:
            hint = _host_hint(result)
            gap = r_max_difference(recomputed, committed) if hint else None
            if gap is None or gap > CROSS_CPU_R_TOLERANCE:
                return refuse(f"the recomputed R differs from {committed_r} ({difference})"
                              f"{hint}")
            proof = (f"stages {', '.join(PROOF_STAGES)} recomputed on another CPU model "
                     f"({cpu_model()}; the cell ran on {result['host']['cpu_model']}); R.json "
                     f"within {CROSS_CPU_R_TOLERANCE:g} of the cell's (largest difference "
                     f"{gap:.3g})")
        recorded = {s.get("name"): s.get("key") for s in result.get("stages", [])
                    if isinstance(s, dict)}
        changed = [name for name in PROOF_STAGES if recorded.get(name) != ctx.stage_keys[name]]
        if changed:
            return refuse(f"stage key(s) of {', '.join(changed)} differ from result.json's")
        recovered = recovery_scores(ctx, directions)
        if recovered is None:
            return refuse(f"dataset {plan.cell.dataset!r} has no true directions")
        scores, record = recovered
    seconds = time.perf_counter() - start
    result["metrics"].update(scores)
    result[RECOVERY_RECORD] = record
    result["rescored"] = {
        "scores": sorted(scores), "record": RECOVERY_RECORD,
        "proof": proof,
        "git_commit": versions.get("git_commit"), "git_dirty": versions.get("git_dirty"),
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 3)}
    store.write(plan.id, result)
    return RescoreOutcome(plan.id, label, True, seconds, scores=scores, notices=tuple(notices))


def _host_hint(result: dict[str, Any]) -> str:
    """Where the cell ran on another CPU model than this host, a clause saying so."""
    host = result.get("host")
    theirs = host.get("cpu_model") if isinstance(host, dict) else None
    ours = cpu_model()
    if theirs is None or theirs == ours:
        return ""
    return (f"; the cell ran on {theirs}, this host is {ours}, and oneDNN's kernels are not "
            f"pinned across CPU models (core/cpu_isa.py): across models R must agree within "
            f"{CROSS_CPU_R_TOLERANCE:g}")


def rescore(plans: Sequence[CellPlan], store: ResultStore, data_dir: str | None, *,
            quiet: bool = True, report: Callable[[RescoreOutcome], None] | None = None
            ) -> list[RescoreOutcome]:
    """Rescore every cell of ``plans`` that needs it (``rescore_plans``), under the results
    lock; ``report(outcome)`` hears each one as it ends."""
    store.check_folder(must_exist=True)
    with store.lock():
        todo = rescore_plans(plans, store, data_dir)
        versions = collect_versions() if todo else {}
        outcomes = []
        for plan in todo:
            outcome = rescore_cell(plan, store, data_dir, versions, quiet)
            outcomes.append(outcome)
            if report is not None:
                report(outcome)
    return outcomes
