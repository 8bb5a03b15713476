"""Job history as a canonical trace (`kizuna.traces`): what the live service ran, in the very
shape the simulator replays, so a planning study can be checked against reality.

H1. A job is exported once it is finished (succeeded, failed, timed out or cancelled) and
    had at least one run segment that started on its GPUs. A job that never started (cancelled
    while it waited, or whose launch failed) did no work and held no GPUs: it is left out, as
    a replay would otherwise admit it and change the order everything else starts in.
H2. `submit` is the submission instant in seconds since the Unix epoch (a replay starts its
    clock at the first one, so slices of history keep their true offsets).
H3. `duration` is the time the job held its GPUs: the sum of its run segments' lengths, each
    from its admission (its GPUs are the job's from then on: the scheduler gives them to no
    one else) to its end as the backend reported it. So the cost of starting the processes
    is part of the job's work, as it is on the cluster, and a replay that admits the job at
    the same instant ends it at the same instant. A preempted and resumed job thus counts
    every segment, including work it redid after restarting from its checkpoint: the trace
    says how long it occupied GPUs, which is what it was charged for (one usage record per
    segment), not how long it would run undisturbed.
H4. `walltime`, `gpus`, `gpu_type` and `priority` are what the job asked for; `project` is
    `org/name`; `id` is the job's number.
H5. `since` and `until` select by submission, [since, until); `project` and `organization`
    narrow the jobs as `GET /jobs` does, and only the organizations the caller sees count.
    Records come in submit order, ties by id.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kizuna.services import projects as project_service
from kizuna.services.errors import InvalidRequest
from kizuna.services.kinds import FINAL
from kizuna.services.pages import visible_only
from kizuna.services.principal import Principal
from kizuna.store.tables import Job, Run
from kizuna.traces.model import TraceRecord


def export(
    session: Session,
    principal: Principal,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
    organization: str | None = None,
) -> list[TraceRecord]:
    """The finished jobs the caller sees, as canonical trace records (H1-H5)."""
    if since is not None and until is not None and until <= since:
        raise InvalidRequest(["until must be after since"])
    statement = visible_only(select(Job), Job.organization_id, principal)
    statement = statement.where(Job.state.in_([s.value for s in FINAL]))
    columns = (Job.project_id, Job.organization_id)
    statement = project_service.narrowed(
        session, principal, statement, columns, project, organization
    )
    if since is not None:
        statement = statement.where(Job.submitted_at >= since)
    if until is not None:
        statement = statement.where(Job.submitted_at < until)
    jobs = list(session.scalars(statement.order_by(Job.submitted_at, Job.id)))
    held = _held(session, [j.id for j in jobs])
    names = project_service.names(session, {j.project_id for j in jobs})
    return [_record(j, held[j.id], names[j.project_id]) for j in jobs if j.id in held]


def _held(session: Session, job_ids: list[int]) -> dict[int, float]:
    """H1, H3: seconds each job's started segments held their GPUs; jobs that never started
    are absent."""
    out: dict[int, float] = defaultdict(float)
    if not job_ids:
        return out
    rows = session.execute(
        select(Run.job_id, Run.admitted_at, Run.ended_at).where(
            Run.job_id.in_(job_ids), Run.started_at.is_not(None), Run.ended_at.is_not(None)
        )
    )
    for job_id, admitted, ended in rows:
        if ended is not None:
            out[job_id] += max(0.0, (ended - admitted).total_seconds())
    return out


def _record(job: Job, duration: float, project: str) -> TraceRecord:
    """H2-H4."""
    return TraceRecord(
        id=str(job.id),
        project=project,
        submit=job.submitted_at.timestamp(),
        gpus=job.gpus,
        duration=duration,
        gpu_type=job.gpu_type,
        walltime=float(job.walltime),
        priority=job.priority,
    )
