"""`kizuna demo`: one generated workload replayed under each policy, and what that shows.

Nothing here prints: `run_demo` returns a `DemoReport`, which main.py renders as Rich tables
or as one JSON document, so both outputs always carry the same data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kizuna.kernel.units import Instant
from kizuna.scheduling import CycleResult, Job, Policy, Project, Reason, Snapshot
from kizuna.scheduling.reasons import request
from kizuna.simulation import ReplayResult, Workload, replay
from kizuna.simulation.replay import ProgressHook

Track = Callable[[str, int], ProgressHook]
"""Given a policy name and the number of jobs, returns the progress hook of its replay."""

PENDING_ROWS = 10


@dataclass(frozen=True, slots=True)
class PendingRow:
    """One waiting job and the reason the cycle gave for it."""

    job: Job
    waited: float
    reason: Reason


@dataclass(frozen=True, slots=True)
class Busiest:
    """The cycle that left the most jobs waiting, and the first of them in policy order."""

    policy: str
    at: Instant
    waiting: int
    codes: dict[str, int]
    """How many waiting jobs have each reason code, most common first."""
    rows: tuple[PendingRow, ...]


class BusiestMoment:
    """A replay's cycle hook that keeps the cycle with the most waiting jobs (the earliest
    one on ties), without keeping every snapshot."""

    def __init__(self) -> None:
        self.at = Instant(0.0)
        self.waiting = 0
        self.snapshot: Snapshot | None = None
        self.result: CycleResult | None = None

    def __call__(self, now: Instant, snapshot: Snapshot, result: CycleResult) -> None:
        # every pending job not admitted has a reason; counting this way leaves the
        # cycle's lazily written reasons unwritten for all but the kept cycle
        waiting = len(snapshot.pending) - len(result.admissions)
        if waiting > self.waiting:
            self.at, self.waiting, self.snapshot, self.result = now, waiting, snapshot, result

    def busiest(self, policy: str, limit: int = PENDING_ROWS) -> Busiest | None:
        if self.snapshot is None or self.result is None or not self.result.reasons:
            return None
        pending = {j.id: j for j in self.snapshot.pending}
        waiting = [jid for jid in self.result.order if jid in self.result.reasons]
        rows = tuple(self._row(pending[jid], self.result.reasons[jid]) for jid in waiting[:limit])
        codes = Counter(r.code.value for r in self.result.reasons.values())
        return Busiest(policy, self.at, len(waiting), dict(codes.most_common()), rows)

    def _row(self, job: Job, reason: Reason) -> PendingRow:
        return PendingRow(job, max(0.0, self.at - job.submit_time), reason)


@dataclass(frozen=True)
class DemoReport:
    """Everything the demo shows: the workload, one result per policy, the busiest moment."""

    seed: int
    workload: Workload
    policies: tuple[Policy, ...]
    results: tuple[ReplayResult, ...]
    busiest: Busiest | None

    def as_json(self) -> dict[str, Any]:
        """The report as plain JSON values: seconds as numbers, codes as strings."""
        return {
            "seed": self.seed,
            "cluster": {"nodes": len(self.workload.nodes), "gpus": self.workload.gpus()},
            "projects": [_project_json(self.workload, p) for p in self.workload.projects.values()],
            "jobs": len(self.workload.jobs),
            "policies": [
                {
                    "policy": p.name,
                    "backfill": p.backfill,
                    "cycles": r.cycles,
                    "metrics": asdict(r.metrics),
                }
                for p, r in zip(self.policies, self.results, strict=True)
            ],
            "pending": _busiest_json(self.busiest) if self.busiest else None,
        }


def run_demo(
    workload: Workload, policies: Sequence[Policy], seed: int, track: Track | None = None
) -> DemoReport:
    """Replay `workload` under each policy in turn; the first one's busiest cycle is kept."""
    results = []
    moment = BusiestMoment()
    for k, policy in enumerate(policies):
        hook = track(policy.name, len(workload.jobs)) if track is not None else None
        on_cycle = moment if k == 0 else None
        results.append(replay(workload, policy, on_progress=hook, on_cycle=on_cycle))
    busiest = moment.busiest(policies[0].name) if policies else None
    return DemoReport(seed, workload, tuple(policies), tuple(results), busiest)


def _project_json(workload: Workload, project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "cohort": project.cohort,
        "award_gpu_hours": workload.awards[project.id],
        "nominal": {t: q.nominal for t, q in project.quotas.items()},
    }


def _busiest_json(busiest: Busiest) -> dict[str, Any]:
    return {
        "policy": busiest.policy,
        "at": busiest.at,
        "waiting": busiest.waiting,
        "reasons": busiest.codes,
        "jobs": [_row_json(row) for row in busiest.rows],
    }


def _row_json(row: PendingRow) -> dict[str, Any]:
    return {
        "job": row.job.id,
        "project": row.job.project,
        "request": request(row.job),
        "gpus": row.job.gpus,
        "gpu_type": row.job.gpu_type,
        "waited": row.waited,
        "reason": row.reason.code.value,
        "message": row.reason.message,
        "earliest_start": row.reason.earliest_start,
    }
