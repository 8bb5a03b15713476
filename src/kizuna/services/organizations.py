"""Organizations and their members (ADR 0019)."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from kizuna.services import audit_log
from kizuna.services.context import Context, row_state
from kizuna.services.errors import Conflict, Forbidden, InvalidRequest, NotFound
from kizuna.services.ids import new_id
from kizuna.services.kinds import OrganizationKind
from kizuna.services.pages import Page, page, visible_only
from kizuna.services.principal import ORGANIZATION_ROLES, PLATFORM_ROLES, Principal, Role
from kizuna.store.tables import Membership, Organization, Person

NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def check_name(name: str, what: str) -> None:
    if not NAME.match(name):
        raise InvalidRequest(
            [
                f"{what} name {name!r} must be 1-63 lower-case letters, digits or '-',"
                " starting and ending with a letter or digit"
            ]
        )


def create(ctx: Context, name: str, display_name: str, kind: OrganizationKind) -> Organization:
    if not ctx.principal.is_program_admin:
        raise Forbidden("only a program admin creates organizations")
    check_name(name, "organization")
    if ctx.session.scalar(select(Organization.id).where(Organization.name == name)):
        raise Conflict(f"organization name {name!r} is taken")
    org = Organization(
        id=new_id("organization", ctx.now),
        name=name,
        display_name=display_name or name,
        kind=kind.value,
        created_at=ctx.now,
    )
    ctx.session.add(org)
    audit_log.record(ctx, "organization.create", org, organization_id=org.id)
    return org


def get(session: Session, principal: Principal, ref: str) -> Organization:
    """The organization with id or name `ref`, if the caller may know of it (R1)."""
    column = Organization.id if ref.startswith("org_") else Organization.name
    org = session.scalar(select(Organization).where(column == ref))
    if org is None or not principal.sees(org.id):
        raise NotFound("organization", ref)
    return org


def listing(
    session: Session, principal: Principal, kind: str | None, cursor: str | None, limit: int
) -> Page[Organization]:
    statement = select(Organization)
    statement = visible_only(statement, Organization.id, principal)
    if kind is not None:
        statement = statement.where(Organization.kind == kind)
    return page(session, statement, Organization.id, cursor, limit)


def update(ctx: Context, ref: str, display_name: str | None) -> Organization:
    org = get(ctx.session, ctx.principal, ref)
    if not ctx.principal.administers(org.id):
        raise Forbidden("only the organization's admins or a program admin change it")
    before = row_state(org)
    if display_name is not None:
        org.display_name = display_name
    audit_log.record(ctx, "organization.update", org, before=before)
    return org


def person_by_email(session: Session, email: str) -> Person | None:
    return session.scalar(select(Person).where(Person.email == email.lower()))


def add_member(ctx: Context, ref: str, email: str, name: str, role: Role) -> Membership:
    org = get(ctx.session, ctx.principal, ref)
    _check_can_manage(ctx.principal, org, role)
    person = person_by_email(ctx.session, email)
    if person is None:
        person = Person(
            id=new_id("person", ctx.now),
            email=email.lower(),
            name=name or email,
            password_hash=None,
            created_at=ctx.now,
        )
        ctx.session.add(person)
        ctx.session.flush()  # the membership's foreign key needs the row
        audit_log.record(ctx, "person.create", person, organization_id=org.id)
    else:
        _check_can_add(ctx, person, org)
    membership = Membership(
        id=new_id("membership", ctx.now),
        person_id=person.id,
        organization_id=org.id,
        role=role.value,
        created_at=ctx.now,
    )
    ctx.session.add(membership)
    audit_log.record(ctx, "membership.create", membership)
    return membership


def _check_can_add(ctx: Context, person: Person, org: Organization) -> None:
    """R3: an org admin adds people who have no organization yet (or only its own); a person
    of other organizations is added by a program admin, so no admin reaches, through a shared
    member, what another organization owns."""
    orgs = set(
        ctx.session.scalars(
            select(Membership.organization_id).where(Membership.person_id == person.id)
        )
    )
    if org.id in orgs:
        raise Conflict(f"{person.email} is already a member of {org.name}")
    if orgs and not ctx.principal.is_program_admin:
        raise Forbidden(
            f"{person.email} already belongs to another organization; a program admin adds them"
        )


def _check_can_manage(principal: Principal, org: Organization, role: Role) -> None:
    if not principal.administers(org.id):
        raise Forbidden("only the organization's admins or a program admin manage its members")
    if role in PLATFORM_ROLES:
        if org.kind != OrganizationKind.PROGRAM_OFFICE:
            raise InvalidRequest([f"role {role} exists only in a program-office organization"])
        if not principal.is_program_admin:
            raise Forbidden("only a program admin gives platform roles")
    elif role not in ORGANIZATION_ROLES:
        raise InvalidRequest([f"unknown role {role}"])


def members(
    session: Session,
    principal: Principal,
    ref: str,
    role: Role | None,
    cursor: str | None,
    limit: int,
) -> Page[tuple[Membership, Person]]:
    org = get(session, principal, ref)
    statement = select(Membership).where(Membership.organization_id == org.id)
    if role is not None:
        statement = statement.where(Membership.role == role.value)
    found = page(session, statement, Membership.id, cursor, limit)
    ids = [m.person_id for m in found.items]
    people = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_(ids)))}
    return Page([(m, people[m.person_id]) for m in found.items], found.next_cursor)


def membership(session: Session, principal: Principal, ref: str, person_id: str) -> Membership:
    org = get(session, principal, ref)
    found = session.scalar(
        select(Membership).where(
            Membership.organization_id == org.id, Membership.person_id == person_id
        )
    )
    if found is None:
        raise NotFound("member", person_id)
    return found


def change_role(ctx: Context, ref: str, person_id: str, role: Role) -> Membership:
    found = membership(ctx.session, ctx.principal, ref, person_id)
    org = get(ctx.session, ctx.principal, ref)
    _check_can_manage(ctx.principal, org, role)
    before = row_state(found)
    found.role = role.value
    audit_log.record(ctx, "membership.update", found, before=before)
    return found


def remove_member(ctx: Context, ref: str, person_id: str) -> None:
    found = membership(ctx.session, ctx.principal, ref, person_id)
    org = get(ctx.session, ctx.principal, ref)
    _check_can_manage(ctx.principal, org, Role(found.role))
    before = row_state(found)
    ctx.session.delete(found)
    audit_log.record(ctx, "membership.delete", before=before, object_type="membership")
