"""Errors as RFC 9457 problem details (`application/problem+json`), one precise message each."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

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


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route answers at `path` (a 405's `Allow`, RFC 9110 §15.5.6)."""
    table: list[tuple[re.Pattern[str], set[str]]] = app.state.methods_by_path
    return sorted({m for regex, methods in table if regex.match(path) for m in methods})


def route_table(app: FastAPI) -> list[tuple[re.Pattern[str], set[str]]]:
    return [
        (compile_path(context.path)[0], set(context.methods or ()))
        for context in iter_route_contexts(app.routes)
        if context.path is not None
    ]


def install(app: FastAPI) -> None:
    async def kizuna_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, KizunaError)
        return problem_for(exc)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _validation(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = allowed_methods(request.app, request.url.path)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
        return problem(exc.status_code, detail, headers)

    async def unexpected(_: Request, exc: Exception) -> Response:
        return problem(500, "the service failed; the error is in its log")

    app.add_exception_handler(KizunaError, kizuna_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is written."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = Field(
        None, description="One item per fault: `detail`, and `pointer` for a field"
    )


PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": TITLES[status], "content": PROBLEM}
    for status in (400, 401, 403, 404, 405, 409, 413, 422)
}


def document(app: FastAPI) -> None:
    """Adds the `Problem` schema and the bearer scheme's words to the OpenAPI document."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = make()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = Problem.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
