"""Bad input anywhere gets a clear 4xx problem and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from kizuna.api.testing import AWARD_WINDOW, Service

GOOD_JOB = {
    "project": "acme/llm",
    "command": ["python", "train.py"],
    "gpus": 8,
    "gpu_type": "H100",
    "walltime": 3600,
}
GOOD_AWARD = {
    "project": "acme/llm",
    "gpu_type": "H100",
    "gpu_hours": 10,
    "nominal_gpus": 8,
    **AWARD_WINDOW,
}

CASES: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/jobs", b"{not json", 422, "JSON"),
    ("POST", "/jobs", {**GOOD_JOB, "gpus": "8"}, 422, "gpus"),
    ("POST", "/jobs", {**GOOD_JOB, "gpus": 0}, 422, "gpus"),
    ("POST", "/jobs", {**GOOD_JOB, "walltime": -1}, 422, "walltime"),
    ("POST", "/jobs", {**GOOD_JOB, "gpus_per_node": 3}, 422, "multiple of GPUs per node"),
    ("POST", "/jobs", {**GOOD_JOB, "surprise": 1}, 422, "surprise"),
    ("POST", "/jobs", {**GOOD_JOB, "command": []}, 422, "command"),
    ("POST", "/jobs", [1, 2], 422, "body"),
    ("POST", "/jobs", {**GOOD_JOB, "project": "acme/nope"}, 404, "no project"),
    ("POST", "/awards", {**GOOD_AWARD, "gpu_hours": -5}, 422, "gpu_hours"),
    (
        "POST",
        "/awards",
        {**GOOD_AWARD, "starts_at": "2027-01-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"},
        422,
        "ends",
    ),
    ("POST", "/awards", {**GOOD_AWARD, "starts_at": "2026-01-01T00:00:00"}, 422, "timezone"),
    ("POST", "/organizations", {"name": "Bad Name!", "kind": "startup"}, 422, "name"),
    ("POST", "/organizations", {"name": "acme", "kind": "startup"}, 409, "taken"),
    ("POST", "/organizations", {"name": "x", "kind": "bank"}, 422, "kind"),
    ("POST", "/nodes", {"name": "n1", "gpu_type": "H100", "gpus": 0}, 422, "gpus"),
    ("PATCH", "/nodes/h100-0", {"state": "melted"}, 422, "state"),
    ("POST", "/tokens", {"name": "t", "expires_in_days": 0}, 422, "expires_in_days"),
]


def count_everything(service: Service) -> tuple[int, ...]:
    lists = ("/organizations", "/projects", "/awards", "/jobs", "/nodes", "/tokens")
    counts = tuple(len(service.ok("GET", path, params={"limit": 500})["items"]) for path in lists)
    return (*counts, service.audit_size())


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), CASES)
def test_bad_input_is_a_precise_problem_and_changes_nothing(
    service: Service, method: str, path: str, body: Any, status: int, words: str
) -> None:
    service.org("acme")
    service.project("acme", "llm")
    service.node("h100-0")
    service.award("acme/llm")
    before = count_everything(service)
    if isinstance(body, bytes):
        response = service.call(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
    else:
        response = service.call(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert words.lower() in response.text.lower()
    assert count_everything(service) == before


def test_a_huge_payload_is_refused_before_it_is_read(service: Service) -> None:
    response = service.call(
        "POST",
        "/jobs",
        content=b"[" + b"1," * 600_000 + b"1]",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_no_token_or_a_wrong_token_is_401(service: Service) -> None:
    anonymous = service.client.get("/api/v1/jobs")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    wrong = service.call("GET", "/jobs", token="kz_not-a-token")
    assert wrong.status_code == 401
