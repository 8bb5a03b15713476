"""Helpers for tests of the service: a client with the program admin's token, and builders
that make organizations, projects, nodes, awards, people and jobs in one line each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response

from kizuna.api.app import create_app
from kizuna.config import Settings
from kizuna.services.bootstrap import bootstrap
from kizuna.store.engine import writing

API = "/api/v1"
AWARD_WINDOW = {"starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def running(settings: Settings, background: bool = True) -> Iterator[Service]:
    """The service on `settings` in this process with its first program admin bootstrapped;
    its lifespan runs (with the scheduling loop and its backend when `background`)."""
    app = create_app(settings, background=background)
    with writing(app.state.kizuna.sessions) as session:
        _, secret = bootstrap(
            session, "admin@office.example", "Ada Admin", "program-office", datetime.now(UTC)
        )
    with TestClient(app) as client:
        yield Service(client, secret)


@dataclass
class Service:
    client: TestClient
    admin_token: str
    counter: list[int] = field(default_factory=lambda: [0])

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.admin_token)

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Response:
        headers = {**(bearer(token) if token else self.admin), **kwargs.pop("headers", {})}
        return self.client.request(method, API + path, headers=headers, **kwargs)

    def ok(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        response = self.call(method, path, token, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def org(self, name: str, kind: str = "startup") -> dict[str, Any]:
        result: dict[str, Any] = self.ok(
            "POST", "/organizations", json={"name": name, "kind": kind}
        )
        return result

    def project(self, org: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ok(
            "POST", "/projects", json={"organization": org, "name": name}
        )
        return result

    def node(self, name: str, gpu_type: str = "H100", gpus: int = 8) -> dict[str, Any]:
        result: dict[str, Any] = self.ok(
            "POST", "/nodes", json={"name": name, "gpu_type": gpu_type, "gpus": gpus}
        )
        return result

    def award(
        self, project: str, gpu_type: str = "H100", hours: int = 1000, nominal: int = 8
    ) -> dict[str, Any]:
        body = {
            "project": project,
            "gpu_type": gpu_type,
            "gpu_hours": hours,
            "nominal_gpus": nominal,
            **AWARD_WINDOW,
        }
        result: dict[str, Any] = self.ok("POST", "/awards", json=body)
        return result

    def person(self, org: str, role: str = "member") -> str:
        """A new person with `role` in `org`; returns their token."""
        self.counter[0] += 1
        email = f"p{self.counter[0]}-{role}@{org}.example"
        member = self.ok(
            "POST", f"/organizations/{org}/members", json={"email": email, "role": role}
        )
        token = self.ok("POST", "/tokens", json={"name": "t", "person_id": member["person_id"]})
        secret: str = token["secret"]
        return secret

    def job(
        self, project: str, gpus: int = 8, token: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        body = {
            "project": project,
            "command": ["python", "train.py"],
            "gpus": gpus,
            "gpu_type": "H100",
            "walltime": 3600,
            **extra,
        }
        result: dict[str, Any] = self.ok("POST", "/jobs", token, json=body)
        return result

    def audit_size(self) -> int:
        result: dict[str, Any] = self.ok("POST", "/audit/checkpoints")
        size: int = result["size"]
        return size
