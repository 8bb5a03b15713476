"""Jobs: submit, list, show with timeline and reason, why, cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from kizuna.api.deps import Read, Write
from kizuna.api.routes.common import DEFAULT_LIMIT, Cursor, Filter, Limit
from kizuna.api.schemas import (
    JobCreate,
    JobDetail,
    JobEventPublic,
    JobPublic,
    ListOf,
    ReasonPublic,
)
from kizuna.scheduling.decisions import Reason
from kizuna.services import jobs
from kizuna.services.jobs import JobFilter, Submission
from kizuna.services.kinds import JobState

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
