"""The store's picture of the cluster as the scheduling core sees it: a `Snapshot` (ADR 0022).

P1. Nodes as stored; running jobs are the open runs (admitted, running or stopping), each
    from its start (or admission, before the backend started it) with the GPUs the scheduler
    gave it; a run asked to stop holds its GPUs until its stop deadline, kept for the job it
    was preempted for.
P2. Pending jobs in submit order, their LAS `attained` service from their earlier runs.
P3. Every project with an active award, a pending job or an open run: quotas from its
    active awards, fair-share shares = its awards' nominal GPUs (at least 1), fair-share
    usage = GPU-seconds of its usage records plus what its open runs have used so far (not
    decayed: `as_of` is now), budgets from the ledger; all projects form one cohort,
    `program`, as in the simulator.
P4. Core jobs are kept between cycles while the stored job did not change (same id,
    segments, state), so the scheduler's kept queue sees the same objects (ADR 0013).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kizuna.kernel.ids import CohortId, JobId, NodeId, ProjectId
from kizuna.kernel.units import GpuSeconds, Instant, Seconds
from kizuna.scheduling.model import PRIORITY_CLASSES, Allocation, RunningJob, Snapshot
from kizuna.scheduling.model import Job as CoreJob
from kizuna.scheduling.model import Project as CoreProject
from kizuna.scheduling.model import UsageRecord as CoreUsage
from kizuna.services import ledger
from kizuna.services import nodes as node_service
from kizuna.services import projects as project_service
from kizuna.services.kinds import JobState
from kizuna.store.tables import Award, Job, Run, UsageRecord

COHORT = CohortId("program")


def allocation_json(allocation: Allocation) -> dict[str, Any]:
    return {"parts": [[str(node), list(indices)] for node, indices in allocation.parts]}


def allocation_of(stored: dict[str, Any]) -> Allocation:
    return Allocation(tuple((NodeId(n), tuple(int(i) for i in ix)) for n, ix in stored["parts"]))


def stop_deadline(run: Run, job: Job, at: datetime) -> datetime:
    """When a run told to stop at `at` must have released its GPUs: after its grace, and no
    later than its walltime's end."""
    started = run.started_at or run.admitted_at
    return min(at + timedelta(seconds=job.grace), started + timedelta(seconds=job.walltime))


@dataclass
class Picture:
    """Builds snapshots; keeps core jobs between cycles (P4)."""

    jobs: dict[int, tuple[tuple[Any, ...], CoreJob]] = field(default_factory=dict)

    def snapshot(
        self,
        session: Session,
        pending: Sequence[Job],
        open_runs: Sequence[tuple[Run, Job]],
        now: datetime,
    ) -> Snapshot:
        attained = self._attained(session, [j.id for j in pending if j.segments])
        running = []
        for run, job in open_runs:
            start = run.started_at or run.admitted_at
            stopping_at = None
            if run.stop_kind is not None:
                stopping_at = Instant(
                    (run.stop_deadline or stop_deadline(run, job, now)).timestamp()
                )
            running.append(
                RunningJob(
                    self.core_job(job, attained.get(job.id, 0.0)),
                    Instant(start.timestamp()),
                    allocation_of(run.allocation),
                    stopping_at,
                    JobId(str(run.for_job)) if run.for_job is not None else None,
                )
            )
        core_pending = tuple(self.core_job(j, attained.get(j.id, 0.0)) for j in pending)
        projects = {j.project_id for j in pending} | {r.project_id for r, _ in open_runs}
        projects |= set(  # the whole cohort: idle quota of projects without jobs is lent
            session.scalars(
                select(Award.project_id).where(Award.starts_at <= now, Award.ends_at > now)
            )
        )
        return Snapshot(
            nodes=node_service.core_nodes(session),
            running=tuple(running),
            pending=core_pending,
            projects=self._projects(session, projects, open_runs, now),
        )

    def core_job(self, job: Job, attained: float) -> CoreJob:
        stamp = (job.segments, job.state == JobState.PENDING.value, attained)
        kept = self.jobs.get(job.id)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        core = CoreJob(
            id=JobId(str(job.id)),
            project=ProjectId(job.project_id),
            gpu_type=job.gpu_type,  # type: ignore[arg-type]
            gpus=job.gpus,
            walltime=Seconds(float(job.walltime)),
            submit_time=Instant(job.submitted_at.timestamp()),
            gpus_per_node=job.gpus_per_node,
            priority=PRIORITY_CLASSES.get(job.priority, PRIORITY_CLASSES["normal"]),
            grace=Seconds(float(job.grace)),
            one_domain=job.one_domain,
            attained=GpuSeconds(attained),
        )
        self.jobs[job.id] = (stamp, core)
        return core

    def forget(self, job_ids: Sequence[int]) -> None:
        for job_id in job_ids:
            self.jobs.pop(job_id, None)

    @staticmethod
    def _attained(session: Session, job_ids: list[int]) -> dict[int, float]:
        if not job_ids:
            return {}
        rows = session.execute(
            select(UsageRecord.job_id, func.sum(UsageRecord.gpu_ms))
            .where(UsageRecord.job_id.in_(job_ids))
            .group_by(UsageRecord.job_id)
        )
        return {job: float(total or 0) / 1000 for job, total in rows}

    @staticmethod
    def _projects(
        session: Session,
        ids: set[str],
        open_runs: Sequence[tuple[Run, Job]],
        now: datetime,
    ) -> dict[ProjectId, CoreProject]:
        if not ids:
            return {}
        used: dict[str, float] = defaultdict(float)
        for project, total in session.execute(
            select(UsageRecord.project_id, func.sum(UsageRecord.gpu_ms))
            .where(UsageRecord.project_id.in_(ids))
            .group_by(UsageRecord.project_id)
        ):
            used[project] += float(total or 0) / 1000
        for run, job in open_runs:
            if run.started_at is not None:
                held = min(max(0.0, (now - run.started_at).total_seconds()), job.walltime)
                used[run.project_id] += run.gpus * held
        shares: dict[str, int] = defaultdict(int)
        for project, nominal in session.execute(
            select(Award.project_id, func.sum(Award.nominal_gpus))
            .where(Award.project_id.in_(ids), Award.starts_at <= now, Award.ends_at > now)
            .group_by(Award.project_id)
        ):
            shares[project] = int(nominal or 0)
        budgets = ledger.budgets(session, ids, now)
        at = Instant(now.timestamp())
        return {
            ProjectId(p): CoreProject(
                ProjectId(p),
                COHORT,
                project_service.quotas(session, p, now),
                shares=float(max(1, shares[p])),
                usage=CoreUsage(used[p], at),
                budgets=budgets[ProjectId(p)],
            )
            for p in sorted(ids)
        }
