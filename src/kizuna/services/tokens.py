"""API tokens and passwords (ADR 0019).

T1. A token is 32 random bytes shown once as `kz_<base64url>`; the store keeps only its
    SHA-256 (a random secret needs no slow hash), with an expiry and a revocation time.
T2. Passwords are hashed with Argon2id (argon2-cffi's defaults: memory-hard).
T3. A person manages their own tokens; an org admin also those of its members; a program admin
    anyone's. A token acts with all of its person's roles.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from kizuna.services import audit_log
from kizuna.services.context import Context, row_state
from kizuna.services.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated
from kizuna.services.ids import new_id
from kizuna.services.pages import Page, page
from kizuna.services.principal import PLATFORM_ROLES, Principal, Role
from kizuna.store.tables import ApiToken, Membership, Person

PREFIX = "kz_"
MAX_LIFETIME = timedelta(days=366)
MIN_PASSWORD = 12


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def principal_of(session: Session, person: Person, token_id: str | None = None) -> Principal:
    roles = session.execute(
        select(Membership.organization_id, Membership.role).where(Membership.person_id == person.id)
    ).all()
    return Principal(person.id, person.email, {org: Role(role) for org, role in roles}, token_id)


def authenticate(session: Session, secret: str, now: datetime) -> Principal:
    """The person a bearer token stands for; Unauthenticated if it is unknown, expired or
    revoked (one message for all three, so a caller learns nothing from it)."""
    found = session.execute(
        select(ApiToken, Person)
        .join(Person, Person.id == ApiToken.person_id)
        .where(ApiToken.secret_hash == secret_hash(secret))
    ).first()
    if found is None:
        raise Unauthenticated("the token is unknown, expired or revoked")
    token, person = found
    if token.revoked_at is not None or token.expires_at <= now:
        raise Unauthenticated("the token is unknown, expired or revoked")
    return principal_of(session, person, token.id)


def issue(
    ctx: Context, name: str, lifetime: timedelta, person_id: str | None = None
) -> tuple[ApiToken, str]:
    """A new token for `person_id` (default: the caller) and its secret, shown only now."""
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        raise InvalidRequest([f"a token lives between 1 second and {MAX_LIFETIME.days} days"])
    person = _managed(ctx.session, ctx.principal, person_id or ctx.principal.person_id)
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        id=new_id("token", ctx.now),
        person_id=person.id,
        name=name,
        secret_hash=secret_hash(secret),
        created_at=ctx.now,
        expires_at=ctx.now + lifetime,
        revoked_at=None,
    )
    ctx.session.add(token)
    audit_log.record(ctx, "token.create", token, organization_id=None)
    return token, secret


def _person(
    session: Session, principal: Principal, person_id: str
) -> tuple[Person, dict[str, Role]]:
    """The person and their roles, if the caller may know of them (self, a fellow member of an
    organization the caller sees, anyone for a platform role); else NotFound (R1)."""
    person = session.get(Person, person_id)
    roles = _roles_of(session, person_id)
    if person is None or not (
        person.id == principal.person_id
        or principal.sees_everything
        or any(principal.sees(org) for org in roles)
    ):
        raise NotFound("person", person_id)
    return person, roles


def _may_read(principal: Principal, person: Person, roles: dict[str, Role]) -> bool:
    """T3: one's own tokens, one's members' (org admin), everyone's (platform roles)."""
    return (
        person.id == principal.person_id
        or principal.sees_everything
        or any(principal.administers(org) for org in roles)
    )


def _may_manage(principal: Principal, person: Person, roles: dict[str, Role]) -> bool:
    """T3: a token acts with all of its person's roles, so an org admin manages only people
    who belong to no organization but ones it administers and hold no platform role."""
    if person.id == principal.person_id or principal.is_program_admin:
        return True
    return bool(roles) and all(
        principal.administers(org) and role not in PLATFORM_ROLES for org, role in roles.items()
    )


def _readable(session: Session, principal: Principal, person_id: str) -> Person:
    person, roles = _person(session, principal, person_id)
    if not _may_read(principal, person, roles):
        raise Forbidden("only the person, their organization's admins or a platform role")
    return person


def _managed(session: Session, principal: Principal, person_id: str) -> Person:
    person, roles = _person(session, principal, person_id)
    if not _may_manage(principal, person, roles):
        raise Forbidden(
            "only the person or a program admin manages the tokens of someone with roles beyond"
            " the organizations you administer"
        )
    return person


def _roles_of(session: Session, person_id: str) -> dict[str, Role]:
    rows = session.execute(
        select(Membership.organization_id, Membership.role).where(Membership.person_id == person_id)
    )
    return {org: Role(role) for org, role in rows}


def listing(
    session: Session, principal: Principal, person_id: str | None, cursor: str | None, limit: int
) -> Page[ApiToken]:
    person = _readable(session, principal, person_id or principal.person_id)
    statement = select(ApiToken).where(ApiToken.person_id == person.id)
    return page(session, statement, ApiToken.id, cursor, limit)


def get(session: Session, principal: Principal, token_id: str) -> ApiToken:
    token = session.get(ApiToken, token_id)
    try:
        if token is None:
            raise NotFound("token", token_id)
        _readable(session, principal, token.person_id)
    except (NotFound, Forbidden):
        raise NotFound("token", token_id) from None
    return token


def revoke(ctx: Context, token_id: str) -> ApiToken:
    token = get(ctx.session, ctx.principal, token_id)
    _managed(ctx.session, ctx.principal, token.person_id)
    if token.revoked_at is None:
        before = row_state(token)
        token.revoked_at = ctx.now
        audit_log.record(ctx, "token.revoke", token, before=before)
    return token


HASHER = PasswordHasher()


def set_password(ctx: Context, password: str) -> None:
    """T2: the caller's own password, for the web portal and `token login`."""
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest([f"a password has at least {MIN_PASSWORD} characters"])
    person = ctx.session.get(Person, ctx.principal.person_id)
    assert person is not None
    person.password_hash = HASHER.hash(password)
    audit_log.record(ctx, "person.password", person)


def login(session: Session, email: str, password: str) -> Person:
    """The person with this email and password; Unauthenticated otherwise (same message)."""
    person = session.scalar(select(Person).where(Person.email == email.lower()))
    stored = person.password_hash if person else None
    try:
        if person is None or stored is None:
            HASHER.verify(HASHER.hash("x" * MIN_PASSWORD), password + "\x00")  # same cost
            raise VerificationError
        HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        raise Unauthenticated("wrong email or password") from None
    return person
