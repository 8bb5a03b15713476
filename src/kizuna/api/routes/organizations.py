"""Organizations and their members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response

from kizuna.api.deps import Read, Write
from kizuna.api.routes.common import DEFAULT_LIMIT, Cursor, Limit, ref
from kizuna.api.schemas import (
    ListOf,
    MemberCreate,
    MemberPublic,
    MemberUpdate,
    OrganizationCreate,
    OrganizationPublic,
    OrganizationUpdate,
)
from kizuna.services import organizations
from kizuna.services.context import Context
from kizuna.services.kinds import OrganizationKind
from kizuna.services.principal import Role
from kizuna.store.tables import Membership, Person

router = APIRouter(prefix="/organizations", tags=["organizations"])
Ref = Annotated[str, ref(63, "Organization id or name")]


@router.post("", status_code=201, response_model=OrganizationPublic)
def create(body: OrganizationCreate, unit: Write) -> Response:
    def effect(ctx: Context) -> OrganizationPublic:
        org = organizations.create(ctx, body.name, body.display_name, body.kind)
        return OrganizationPublic.model_validate(org)

    return unit.write(effect, 201)


@router.get("", response_model=ListOf[OrganizationPublic])
def listing(
    unit: Read,
    kind: OrganizationKind | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> ListOf[OrganizationPublic]:
    with unit.session() as session:
        found = organizations.listing(session, unit.principal, kind, cursor, limit)
        items = [OrganizationPublic.model_validate(o) for o in found.items]
    return ListOf[OrganizationPublic](items=items, next_cursor=found.next_cursor)


@router.get("/{org}", response_model=OrganizationPublic)
def show(org: Ref, unit: Read) -> OrganizationPublic:
    with unit.session() as session:
        return OrganizationPublic.model_validate(organizations.get(session, unit.principal, org))


@router.patch("/{org}", response_model=OrganizationPublic)
def update(org: Ref, body: OrganizationUpdate, unit: Write) -> Response:
    return unit.write(
        lambda ctx: OrganizationPublic.model_validate(
            organizations.update(ctx, org, body.display_name)
        )
    )


def member(membership: Membership, person: Person) -> MemberPublic:
    return MemberPublic(
        person_id=person.id,
        email=person.email,
        name=person.name,
        organization_id=membership.organization_id,
        role=membership.role,
        since=membership.created_at,
    )


@router.get("/{org}/members", response_model=ListOf[MemberPublic])
def members(
    org: Ref,
    unit: Read,
    role: Role | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> ListOf[MemberPublic]:
    with unit.session() as session:
        found = organizations.members(session, unit.principal, org, role, cursor, limit)
        items = [member(m, p) for m, p in found.items]
    return ListOf[MemberPublic](items=items, next_cursor=found.next_cursor)


@router.post("/{org}/members", status_code=201, response_model=MemberPublic)
def add_member(org: Ref, body: MemberCreate, unit: Write) -> Response:
    def effect(ctx: Context) -> MemberPublic:
        membership = organizations.add_member(ctx, org, body.email, body.name, body.role)
        person = ctx.session.get(Person, membership.person_id)
        assert person is not None
        return member(membership, person)

    return unit.write(effect, 201)


PersonRef = Annotated[str, ref(40, "Id")]


@router.patch("/{org}/members/{person_id}", response_model=MemberPublic)
def change_role(org: Ref, person_id: PersonRef, body: MemberUpdate, unit: Write) -> Response:
    def effect(ctx: Context) -> MemberPublic:
        membership = organizations.change_role(ctx, org, person_id, body.role)
        person = ctx.session.get(Person, membership.person_id)
        assert person is not None
        return member(membership, person)

    return unit.write(effect)


@router.delete("/{org}/members/{person_id}", status_code=204)
def remove_member(org: Ref, person_id: PersonRef, unit: Write) -> Response:
    return unit.write(lambda ctx: organizations.remove_member(ctx, org, person_id))
