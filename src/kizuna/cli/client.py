"""The CLI's client of the Kizuna service: one `httpx` client, errors as exit codes.

C1. Every answer that is not 2xx becomes a `CliError` carrying the service's problem document
    (RFC 9457) and the exit code scripts can trust (`exit_code_for`).
C2. Every request that changes something (POST, PATCH, PUT, DELETE) carries a fresh
    `Idempotency-Key`; on a connection error it is sent once more with the same key, so a
    retry never does the work twice (the service keeps the first answer for 48 hours).
C3. Lists are followed page by page (`pages`) until `next_cursor` is null.
"""

from __future__ import annotations

import functools
import ssl
import time
import uuid
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kizuna import __version__
from kizuna.config import Settings

if TYPE_CHECKING:
    import httpx

API_PREFIX = "/api/v1"
TIMEOUT_S = 30.0
RETRY_AFTER_S = 0.25
PAGE_LIMIT = 500
"""Items asked for per page when following a list (the service's largest page)."""

EXIT_OK = 0
EXIT_FAILED = 1
"""The service refused or failed (any other 4xx or 5xx), or an audit check failed."""
EXIT_USAGE = 2
"""Bad usage: a wrong option or argument (Click's own code)."""
EXIT_NOT_FOUND = 3
EXIT_AUTH = 4
"""Not signed in, or signed in but not allowed (401, 403)."""
EXIT_CONFLICT = 5
EXIT_INVALID = 6
"""The service found the request invalid (422)."""
EXIT_UNREACHABLE = 7

WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})

Json = Any
"""A JSON value as `httpx.Response.json` gives it."""


def exit_code_for(status: int) -> int:
    """The exit code of an HTTP error status."""
    if status == 404:
        return EXIT_NOT_FOUND
    if status in (401, 403):
        return EXIT_AUTH
    if status == 409:
        return EXIT_CONFLICT
    if status == 422:
        return EXIT_INVALID
    return EXIT_FAILED


class CliError(Exception):
    """Something the command reports and exits on: a problem document and an exit code."""

    def __init__(self, problem: dict[str, Any], exit_code: int) -> None:
        self.problem, self.exit_code = problem, exit_code
        super().__init__(str(problem.get("detail") or problem.get("title") or "failed"))

    @property
    def status(self) -> int | None:
        status = self.problem.get("status")
        return status if isinstance(status, int) else None


def local_problem(title: str, detail: str, exit_code: int, **extra: Any) -> CliError:
    """A problem the CLI finds itself, shaped like the service's."""
    return CliError({"type": "about:blank", "title": title, "detail": detail, **extra}, exit_code)


def segment(value: str | int) -> str:
    """One path segment, escaped."""
    return quote(str(value), safe="")


def api_base(url: str) -> str:
    """The API's base URL of a service URL, with or without its `/api/v1` suffix."""
    base = url.strip().rstrip("/")
    return base if base.endswith(API_PREFIX) else base + API_PREFIX


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certificates verified against certifi's CA bundle), built
    once per process: loading the bundle is most of the cost of a new client."""
    import httpx  # noqa: PLC0415

    return httpx.create_ssl_context()


class Client:
    """The service at `url`, signed in with `token` (none: only `/login` and `/health`)."""

    def __init__(
        self,
        url: str,
        token: str = "",
        *,
        timeout: float = TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx  # noqa: PLC0415 (loaded by the verbs that talk to the service only)

        self.url = url.strip().rstrip("/")
        headers = {"User-Agent": f"kizuna-cli/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=api_base(self.url),
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=tls_context(),
        )

    @classmethod
    def of(cls, settings: Settings, token: str | None = None) -> Client:
        return cls(settings.service_url, settings.token if token is None else token)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Json:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Json = None, *, retry: bool = True) -> Json:
        return self.request("POST", path, body=body, retry=retry)

    def patch(self, path: str, body: Json) -> Json:
        return self.request("PATCH", path, body=body)

    def delete(self, path: str) -> Json:
        return self.request("DELETE", path)

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Json]:
        """Every item of a paged list, following `next_cursor` to the last page (C3)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        query.setdefault("limit", PAGE_LIMIT)
        while True:
            page = self.get(path, query)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise local_problem(
                    "Unexpected answer", f"GET {path} did not answer with a list", EXIT_FAILED
                )
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return
            query["cursor"] = cursor

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Json = None,
        retry: bool = True,
    ) -> Json:
        """The JSON answer (None for an empty one); `CliError` for anything else (C1, C2)."""
        headers = {"Idempotency-Key": str(uuid.uuid4())} if method in WRITES else {}
        return _answer(method, path, self._send(method, path, params, body, headers, retry))

    def raw(
        self, path: str, params: Mapping[str, Any] | None = None, accept: str = "*/*"
    ) -> httpx.Response:
        """The answer to a GET that is not JSON (a log, a CSV report), with its headers;
        `CliError` for an error (C1)."""
        response = self._send("GET", path, params, None, {"Accept": accept}, retry=True)
        if not response.is_success:
            _answer("GET", path, response)
        return response

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Json,
        headers: dict[str, str],
        retry: bool,
    ) -> httpx.Response:
        import httpx  # noqa: PLC0415

        query = None if params is None else {k: v for k, v in params.items() if v is not None}
        content = {} if body is None else {"json": body}
        tries = 2 if retry else 1
        for attempt in range(1, tries + 1):
            try:
                return self._http.request(method, path, params=query, headers=headers, **content)
            except httpx.TransportError as error:
                if attempt == tries:
                    raise self._unreachable(error) from None
                time.sleep(RETRY_AFTER_S)
            except httpx.InvalidURL as error:
                raise self._unreachable(error) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _unreachable(self, error: Exception) -> CliError:
        reason = str(error) or type(error).__name__
        return local_problem(
            "Cannot reach the service",
            f"cannot reach the Kizuna service at {self.url}: {reason}. Is `kizuna server` "
            "running there? Set KIZUNA_URL or run `kizuna login --url URL ...`.",
            EXIT_UNREACHABLE,
            url=self.url,
        )


def _answer(method: str, path: str, response: httpx.Response) -> Json:
    if response.is_success:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise local_problem(
                "Unexpected answer",
                f"{method} {path} answered {response.status_code} with something not JSON",
                EXIT_FAILED,
            ) from None
    status = response.status_code
    problem: dict[str, Any]
    try:
        found = response.json()
    except ValueError:
        found = None
    if isinstance(found, dict) and isinstance(found.get("detail"), str):
        problem = found
        problem.setdefault("status", status)
    else:
        text = response.text.strip()[:300]
        problem = {
            "type": "about:blank",
            "title": response.reason_phrase or "Error",
            "status": status,
            "detail": f"{method} {path} answered {status}" + (f": {text}" if text else ""),
        }
    raise CliError(problem, exit_code_for(status))
