"""Who am I, API tokens, passwords and signing in."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from kizuna.api.deps import Caller, Read, Wiring, Write, wiring
from kizuna.api.routes.common import DEFAULT_LIMIT, Cursor, Filter, Limit, ref
from kizuna.api.schemas import (
    ListOf,
    Login,
    PasswordSet,
    TokenCreate,
    TokenPublic,
    TokenSecret,
    WhoAmI,
)
from kizuna.services import tokens
from kizuna.services.context import Context
from kizuna.store.engine import writing

router = APIRouter(tags=["identity"])
TokenRef = Annotated[str, ref(40, "Id")]


@router.get("/whoami", response_model=WhoAmI)
def whoami(principal: Caller) -> WhoAmI:
    return WhoAmI(
        person_id=principal.person_id,
        email=principal.email,
        token_id=principal.token_id,
        roles={k: str(v) for k, v in principal.roles.items()},
    )


@router.post("/tokens", status_code=201, response_model=TokenSecret)
def issue(body: TokenCreate, unit: Write) -> Response:
    def effect(ctx: Context) -> TokenSecret:
        token, secret = tokens.issue(
            ctx, body.name, timedelta(days=body.expires_in_days), body.person_id
        )
        return TokenSecret(**TokenPublic.model_validate(token).model_dump(), secret=secret)

    return unit.write(effect, 201)


@router.get("/tokens", response_model=ListOf[TokenPublic])
def listing(
    unit: Read, person_id: Filter = None, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> ListOf[TokenPublic]:
    with unit.session() as session:
        found = tokens.listing(session, unit.principal, person_id, cursor, limit)
        items = [TokenPublic.model_validate(t) for t in found.items]
    return ListOf[TokenPublic](items=items, next_cursor=found.next_cursor)


@router.get("/tokens/{token}", response_model=TokenPublic)
def show(token: TokenRef, unit: Read) -> TokenPublic:
    with unit.session() as session:
        return TokenPublic.model_validate(tokens.get(session, unit.principal, token))


@router.post("/tokens/{token}/revoke", response_model=TokenPublic)
def revoke(token: TokenRef, unit: Write) -> Response:
    return unit.write(lambda ctx: TokenPublic.model_validate(tokens.revoke(ctx, token)))


@router.put("/password", status_code=204)
def set_password(body: PasswordSet, unit: Write) -> Response:
    return unit.write(lambda ctx: tokens.set_password(ctx, body.password))


@router.post("/login", status_code=201, response_model=TokenSecret)
def login(body: Login, wired: Annotated[Wiring, Depends(wiring)]) -> TokenSecret:
    """A new token for an email and password (no Authorization header needed)."""
    with writing(wired.sessions) as session:
        person = tokens.login(session, body.email, body.password)
        ctx = Context(session, tokens.principal_of(session, person), wired.clock())
        token, secret = tokens.issue(ctx, body.token_name, timedelta(days=body.expires_in_days))
        return TokenSecret(**TokenPublic.model_validate(token).model_dump(), secret=secret)
