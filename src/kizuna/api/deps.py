"""Dependencies of every route: the wired services, the caller, and units of work.

A route that changes something runs its effect through `Writer.write`: one transaction holds
the change, its audit entry and, with an `Idempotency-Key`, the response kept for retries
(ADR 0018, Stripe's semantics):
I1. Same key, same method, path and body: the first response, byte for byte
    (`Idempotent-Replayed: true`).
I2. Same key, another request: 422, nothing done.
I3. Two requests with one key at once: both may run, only one commits (the key is unique in
    the store, in the same transaction as the effect); the other is rolled back and answers
    with the first's response. Exactly one effect.
I4. Responses to errors raised by a service (4xx) are kept too; a failed request validation
    (before any work) or a 5xx is not, so a retry runs again.
I5. Keys are kept 48 hours (at least the 24 Stripe promises), then forgotten.

Planted faults, for the crash harness only (`Settings.faults`, tests/live/crash.py), so it is
seen to catch them; inert when the setting is empty, as it is everywhere else:
F1. `no-idempotency`: the Idempotency-Key header is ignored (a retry makes a second effect).
F2. `ack-before-commit`: the answer goes out, then the transaction commits `FAULT_DELAY`
    seconds later in another thread (a crash in between loses an acknowledged effect).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kizuna.api.problems import MEDIA_TYPE, problem, problem_for
from kizuna.config import Settings
from kizuna.kernel.errors import KizunaError
from kizuna.live.runner import Runner
from kizuna.services import tokens
from kizuna.services.audit_log import LogState
from kizuna.services.context import Context
from kizuna.services.errors import InvalidRequest, Unauthenticated
from kizuna.services.nodes import ShapeCache
from kizuna.services.principal import Principal
from kizuna.store.engine import WRITE, reading, writing
from kizuna.store.tables import IdempotencyKey

KEEP_KEYS = timedelta(hours=48)
JSON = "application/json"
FAULT_DELAY = 0.2
"""F2: seconds between the answer and the commit."""


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Wiring:
    """Everything a request needs, built once by `create_app`."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    log: LogState
    clock: Callable[[], datetime] = field(default=system_clock)
    shapes: ShapeCache = field(default_factory=ShapeCache)
    runner: Runner | None = None
    """The scheduling loop, when this service runs one (ADR 0022)."""

    def changed(self) -> None:
        """A write went through: let the loop look at once."""
        if self.runner is not None:
            self.runner.wake()


def wiring(request: Request) -> Wiring:
    found: Wiring = request.app.state.kizuna
    return found


BEARER = HTTPBearer(auto_error=False, description="An API token: `Bearer kz_...`")


def authenticate(
    request: Request,
    wired: Annotated[Wiring, Depends(wiring)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Principal:
    if credentials is None or not credentials.credentials.strip():
        raise Unauthenticated("sign in: send `Authorization: Bearer <token>`")
    with reading(wired.sessions) as session:
        principal = tokens.authenticate(session, credentials.credentials.strip(), wired.clock())
    request.state.principal = principal
    return principal


Caller = Annotated[Principal, Depends(authenticate)]


def request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if 0 < len(given) <= 60 else uuid.uuid4().hex


class Reader:
    """A unit of work that only reads."""

    def __init__(self, wired: Wiring, principal: Principal) -> None:
        self.wired, self.principal = wired, principal

    @contextmanager
    def session(self) -> Iterator[Session]:
        with reading(self.wired.sessions) as session:
            yield session

    def now(self) -> datetime:
        return self.wired.clock()


def reader(wired: Annotated[Wiring, Depends(wiring)], principal: Caller) -> Reader:
    return Reader(wired, principal)


class Writer(Reader):
    """A unit of work that changes things: one transaction, audit and idempotency inside."""

    def __init__(
        self,
        wired: Wiring,
        principal: Principal,
        request: Request,
        key: str | None,
        fingerprint: bytes,
    ) -> None:
        super().__init__(wired, principal)
        self.key, self.fingerprint = key, fingerprint
        self.request_id = request_id(request)

    def write(
        self, effect: Callable[[Context], BaseModel | None], status: int = 200, retry: bool = True
    ) -> Response:
        """Runs `effect` in one transaction and answers with its result as JSON."""
        if "ack-before-commit" in self.wired.settings.faults.split(","):  # F2
            return _answer_first(lambda early: self._write(effect, status, retry, early))
        return self._write(effect, status, retry)

    def _write(
        self,
        effect: Callable[[Context], BaseModel | None],
        status: int,
        retry: bool,
        early: Callable[[Response], None] | None = None,
    ) -> Response:
        replay = self._replay()
        if replay is not None:
            return replay
        try:
            with writing(self.wired.sessions) as session:
                ctx = Context(
                    session, self.principal, self.wired.clock(), self.request_id, self.wired.shapes
                )
                try:
                    result = effect(ctx)
                except KizunaError as exc:  # I4: undo the effect, keep the refusal
                    session.rollback()
                    session.connection(execution_options={WRITE: True})
                    answer = problem_for(exc)
                    self._keep(session, answer.status_code, MEDIA_TYPE, bytes(answer.body))
                    return answer
                body = b"" if result is None else result.model_dump_json().encode()
                status = 204 if result is None else status
                self._keep(session, status, JSON, body)
                if early is not None:  # F2
                    early(Response(body, status, media_type=JSON if body else None))
            self.wired.changed()
        except IntegrityError:
            replay = self._replay()
            if replay is not None:
                return replay
            if retry and self._forget_expired():
                return self._write(effect, status, False, early)
            raise
        return Response(body, status, media_type=JSON if body else None)

    def _forget_expired(self) -> bool:
        """I5: a key past its time is free again, whether or not the sweeper came by."""
        with writing(self.wired.sessions) as session:
            gone = session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.person_id == self.principal.person_id,
                    IdempotencyKey.key == self.key,
                    IdempotencyKey.created_at <= self.wired.clock() - KEEP_KEYS,
                )
            )
            return bool(getattr(gone, "rowcount", 0))

    def _keep(self, session: Session, status: int, content_type: str, body: bytes) -> None:
        if self.key is None:
            return
        session.add(
            IdempotencyKey(
                person_id=self.principal.person_id,
                key=self.key,
                fingerprint=self.fingerprint,
                status=status,
                content_type=content_type,
                body=body,
                created_at=self.wired.clock(),
            )
        )
        session.flush()

    def _replay(self) -> Response | None:
        """I1/I2: the kept response for this key, if there is one."""
        if self.key is None:
            return None
        with reading(self.wired.sessions) as session:
            kept = session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.person_id == self.principal.person_id,
                    IdempotencyKey.key == self.key,
                    IdempotencyKey.created_at > self.wired.clock() - KEEP_KEYS,
                )
            )
        if kept is None:
            return None
        if kept.fingerprint != self.fingerprint:
            return problem(
                422,
                f"Idempotency-Key {self.key!r} was used with another request;"
                " use a new key for a new request",
            )
        media = kept.content_type if kept.body else None
        return Response(kept.body, kept.status, {"Idempotent-Replayed": "true"}, media)


async def writer(
    request: Request,
    wired: Annotated[Wiring, Depends(wiring)],
    principal: Caller,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Retry safely: the same key and body give the first response",
        ),
    ] = None,
) -> Writer:
    body = await request.body()
    digest = hashlib.sha256()
    for part in (
        request.method.encode(),
        request.url.path.encode(),
        request.url.query.encode(),
        body,
    ):
        digest.update(len(part).to_bytes(8, "big") + part)
    if "no-idempotency" in wired.settings.faults.split(","):  # F1
        idempotency_key = None
    return Writer(wired, principal, request, idempotency_key, digest.digest())


def _answer_first(write: Callable[[Callable[[Response], None]], Response]) -> Response:
    """F2: runs `write` in a thread that hands its answer over before it commits."""
    answers: queue.Queue[Response | BaseException] = queue.Queue()

    def early(answer: Response) -> None:
        answers.put(answer)
        time.sleep(FAULT_DELAY)

    def work() -> None:
        try:
            answers.put(write(early))
        except BaseException as error:  # the request thread raises it, if it still waits
            answers.put(error)

    threading.Thread(target=work, daemon=True).start()
    first = answers.get()
    if isinstance(first, BaseException):
        raise first
    return first


Read = Annotated[Reader, Depends(reader)]
Write = Annotated[Writer, Depends(writer)]


REPEATABLE = frozenset({"state", "by"})
"""Query parameters a list takes more than once (`?state=pending&state=running`)."""


def single_values(request: Request) -> None:
    """A scalar query parameter given twice is refused, not silently taken as the last."""
    seen = [key for key, _ in request.query_params.multi_items()]
    twice = sorted({key for key in seen if seen.count(key) > 1} - REPEATABLE)
    if twice:
        raise InvalidRequest([f"query parameter {twice[0]!r} is given more than once"])


def forget_old_keys(wired: Wiring) -> int:
    """I5."""
    with writing(wired.sessions) as session:
        result = session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < wired.clock() - KEEP_KEYS)
        )
        return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["Caller", "Read", "Wiring", "Write", "forget_old_keys"]
