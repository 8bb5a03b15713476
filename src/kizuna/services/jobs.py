"""Jobs: submit, list, show with events, why, cancel (ADR 0019, 0020).

J1. A submission is checked by the scheduling core's own rules (`validate_job`) against the
    cluster's nodes, and against the project's awards (one of its GPU type must be active now
    or later): a job that can never run is refused at once, with every reason.
J2. Every change of a job's state is an event on its timeline, written with the change.
J3. `why` gives the reason the live loop stored at its last cycle (ADR 0022); before the loop
    has looked at a new job, a dry run of the scheduling core on the store's picture of the
    queue (nothing is written). Job ids of other organizations in a reason are replaced by
    words, so a reason leaks nothing (R1).
J4. Cancelling a pending job ends it at once; a job with an open run is stopped by the live
    loop with its checkpoint signal and grace period, and is cancelled when the run ends.
J5. A job's runs are shown to whoever sees the job (R1), each with what its usage record
    charged (none while it is open); a run is named by its segment, the latest by default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kizuna.execution.backend import SIGNALS
from kizuna.kernel.ids import GpuType, JobId, ProjectId
from kizuna.kernel.units import Instant, Seconds
from kizuna.scheduling import make_policy, run_cycle
from kizuna.scheduling.decisions import Reason, ReasonCode
from kizuna.scheduling.model import PRIORITY_CLASSES, Snapshot
from kizuna.scheduling.model import Job as CoreJob
from kizuna.scheduling.model import Project as CoreProject
from kizuna.scheduling.validation import validate_job
from kizuna.services import audit_log, organizations
from kizuna.services import nodes as node_service
from kizuna.services import projects as project_service
from kizuna.services.context import Context, row_state
from kizuna.services.errors import Conflict, Forbidden, InvalidRequest, NotFound
from kizuna.services.kinds import FINAL, JobState
from kizuna.services.pages import Page, page, visible_only
from kizuna.services.principal import Principal
from kizuna.store.tables import Job, JobEvent, Organization, Project, Run, UsageRecord

MAX_WALLTIME = 366 * 86_400
MAX_GPUS = 1_000_000
MAX_COMMAND_ARGS = 1024
MAX_ARG = 8192
MAX_GRACE = 3600
POLICY = "fair-share"


@dataclass(frozen=True)
class Submission:
    project: str
    command: list[str]
    gpus: int
    gpu_type: str
    walltime: int
    name: str = ""
    gpus_per_node: int | None = None
    priority: str = "normal"
    one_domain: bool = False
    signal: str = "TERM"
    grace: int = 30
    workdir: str | None = None
    requeue: bool = True


def submit(ctx: Context, request: Submission) -> Job:
    project = project_service.get(ctx.session, ctx.principal, request.project)
    if not ctx.principal.member_of(project.organization_id) and not ctx.principal.is_program_admin:
        raise Forbidden("only members of the project's organization submit its jobs")
    _check(ctx, request, project)
    job = Job(
        project_id=project.id,
        organization_id=project.organization_id,
        submitted_by=ctx.principal.person_id,
        name=request.name or _default_name(request),
        command=list(request.command),
        gpu_type=request.gpu_type,
        gpus=request.gpus,
        gpus_per_node=request.gpus_per_node,
        walltime=request.walltime,
        priority=request.priority,
        one_domain=request.one_domain,
        signal=request.signal,
        grace=request.grace,
        workdir=request.workdir,
        requeue=request.requeue,
        segments=0,
        reason_start=None,
        state=JobState.PENDING.value,
        reason_code=None,
        reason_message=None,
        submitted_at=ctx.now,
        started_at=None,
        ended_at=None,
        exit_code=None,
    )
    ctx.session.add(job)
    ctx.session.flush()
    _event(ctx, job, "submitted", f"submitted to {project.name} by {ctx.principal.email}")
    audit_log.record(ctx, "job.submit", job, object_id=str(job.id))
    return job


def _default_name(request: Submission) -> str:
    return request.command[0].rsplit("/", 1)[-1][:200] if request.command else "job"


def _check(ctx: Context, request: Submission, project: Project) -> None:
    problems = _request_problems(request)
    if problems:
        raise InvalidRequest(problems)
    shapes = ctx.shapes or node_service.ShapeCache()
    cluster = shapes.shape(ctx.session)
    problems = validate_job(_core_job(request, project.id, 0, ctx.now), cluster)
    if not project_service.covers(ctx.session, project.id, request.gpu_type, ctx.now):
        problems.append(
            f"project {project.name} has no award of {request.gpu_type} active now or later"
        )
    if problems:
        raise InvalidRequest(problems)


def _request_problems(request: Submission) -> list[str]:
    problems = []
    if not request.command:
        problems.append("a job needs a command")
    if len(request.command) > MAX_COMMAND_ARGS or any(len(a) > MAX_ARG for a in request.command):
        problems.append(f"a command has at most {MAX_COMMAND_ARGS} arguments of {MAX_ARG} chars")
    if not 1 <= request.gpus <= MAX_GPUS:
        problems.append(f"GPUs must be between 1 and {MAX_GPUS:,} (got {request.gpus})")
    if not 1 <= request.walltime <= MAX_WALLTIME:
        problems.append(f"walltime must be between 1 s and 366 days (got {request.walltime} s)")
    if request.signal not in SIGNALS:
        problems.append(f"unknown signal {request.signal!r}; known: {', '.join(SIGNALS)}")
    if not 0 <= request.grace <= MAX_GRACE:
        problems.append(f"grace must be between 0 and {MAX_GRACE} s (got {request.grace})")
    if request.workdir is not None and not request.workdir.startswith("/"):
        problems.append(f"workdir must be an absolute path (got {request.workdir!r})")
    if request.priority not in PRIORITY_CLASSES:
        known = ", ".join(PRIORITY_CLASSES)
        problems.append(f"unknown priority class {request.priority!r}; known: {known}")
    return problems


def _core_job(request: Submission | Job, project_id: str, job_id: int, at: datetime) -> CoreJob:
    return CoreJob(
        id=JobId(str(job_id)),
        project=ProjectId(project_id),
        gpu_type=GpuType(request.gpu_type),
        gpus=request.gpus,
        walltime=Seconds(float(request.walltime)),
        submit_time=Instant(at.timestamp()),
        gpus_per_node=request.gpus_per_node,
        priority=PRIORITY_CLASSES.get(request.priority, PRIORITY_CLASSES["normal"]),
        grace=Seconds(float(request.grace)),
        one_domain=request.one_domain,
    )


def _event(ctx: Context, job: Job, kind: str, message: str) -> None:
    ctx.session.add(
        JobEvent(job_id=job.id, at=ctx.now, kind=kind, message=message, actor=ctx.principal.actor)
    )


def get(session: Session, principal: Principal, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or not principal.sees(job.organization_id):
        raise NotFound("job", job_id)
    return job


@dataclass(frozen=True)
class JobFilter:
    states: tuple[str, ...] = ()
    project: str | None = None
    organization: str | None = None
    gpu_type: str | None = None
    submitted_by: str | None = None


def listing(
    session: Session, principal: Principal, where: JobFilter, cursor: str | None, limit: int
) -> Page[Job]:
    statement = select(Job)
    statement = visible_only(statement, Job.organization_id, principal)
    if where.states:
        unknown = set(where.states) - {s.value for s in JobState}
        if unknown:
            raise InvalidRequest([f"unknown job state {sorted(unknown)[0]!r}"])
        statement = statement.where(Job.state.in_(where.states))
    if where.project is not None:
        statement = statement.where(
            Job.project_id == project_service.get(session, principal, where.project).id
        )
    if where.organization is not None:
        org = organizations.get(session, principal, where.organization)
        statement = statement.where(Job.organization_id == org.id)
    if where.gpu_type is not None:
        statement = statement.where(Job.gpu_type == where.gpu_type)
    if where.submitted_by is not None:
        statement = statement.where(Job.submitted_by == where.submitted_by)
    return page(session, statement, Job.id, cursor, limit)


def events(session: Session, principal: Principal, job_id: int) -> list[JobEvent]:
    """The job's timeline; the loop's messages (a preemption names the job and project it
    made room for) are redacted as reasons are (J3)."""
    job = get(session, principal, job_id)
    found = list(
        session.scalars(select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id))
    )
    for event in found:
        if JOB_REF.search(event.message) or PROJECT_REF.search(event.message):
            session.expunge(event)  # a copy for the caller; the stored row stays as it is
            names = _project_names(session, principal, set(PROJECT_REF.findall(event.message)))
            owners = _mentioned_jobs(session, event.message)
            reason = _redacted(Reason(ReasonCode.PRIORITY, event.message), principal, owners, names)
            event.message = reason.message
    return found


def cancel(ctx: Context, job_id: int) -> Job:
    job = get(ctx.session, ctx.principal, job_id)
    mine = job.submitted_by == ctx.principal.person_id
    if not (
        mine or ctx.principal.administers(job.organization_id) or ctx.principal.operates_cluster
    ):
        raise Forbidden("only the job's submitter, its organization's admins or an operator")
    if JobState(job.state) in FINAL:
        raise Conflict(f"job {job.id} has already ended ({job.state})")
    before = row_state(job)
    run = ctx.session.scalar(select(Run).where(Run.job_id == job.id, Run.ended_at.is_(None)))
    if run is not None:  # J4: the loop stops it with its checkpoint signal
        if run.stop_kind == "cancelled":
            raise Conflict(f"job {job.id} is already being cancelled")
        run.stop_kind = "cancelled"
        run.stop_signalled_at = None  # a preemption's signal already sent is sent again: harmless
        _event(ctx, job, "cancelling", f"cancel requested by {ctx.principal.email}")
    else:
        job.state, job.ended_at = JobState.CANCELLED.value, ctx.now
        job.reason_code = job.reason_message = None
        job.reason_start = None
        _event(ctx, job, "cancelled", f"cancelled by {ctx.principal.email}")
    audit_log.record(ctx, "job.cancel", job, before=before, object_id=str(job.id))
    return job


def why(session: Session, principal: Principal, job_id: int, now: datetime) -> Reason | None:
    """J3: the job's reason to wait, as the live loop stored it, or from a dry run of the
    scheduling core before the loop saw the job; None when the job is not waiting."""
    job = get(session, principal, job_id)
    if job.state != JobState.PENDING:
        return None
    if job.reason_code is not None:
        stored = Reason(
            ReasonCode(job.reason_code),
            job.reason_message or "",
            None if job.reason_start is None else Instant(job.reason_start.timestamp()),
        )
        pending_ids = _mentioned_jobs(session, stored.message)
        names = _project_names(session, principal, set(PROJECT_REF.findall(stored.message)))
        return _redacted(stored, principal, pending_ids, names)
    pending = list(session.scalars(select(Job).where(Job.state == JobState.PENDING.value)))
    snapshot = Snapshot(
        nodes=node_service.core_nodes(session),
        pending=tuple(_core_job(j, j.project_id, j.id, j.submitted_at) for j in pending),
        projects=_core_projects(session, {j.project_id for j in pending}, now),
    )
    result = run_cycle(snapshot, make_policy(POLICY), Instant(now.timestamp()))
    reason = result.reasons.get(JobId(str(job.id)))
    if reason is None:
        return None
    owners = {str(j.id): j.organization_id for j in pending}
    names = _project_names(session, principal, {j.project_id for j in pending})
    return _redacted(reason, principal, owners, names)


def _mentioned_jobs(session: Session, message: str) -> dict[str, str]:
    """The organizations of the jobs a reason names."""
    ids = {int(m) for m in JOB_REF.findall(message) if len(m) < 10}
    if not ids:
        return {}
    rows = session.execute(select(Job.id, Job.organization_id).where(Job.id.in_(ids)))
    return {str(job): org for job, org in rows}


def _core_projects(
    session: Session, project_ids: set[str], now: datetime
) -> dict[ProjectId, CoreProject]:
    return {
        ProjectId(p): CoreProject(ProjectId(p), quotas=project_service.quotas(session, p, now))
        for p in project_ids
    }


JOB_REF = re.compile(r"\bjob (\d+)\b")
PROJECT_REF = re.compile(r"\bprj_[0-9a-z]{26}\b")


def _redacted(
    reason: Reason, principal: Principal, jobs: dict[str, str], projects: dict[str, str]
) -> Reason:
    """J3: ids the scheduling core wrote in a reason, as words the caller may read: its own
    organizations' jobs by number and projects by `org/name`, others' as "another ..."."""

    def job(match: re.Match[str]) -> str:
        visible = principal.sees(jobs.get(match.group(1)))
        return match.group(0) if visible else "a job of another organization"

    def project(match: re.Match[str]) -> str:
        return projects.get(match.group(0), "another organization's project")

    message = PROJECT_REF.sub(project, JOB_REF.sub(job, reason.message))
    return Reason(reason.code, message, reason.earliest_start)


def _project_names(session: Session, principal: Principal, ids: set[str]) -> dict[str, str]:
    """`org/name` of the projects among `ids` the caller may see."""
    rows = session.execute(
        select(Project.id, Organization.name, Project.name, Project.organization_id)
        .join(Organization, Organization.id == Project.organization_id)
        .where(Project.id.in_(ids))
    )
    return {pid: f"{org}/{name}" for pid, org, name, owner in rows if principal.sees(owner)}


# -- runs (J5) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    """One run segment of a job, with the GPU-milliseconds its usage record charged (None
    while the run is open)."""

    run: Run
    charged_ms: int | None


def runs(session: Session, principal: Principal, job_id: int) -> list[RunRecord]:
    """J5: the job's run segments in order."""
    job = get(session, principal, job_id)
    rows = session.execute(
        select(Run, UsageRecord.gpu_ms)
        .outerjoin(UsageRecord, UsageRecord.run_id == Run.id)
        .where(Run.job_id == job.id)
        .order_by(Run.segment)
    )
    return [RunRecord(run, None if charged is None else int(charged)) for run, charged in rows]


def run(session: Session, principal: Principal, job_id: int, segment: int | None) -> Run | None:
    """J5: the job's run `segment`, or its latest; None when the job has not run yet and no
    segment was named. NotFound for a segment it does not have."""
    job = get(session, principal, job_id)
    if segment is None:
        if job.segments == 0:
            return None
        segment = job.segments
    found = session.scalar(select(Run).where(Run.job_id == job.id, Run.segment == segment))
    if found is None:
        raise NotFound("run", f"{segment} of job {job.id}")
    return found


def rank_count(run: Run) -> int:
    """The ranks of a run: one per GPU of its allocation (as the live loop launches them)."""
    parts = run.allocation.get("parts", [])
    return sum(len(indices) for _, indices in parts)
