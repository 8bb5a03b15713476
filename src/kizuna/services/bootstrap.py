"""The first program admin, from the server's own machine (`kizuna admin bootstrap`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kizuna.services import audit_log, tokens
from kizuna.services.context import Context
from kizuna.services.errors import Conflict
from kizuna.services.ids import new_id
from kizuna.services.kinds import OrganizationKind
from kizuna.services.organizations import check_name
from kizuna.services.principal import Principal, Role
from kizuna.store.tables import Membership, Organization, Person


def bootstrap(
    session: Session,
    email: str,
    name: str,
    organization: str,
    now: datetime,
    lifetime: timedelta = timedelta(days=90),
) -> tuple[Person, str]:
    """Creates the program office, its first program admin and a token; refuses once anyone
    exists (later admins are added through the API)."""
    if session.scalar(select(func.count()).select_from(Person)):
        raise Conflict("this service already has people; bootstrap runs only once")
    check_name(organization, "organization")
    person = Person(
        id=new_id("person", now),
        email=email.lower(),
        name=name or email,
        password_hash=None,
        created_at=now,
    )
    office = Organization(
        id=new_id("organization", now),
        name=organization,
        display_name="Program office",
        kind=OrganizationKind.PROGRAM_OFFICE,
        created_at=now,
    )
    membership = Membership(
        id=new_id("membership", now),
        person_id=person.id,
        organization_id=office.id,
        role=Role.PROGRAM_ADMIN.value,
        created_at=now,
    )
    session.add_all([person, office])
    session.flush()
    session.add(membership)
    ctx = Context(session, Principal(person.id, person.email, {office.id: Role.PROGRAM_ADMIN}), now)
    for action, row in (
        ("person.create", person),
        ("organization.create", office),
        ("membership.create", membership),
    ):
        audit_log.record(ctx, action, row, organization_id=office.id)
    _, secret = tokens.issue(ctx, "bootstrap", lifetime)
    return person, secret
