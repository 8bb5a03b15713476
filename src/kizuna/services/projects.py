"""Projects and their awards (ADR 0019, 0020).

An award grants one project GPU-seconds of one GPU type over [starts_at, ends_at), with a
nominal number of GPUs and a borrowing limit: what becomes the scheduler's quota (`quotas`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from kizuna.kernel.ids import GpuType
from kizuna.scheduling.model import Quota
from kizuna.services import audit_log
from kizuna.services import organizations as orgs
from kizuna.services.context import Context, row_state
from kizuna.services.errors import Conflict, Forbidden, InvalidRequest, NotFound
from kizuna.services.ids import new_id
from kizuna.services.pages import Page, page, visible_only
from kizuna.services.principal import Principal
from kizuna.store.tables import Award, Organization, Project

T = TypeVar("T")

MAX_GPU_SECONDS = 10**15


def create(ctx: Context, organization: str, name: str, description: str) -> Project:
    org = orgs.get(ctx.session, ctx.principal, organization)
    if not ctx.principal.administers(org.id):
        raise Forbidden("only the organization's admins or a program admin create projects")
    orgs.check_name(name, "project")
    if ctx.session.scalar(
        select(Project.id).where(Project.organization_id == org.id, Project.name == name)
    ):
        raise Conflict(f"{org.name} already has a project named {name!r}")
    project = Project(
        id=new_id("project", ctx.now),
        organization_id=org.id,
        name=name,
        description=description,
        created_at=ctx.now,
    )
    ctx.session.add(project)
    audit_log.record(ctx, "project.create", project)
    return project


def get(session: Session, principal: Principal, ref: str) -> Project:
    """By id (`prj_...`), `organization/name`, or a name unique among the visible projects."""
    statement = select(Project)
    if ref.startswith("prj_"):
        statement = statement.where(Project.id == ref)
    elif "/" in ref:
        org_ref, name = ref.split("/", 1)
        try:
            org = orgs.get(session, principal, org_ref)
        except NotFound:
            raise NotFound("project", ref) from None
        statement = statement.where(Project.organization_id == org.id, Project.name == name)
    else:
        statement = statement.where(Project.name == ref)
    found = [p for p in session.scalars(statement) if principal.sees(p.organization_id)]
    if not found:
        raise NotFound("project", ref)
    if len(found) > 1:
        names = ", ".join(sorted(f"{p.organization_id}/{p.name}" for p in found))
        raise InvalidRequest([f"project name {ref!r} is ambiguous ({names}); use org/name"])
    return found[0]


def listing(
    session: Session,
    principal: Principal,
    organization: str | None,
    cursor: str | None,
    limit: int,
) -> Page[Project]:
    statement = select(Project)
    statement = visible_only(statement, Project.organization_id, principal)
    if organization is not None:
        org = orgs.get(session, principal, organization)
        statement = statement.where(Project.organization_id == org.id)
    return page(session, statement, Project.id, cursor, limit)


def update(ctx: Context, ref: str, description: str | None) -> Project:
    project = get(ctx.session, ctx.principal, ref)
    if not ctx.principal.administers(project.organization_id):
        raise Forbidden("only the organization's admins or a program admin change its projects")
    before = row_state(project)
    if description is not None:
        project.description = description
    audit_log.record(ctx, "project.update", project, before=before)
    return project


def create_award(
    ctx: Context,
    project_ref: str,
    gpu_type: str,
    gpu_seconds: int,
    nominal_gpus: int,
    borrowing_limit: int | None,
    starts_at: datetime,
    ends_at: datetime,
) -> Award:
    project = get(ctx.session, ctx.principal, project_ref)
    if not ctx.principal.is_program_admin:
        raise Forbidden("only a program admin grants awards")
    _check_award(gpu_seconds, nominal_gpus, borrowing_limit, starts_at, ends_at)
    award = Award(
        id=new_id("award", ctx.now),
        project_id=project.id,
        organization_id=project.organization_id,
        gpu_type=gpu_type,
        gpu_seconds=gpu_seconds,
        nominal_gpus=nominal_gpus,
        borrowing_limit=borrowing_limit,
        starts_at=starts_at,
        ends_at=ends_at,
        created_at=ctx.now,
    )
    ctx.session.add(award)
    audit_log.record(ctx, "award.create", award)
    return award


def _check_award(
    gpu_seconds: int, nominal: int, borrowing: int | None, starts: datetime, ends: datetime
) -> None:
    problems = []
    if not 0 < gpu_seconds <= MAX_GPU_SECONDS:
        problems.append(f"GPU-seconds must be positive and at most {MAX_GPU_SECONDS:,}")
    if nominal < 0:
        problems.append(f"nominal GPUs cannot be negative (got {nominal})")
    if borrowing is not None and borrowing < 0:
        problems.append(f"the borrowing limit cannot be negative (got {borrowing})")
    if ends <= starts:
        problems.append(
            f"the award ends ({ends:%Y-%m-%d %H:%M}) before it starts ({starts:%Y-%m-%d %H:%M})"
        )
    if problems:
        raise InvalidRequest(problems)


def get_award(session: Session, principal: Principal, award_id: str) -> Award:
    award = session.get(Award, award_id)
    if award is None or not principal.sees(award.organization_id):
        raise NotFound("award", award_id)
    return award


def awards(
    session: Session,
    principal: Principal,
    project: str | None,
    organization: str | None,
    gpu_type: str | None,
    active_at: datetime | None,
    cursor: str | None,
    limit: int,
) -> Page[Award]:
    statement = select(Award)
    statement = visible_only(statement, Award.organization_id, principal)
    if project is not None:
        statement = statement.where(Award.project_id == get(session, principal, project).id)
    if organization is not None:
        org = orgs.get(session, principal, organization)
        statement = statement.where(Award.organization_id == org.id)
    if gpu_type is not None:
        statement = statement.where(Award.gpu_type == gpu_type)
    if active_at is not None:
        statement = statement.where(Award.starts_at <= active_at, Award.ends_at > active_at)
    return page(session, statement, Award.id, cursor, limit)


@dataclass(frozen=True)
class AwardChange:
    """What a PATCH of an award changes; a field left out keeps its value. `borrowing_limit`
    is changed only when `sets_borrowing_limit` (so that null can mean "no limit")."""

    ends_at: datetime | None = None
    nominal_gpus: int | None = None
    gpu_seconds: int | None = None
    borrowing_limit: int | None = None
    sets_borrowing_limit: bool = False


def update_award(ctx: Context, award_id: str, change: AwardChange) -> Award:
    award = get_award(ctx.session, ctx.principal, award_id)
    if not ctx.principal.is_program_admin:
        raise Forbidden("only a program admin changes awards")
    before = row_state(award)
    award.ends_at = change.ends_at or award.ends_at
    if change.nominal_gpus is not None:
        award.nominal_gpus = change.nominal_gpus
    if change.gpu_seconds is not None:
        award.gpu_seconds = change.gpu_seconds
    if change.sets_borrowing_limit:
        award.borrowing_limit = change.borrowing_limit
    _check_award(
        award.gpu_seconds, award.nominal_gpus, award.borrowing_limit, award.starts_at, award.ends_at
    )
    audit_log.record(ctx, "award.update", award, before=before)
    return award


def quotas(session: Session, project_id: str, at: datetime) -> dict[GpuType, Quota]:
    """The scheduler's quotas of a project at `at`: its awards active then, summed per type.
    A borrowing limit is the sum of the awards' limits, unlimited if any award has none."""
    nominal: dict[str, int] = defaultdict(int)
    borrowing: dict[str, int | None] = {}
    for award in session.scalars(
        select(Award).where(
            Award.project_id == project_id, Award.starts_at <= at, Award.ends_at > at
        )
    ):
        nominal[award.gpu_type] += award.nominal_gpus
        previous = borrowing.get(award.gpu_type, 0)
        limit = award.borrowing_limit
        borrowing[award.gpu_type] = None if previous is None or limit is None else previous + limit
    return {GpuType(t): Quota(n, borrowing[t]) for t, n in nominal.items()}


def narrowed(
    session: Session,
    principal: Principal,
    statement: Select[T],
    columns: tuple[InstrumentedAttribute[str], InstrumentedAttribute[str]],
    project: str | None,
    organization: str | None,
) -> Select[T]:
    """`statement` kept to one project and/or one organization the caller sees (R1: a
    project or organization it does not see is not found). `columns`: the statement's
    project id and organization id columns."""
    project_column, organization_column = columns
    if project is not None:
        statement = statement.where(project_column == get(session, principal, project).id)
    if organization is not None:
        org = orgs.get(session, principal, organization)
        statement = statement.where(organization_column == org.id)
    return statement


def names(session: Session, ids: set[str]) -> dict[str, str]:
    """`org/name` of each project among `ids` (no visibility check: for rows already
    filtered to what the caller sees)."""
    rows = session.execute(
        select(Project.id, Organization.name, Project.name)
        .join(Organization, Organization.id == Project.organization_id)
        .where(Project.id.in_(ids))
    )
    return {pid: f"{org}/{name}" for pid, org, name in rows}


def covers(session: Session, project_id: str, gpu_type: str, at: datetime) -> bool:
    """Has the project an award of `gpu_type` active at `at` or later?"""
    return (
        session.scalar(
            select(Award.id)
            .where(Award.project_id == project_id, Award.gpu_type == gpu_type, Award.ends_at > at)
            .limit(1)
        )
        is not None
    )
