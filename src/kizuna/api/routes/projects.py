"""Projects and awards."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response

from kizuna.api.deps import Read, Write
from kizuna.api.routes.common import DEFAULT_LIMIT, At, Cursor, Filter, Limit, ref
from kizuna.api.schemas import (
    AwardCreate,
    AwardPublic,
    AwardUpdate,
    ListOf,
    ProjectCreate,
    ProjectPublic,
    ProjectUpdate,
)
from kizuna.kernel.units import HOUR
from kizuna.services import projects
from kizuna.services.context import Context
from kizuna.store.tables import Award

router = APIRouter(tags=["projects"])
Ref = Annotated[str, ref(130, "Project id, `org/name` or name")]
AwardRef = Annotated[str, ref(40, "Id")]
SECONDS_PER_HOUR = int(HOUR)


@router.post("/projects", status_code=201, response_model=ProjectPublic)
def create(body: ProjectCreate, unit: Write) -> Response:
    return unit.write(
        lambda ctx: ProjectPublic.model_validate(
            projects.create(ctx, body.organization, body.name, body.description)
        ),
        201,
    )


@router.get("/projects", response_model=ListOf[ProjectPublic])
def listing(
    unit: Read, organization: Filter = None, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> ListOf[ProjectPublic]:
    with unit.session() as session:
        found = projects.listing(session, unit.principal, organization, cursor, limit)
        items = [ProjectPublic.model_validate(p) for p in found.items]
    return ListOf[ProjectPublic](items=items, next_cursor=found.next_cursor)


@router.get("/projects/{project:path}", response_model=ProjectPublic)
def show(project: Ref, unit: Read) -> ProjectPublic:
    with unit.session() as session:
        return ProjectPublic.model_validate(projects.get(session, unit.principal, project))


@router.patch("/projects/{project:path}", response_model=ProjectPublic)
def update(project: Ref, body: ProjectUpdate, unit: Write) -> Response:
    return unit.write(
        lambda ctx: ProjectPublic.model_validate(projects.update(ctx, project, body.description))
    )


def award_public(award: Award) -> AwardPublic:
    return AwardPublic(
        id=award.id,
        project_id=award.project_id,
        organization_id=award.organization_id,
        gpu_type=award.gpu_type,
        gpu_hours=award.gpu_seconds / SECONDS_PER_HOUR,
        nominal_gpus=award.nominal_gpus,
        borrowing_limit=award.borrowing_limit,
        starts_at=award.starts_at,
        ends_at=award.ends_at,
        created_at=award.created_at,
    )


@router.post("/awards", status_code=201, response_model=AwardPublic, tags=["awards"])
def grant(body: AwardCreate, unit: Write) -> Response:
    def effect(ctx: Context) -> AwardPublic:
        return award_public(
            projects.create_award(
                ctx,
                body.project,
                body.gpu_type,
                body.gpu_hours * SECONDS_PER_HOUR,
                body.nominal_gpus,
                body.borrowing_limit,
                body.starts_at,
                body.ends_at,
            )
        )

    return unit.write(effect, 201)


@router.get("/awards", response_model=ListOf[AwardPublic], tags=["awards"])
def awards(
    unit: Read,
    project: Filter = None,
    organization: Filter = None,
    gpu_type: Filter = None,
    active_at: At = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> ListOf[AwardPublic]:
    with unit.session() as session:
        found = projects.awards(
            session, unit.principal, project, organization, gpu_type, active_at, cursor, limit
        )
    return ListOf[AwardPublic](
        items=[award_public(a) for a in found.items], next_cursor=found.next_cursor
    )


@router.get("/awards/{award}", response_model=AwardPublic, tags=["awards"])
def award(award: AwardRef, unit: Read) -> AwardPublic:
    with unit.session() as session:
        return award_public(projects.get_award(session, unit.principal, award))


@router.patch("/awards/{award}", response_model=AwardPublic, tags=["awards"])
def update_award(award: AwardRef, body: AwardUpdate, unit: Write) -> Response:
    """Fields left out keep their values; `"borrowing_limit": null` lifts the limit."""
    change = projects.AwardChange(
        ends_at=body.ends_at,
        nominal_gpus=body.nominal_gpus,
        gpu_seconds=None if body.gpu_hours is None else body.gpu_hours * SECONDS_PER_HOUR,
        borrowing_limit=body.borrowing_limit,
        sets_borrowing_limit="borrowing_limit" in body.model_fields_set,
    )
    return unit.write(lambda ctx: award_public(projects.update_award(ctx, award, change)))
