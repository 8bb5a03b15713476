"""Errors as RFC 9457 problem details (`application/problem+json`), one precise message each."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from kizuna.kernel.errors import InvalidRequest, KizunaError, UnknownName
from kizuna.services.errors import Conflict, Forbidden, NotFound, Unauthenticated

MEDIA_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Internal error",
}
STATUS: tuple[tuple[type[KizunaError], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidRequest, 422),
    (UnknownName, 422),
)


def problem_body(status: int, detail: str, **extra: Any) -> bytes:
    body = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return Response(problem_body(status, detail, **extra), status, headers, MEDIA_TYPE)


def status_of(exc: KizunaError) -> int:
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 400)


def problem_for(exc: KizunaError) -> Response:
    status = status_of(exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidRequest):
        extra["errors"] = [{"detail": p} for p in exc.problems]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(status, str(exc), headers, **extra)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _validation(exc: RequestValidationError) -> Response:
    errors = [
        {"pointer": _location(tuple(e.get("loc", ()))), "detail": e.get("msg", "")}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"pointer": "body", "detail": "invalid"}
    detail = f"{first['pointer']}: {first['detail']}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    return problem(422, detail, errors=errors)


def install(app: FastAPI) -> None:
    async def kizuna_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, KizunaError)
        return problem_for(exc)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _validation(exc)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        return problem(exc.status_code, detail, dict(exc.headers or {}))

    async def unexpected(_: Request, exc: Exception) -> Response:
        return problem(500, "the service failed; the error is in its log")

    app.add_exception_handler(KizunaError, kizuna_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
