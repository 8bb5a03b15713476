"""A planning study: one trace replayed under every policy on every cluster size asked for.

S1 Runs go scale by scale, and within a scale policy by policy, in the order given; every
   scale's workload is built before the first replay, so a bad spec fails at once.
S2 At a scale other than 1, the cluster is `ClusterSpec.scaled(scale)` and each GPU type's
   nominal quotas are scaled in the same proportion as its GPUs (awards.py, A3), so every
   size of a sweep keeps the awards' ratio of quota to cluster. Without awards, each size
   derives its own from demand (A2).
S3 Wall seconds are measured around each replay alone (building the workload excluded).
S4 With several workers, replays run side by side in processes of their own (a sweep on a
   many-core machine); each is the same pure replay, so results are the same as one by one,
   but wall seconds then share the machine.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType
from kizuna.kernel.units import HOUR
from kizuna.scheduling import Policy
from kizuna.simulation.awards import AwardsSpec
from kizuna.simulation.cluster import ClusterSpec
from kizuna.simulation.metrics import Metrics, Spread
from kizuna.simulation.replay import ProgressHook, ReplayOptions, ReplayResult, replay
from kizuna.simulation.scenario import JobDefaults, build
from kizuna.simulation.workload import Workload
from kizuna.traces.model import Trace

Progress = Callable[[str, int], ProgressHook]
"""Given a run's label and how many jobs it replays, returns the progress hook of its replay."""


@dataclass(frozen=True)
class Study:
    """What to replay: a trace, a cluster and its awards, the policies and the sizes."""

    name: str
    """What the trace is called in reports (its file name)."""
    trace: Trace
    cluster: ClusterSpec
    policies: tuple[Policy, ...]
    awards: AwardsSpec | None = None
    """None: each project's awards follow its demand (A2)."""
    awards_label: str = "from demand"
    """Where the awards came from, as reports show it."""
    scales: tuple[float, ...] = (1.0,)
    defaults: JobDefaults = field(default_factory=JobDefaults)
    options: ReplayOptions = field(default_factory=ReplayOptions)

    def problems(self) -> list[str]:
        """Everything that would make a run fail, found before any replay."""
        found = [*self.defaults.problems(), *self.options.problems()]
        if not self.trace.records:
            found.append(f"the trace {self.name} has no jobs")
        if not self.policies:
            found.append("a study needs at least one policy")
        found += [f"a scale must be positive (got {s:g})" for s in self.scales if not s > 0]
        if not self.scales:
            found.append("a study needs at least one cluster scale")
        return found

    def run(self, progress: Progress | None = None, workers: int = 1) -> StudyResult:
        """Replay every (scale, policy) pair (S1), `workers` replays at a time (S4)."""
        problems = self.problems()
        if problems:
            raise InvalidRequest(problems)
        sizes = [(scale, self.cluster_at(scale)) for scale in dict.fromkeys(self.scales)]
        workloads = [
            build(self.trace.records, cluster, self.awards_at(cluster), self.defaults)
            for _, cluster in sizes
        ]
        runs = [
            (scale, cluster, workload, policy)
            for (scale, cluster), workload in zip(sizes, workloads, strict=True)
            for policy in self.policies
        ]
        hooks = [
            progress(_label(policy, scale), len(workload.jobs)) if progress else None
            for scale, _, workload, policy in runs
        ]
        if workers > 1 and len(runs) > 1:
            done = self._side_by_side(runs, hooks, workers)
        else:
            done = [
                _timed(workload, policy, self.options, hook)
                for (_, _, workload, policy), hook in zip(runs, hooks, strict=True)
            ]
        rows = tuple(
            Row.of(policy, scale, cluster, workload, result, wall)
            for (scale, cluster, workload, policy), (result, wall) in zip(runs, done, strict=True)
        )
        return StudyResult(self, rows, tuple(result for result, _ in done))

    def _side_by_side(
        self,
        runs: list[tuple[float, ClusterSpec, Workload, Policy]],
        hooks: list[ProgressHook | None],
        workers: int,
    ) -> list[tuple[ReplayResult, float]]:
        """S4: each replay in a process of its own, `workers` at a time; a run's progress
        shows when it ends. Results come back in the study's order."""
        spawn = multiprocessing.get_context("spawn")  # no fork of a process with threads
        with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
            futures = {
                pool.submit(_timed, workload, policy, self.options, None): n
                for n, (_, _, workload, policy) in enumerate(runs)
            }
            done: dict[int, tuple[ReplayResult, float]] = {}
            for future in as_completed(futures):
                n = futures[future]
                done[n] = future.result()
                hook = hooks[n]
                if hook is not None:
                    total = len(runs[n][2].jobs)
                    hook(total, total)
        return [done[n] for n in range(len(runs))]

    def cluster_at(self, scale: float) -> ClusterSpec:
        return self.cluster if scale == 1 else self.cluster.scaled(scale)

    def awards_at(self, cluster: ClusterSpec) -> AwardsSpec | None:
        """The awards on a cluster of the sweep (S2)."""
        if self.awards is None or cluster is self.cluster:
            return self.awards
        base, now = self.cluster.gpus(), cluster.gpus()
        nominal = _nominal(self.awards)
        targets = {t: round(nominal.get(t, 0) * now[t] / base[t]) for t in now if base.get(t)}
        return self.awards.scale_to(targets)


@dataclass(frozen=True, slots=True)
class Row:
    """One replay of the study: a policy on a cluster size, and what it measured."""

    policy: str
    scale: float
    cluster: str
    gpus: Mapping[str, int]
    nodes: int
    metrics: Metrics
    wall_seconds: float
    cycles: int
    refused: int
    """Jobs of the trace larger than this cluster ever is (W4), never replayed."""
    backfill: bool
    quotas: bool
    budgets: bool

    @property
    def label(self) -> str:
        return _switches(self.policy, self.backfill, self.quotas, self.budgets)

    @property
    def total_gpus(self) -> int:
        return sum(self.gpus.values())

    @classmethod
    def of(
        cls,
        policy: Policy,
        scale: float,
        cluster: ClusterSpec,
        workload: Workload,
        result: ReplayResult,
        wall: float,
    ) -> Row:
        return cls(
            policy.name,
            scale,
            cluster.name,
            _gpus(cluster.gpus()),
            len(workload.nodes),
            result.metrics,
            wall,
            result.cycles,
            result.refused,
            policy.backfill,
            policy.quotas,
            policy.budgets,
        )


@dataclass(frozen=True)
class StudyResult:
    """The study, one row per replay in run order, and the replays themselves (for reports)."""

    study: Study
    rows: tuple[Row, ...]
    results: tuple[ReplayResult, ...]

    def by_scale(self) -> list[tuple[float, list[tuple[Row, ReplayResult]]]]:
        """The replays grouped by scale, in run order."""
        groups: dict[float, list[tuple[Row, ReplayResult]]] = {}
        for row, result in zip(self.rows, self.results, strict=True):
            groups.setdefault(row.scale, []).append((row, result))
        return list(groups.items())

    def as_json(self) -> dict[str, Any]:
        """The study as plain JSON values: times in seconds, work in GPU-hours."""
        study, trace = self.study, self.study.trace
        return {
            "trace": {
                "name": study.name,
                "format": trace.source,
                "jobs": len(trace.records),
                "skipped": len(trace.problems),
                "filtered": trace.filtered,
            },
            "cluster": {"name": study.cluster.name, "gpus": _gpus(study.cluster.gpus())},
            "awards": study.awards_label,
            "options": options_json(study),
            "runs": [_row_json(row) for row in self.rows],
        }


def options_json(study: Study) -> dict[str, float]:
    """The job defaults and replay options of a study, in seconds."""
    d, o = study.defaults, study.options
    return {
        "checkpoint_interval": o.checkpoint_interval,
        "restart_overhead": o.restart_overhead,
        "walltime_factor": d.walltime_factor,
        "grace": d.grace,
        "min_runtime": d.min_runtime,
    }


def finite(value: float, digits: int) -> float | None:
    """`value` rounded, or None where JSON has no number for it (infinity, NaN)."""
    return round(value, digits) if math.isfinite(value) else None


def _timed(
    workload: Workload, policy: Policy, options: ReplayOptions, hook: ProgressHook | None
) -> tuple[ReplayResult, float]:
    start = time.perf_counter()
    result = replay(workload, policy, options, on_progress=hook)
    return result, time.perf_counter() - start


def _nominal(awards: AwardsSpec) -> dict[str, int]:
    out: dict[str, int] = {}
    for award in awards.awards:
        for gpu_type, quota in award.quotas.items():
            out[gpu_type] = out.get(gpu_type, 0) + quota.nominal
    return out


def _label(policy: Policy, scale: float) -> str:
    return f"{_switches(policy.name, policy.backfill, policy.quotas, policy.budgets)} x{scale:g}"


def _switches(name: str, backfill: bool, quotas: bool, budgets: bool) -> str:
    off = [word for word, on in (("backfill", backfill), ("quotas", quotas)) if not on]
    notes = [f"no {word}" for word in off] + (["budgets"] if budgets else [])
    return f"{name} ({', '.join(notes)})" if notes else name


def _gpus(gpus: Mapping[GpuType, int]) -> dict[str, int]:
    return {str(t): n for t, n in gpus.items()}


def _row_json(row: Row) -> dict[str, Any]:
    return {
        "policy": row.policy,
        "backfill": row.backfill,
        "quotas": row.quotas,
        "budgets": row.budgets,
        "scale": row.scale,
        "cluster": {"name": row.cluster, "nodes": row.nodes, "gpus": dict(row.gpus)},
        "wall_seconds": round(row.wall_seconds, 3),
        "cycles": row.cycles,
        "refused": row.refused,
        "metrics": _metrics_json(row.metrics),
    }


def _metrics_json(m: Metrics) -> dict[str, Any]:
    return {
        "jobs": m.jobs,
        "finished": m.finished,
        "timed_out": m.timed_out,
        "never_started": m.never_started,
        "jct": _spread(m.jct, 3),
        "wait": _spread(m.wait, 3),
        "slowdown": _spread(m.slowdown, 4),
        "makespan": round(m.makespan, 3),
        "utilisation": round(m.utilisation, 4),
        "utilisation_by_type": {t: round(u, 4) for t, u in m.utilisation_by_type.items()},
        "gpu_hours": round(m.gpu_hours, 3),
        "preemptions": m.preemptions,
        "lost_gpu_hours": round(m.lost_gpu_seconds / HOUR, 3),
        "jct_mean_bound": round(m.jct_mean_bound, 3),
        "makespan_bound": round(m.makespan_bound, 3),
        "jain": round(m.jain, 4),
        "projects": [
            {
                "project": p.project,
                "jobs": p.jobs,
                "demand_gpu_hours": round(p.demand, 3),
                "received_gpu_hours": round(p.received, 3),
                "entitled_gpu_hours": round(p.entitled, 3),
                "ratio": finite(p.ratio, 4),
            }
            for p in m.projects
        ],
    }


def _spread(spread: Spread, digits: int) -> dict[str, float]:
    return {
        "mean": round(spread.mean, digits),
        "p50": round(spread.p50, digits),
        "p95": round(spread.p95, digits),
        "p99": round(spread.p99, digits),
    }
