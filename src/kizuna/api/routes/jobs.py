"""Jobs: submit, list, show with timeline and reason, why, cancel; runs and logs.

Logs (`GET /jobs/{job}/logs`, G1-G2 of `kizuna.api.logs`) answer a rank's bytes from an
offset with `X-Log-Offset` (where to ask next), `X-Run-Segment` (the run read) and
`X-Run-State`: pending (no run yet), running or ended. The state is read before the file, so
a piece read in state `ended` holds everything the run wrote up to its offset: a client
follows until such a piece is empty.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from kizuna.api.deps import Read, Write
from kizuna.api.logs import MAX_PIECE, log_path, read_piece
from kizuna.api.routes.common import DEFAULT_LIMIT, Cursor, Filter, Limit
from kizuna.api.schemas import (
    Items,
    JobCreate,
    JobDetail,
    JobEventPublic,
    JobPublic,
    ListOf,
    ReasonPublic,
    RunPublic,
)
from kizuna.live.loop import run_key
from kizuna.scheduling.decisions import Reason
from kizuna.services import jobs
from kizuna.services.errors import NotFound
from kizuna.services.jobs import JobFilter, RunRecord, Submission
from kizuna.services.kinds import FINAL, JobState

router = APIRouter(prefix="/jobs", tags=["jobs"])
JobRef = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("", status_code=201, response_model=JobPublic)
def submit(body: JobCreate, unit: Write) -> Response:
    request = Submission(**body.model_dump())
    return unit.write(lambda ctx: JobPublic.model_validate(jobs.submit(ctx, request)), 201)


@router.get("", response_model=ListOf[JobPublic])
def listing(
    unit: Read,
    state: Annotated[list[JobState] | None, Query(max_length=10)] = None,
    project: Filter = None,
    organization: Filter = None,
    gpu_type: Filter = None,
    submitted_by: Filter = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> ListOf[JobPublic]:
    where = JobFilter(
        tuple(s.value for s in state or ()), project, organization, gpu_type, submitted_by
    )
    with unit.session() as session:
        found = jobs.listing(session, unit.principal, where, cursor, limit)
        items = [JobPublic.model_validate(j) for j in found.items]
    return ListOf[JobPublic](items=items, next_cursor=found.next_cursor)


def reason_public(reason: Reason | None) -> ReasonPublic | None:
    if reason is None:
        return None
    start = reason.earliest_start
    return ReasonPublic(
        code=str(reason.code),
        message=reason.message,
        earliest_start=None if start is None else datetime.fromtimestamp(start, UTC),
    )


@router.get("/{job}", response_model=JobDetail)
def show(job: JobRef, unit: Read) -> JobDetail:
    with unit.session() as session:
        found = jobs.get(session, unit.principal, job)
        events = [
            JobEventPublic.model_validate(e) for e in jobs.events(session, unit.principal, job)
        ]
        reason = jobs.why(session, unit.principal, job, unit.now())
        return JobDetail(
            **JobPublic.model_validate(found).model_dump(),
            reason=reason_public(reason),
            events=events,
        )


@router.get("/{job}/reason", response_model=ReasonPublic | None)
def why(job: JobRef, unit: Read) -> ReasonPublic | None:
    """Why the job waits (a dry run of the scheduling core); null if it is not waiting."""
    with unit.session() as session:
        return reason_public(jobs.why(session, unit.principal, job, unit.now()))


@router.post("/{job}/cancel", response_model=JobPublic)
def cancel(job: JobRef, unit: Write) -> Response:
    return unit.write(lambda ctx: JobPublic.model_validate(jobs.cancel(ctx, job)))


def run_public(record: RunRecord) -> RunPublic:
    run = record.run
    return RunPublic(
        segment=run.segment,
        state=run.state,
        award_id=run.award_id,
        gpus=run.gpus,
        allocation=run.allocation,
        admitted_at=run.admitted_at,
        started_at=run.started_at,
        ended_at=run.ended_at,
        stop_kind=run.stop_kind,
        outcome=run.outcome,
        exit_codes=run.exit_codes,
        charged_gpu_ms=record.charged_ms,
    )


@router.get("/{job}/runs", response_model=Items[RunPublic])
def runs(job: JobRef, unit: Read) -> Items[RunPublic]:
    """The job's run segments (a preempted job runs again), with what each was charged."""
    with unit.session() as session:
        return Items[RunPublic](
            items=[run_public(r) for r in jobs.runs(session, unit.principal, job)]
        )


LOG_HEADERS = {
    "X-Log-Offset": {"description": "The offset to ask for next", "schema": {"type": "integer"}},
    "X-Run-State": {
        "description": "pending (no run yet), running or ended",
        "schema": {"type": "string"},
    },
    "X-Run-Segment": {
        "description": "The run read (absent while the job has none): pass it as `run` when"
        " following, so offsets stay those of one run's file",
        "schema": {"type": "integer"},
    },
}


@router.get(
    "/{job}/logs",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "headers": LOG_HEADERS}
    },
)
def logs(
    job: JobRef,
    unit: Read,
    rank: Annotated[int, Query(ge=0, le=2**31 - 1, description="The rank (0: the first)")] = 0,
    run: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="The run segment (default: latest)")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=2**62, description="From `X-Log-Offset`")] = 0,
) -> Response:
    """A rank's log from `offset`, at most 1 MiB per answer (see the module's docstring)."""
    with unit.session() as session:
        found = jobs.get(session, unit.principal, job)
        segment = jobs.run(session, unit.principal, job, run)
        if segment is None:
            state = "ended" if JobState(found.state) in FINAL else "pending"
            return _log_answer(b"", offset, state)
        if rank >= jobs.rank_count(segment):
            raise NotFound("rank", f"{rank} of run {segment.segment} of job {job}")
        state = "ended" if segment.state == "ended" else "running"
        number = segment.segment
    piece = read_piece(log_path(unit.wired, run_key(job, number), rank), offset, MAX_PIECE)
    return _log_answer(piece.data, piece.next_offset, state, number)


def _log_answer(data: bytes, next_offset: int, state: str, segment: int | None = None) -> Response:
    headers = {"X-Log-Offset": str(next_offset), "X-Run-State": state}
    if segment is not None:
        headers["X-Run-Segment"] = str(segment)
    return Response(data, 200, headers, media_type="text/plain; charset=utf-8")
