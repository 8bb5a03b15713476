"""Idempotency-Key with Stripe's semantics (ADR 0018 I1-I5)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from kizuna.api.app import create_app
from kizuna.api.deps import forget_old_keys
from kizuna.api.testing import Service
from kizuna.config import Settings
from kizuna.services.bootstrap import bootstrap
from kizuna.store.engine import writing

JOB = {
    "project": "acme/llm",
    "command": ["python", "train.py"],
    "gpus": 8,
    "gpu_type": "H100",
    "walltime": 3600,
}


def ready(service: Service) -> None:
    service.org("acme")
    service.project("acme", "llm")
    service.node("h100-0")
    service.award("acme/llm")


def test_a_retry_gets_the_first_response_byte_for_byte(service: Service) -> None:
    ready(service)
    key = {"Idempotency-Key": "submit-1"}
    first = service.call("POST", "/jobs", json=JOB, headers=key)
    again = service.call("POST", "/jobs", json=JOB, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(service.ok("GET", "/jobs")["items"]) == 1


def test_the_same_key_with_another_body_is_422_and_does_nothing(service: Service) -> None:
    ready(service)
    key = {"Idempotency-Key": "submit-2"}
    service.call("POST", "/jobs", json=JOB, headers=key)
    other = service.call("POST", "/jobs", json={**JOB, "gpus": 4}, headers=key)
    assert other.status_code == 422
    assert "used with another request" in other.json()["detail"]
    assert len(service.ok("GET", "/jobs")["items"]) == 1


def test_a_refusal_is_kept_too(service: Service) -> None:
    ready(service)
    key = {"Idempotency-Key": "submit-3"}
    first = service.call("POST", "/jobs", json={**JOB, "gpus": 64}, headers=key)
    service.node("h100-1")  # the world changes; the answer to this key does not
    again = service.call("POST", "/jobs", json={**JOB, "gpus": 64}, headers=key)
    assert first.status_code == again.status_code == 422
    assert again.content == first.content


def test_keys_belong_to_their_person(service: Service) -> None:
    ready(service)
    member = service.person("acme")
    key = {"Idempotency-Key": "shared-key"}
    mine = service.call("POST", "/jobs", json=JOB, headers=key)
    theirs = service.call("POST", "/jobs", member, json=JOB, headers=key)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


def test_concurrent_duplicates_have_exactly_one_effect(service: Service) -> None:
    ready(service)
    key = {"Idempotency-Key": "race"}

    def send(_: int) -> tuple[int, bytes]:
        response = service.call("POST", "/jobs", json=JOB, headers=key)
        return response.status_code, response.content

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(16)))
    assert {status for status, _ in answers} == {201}
    assert len({body for _, body in answers}) == 1
    assert len(service.ok("GET", "/jobs")["items"]) == 1


def test_keys_are_kept_two_days_then_forgotten(settings: Settings) -> None:
    now = [datetime(2026, 11, 27, tzinfo=UTC)]
    app = create_app(settings, clock=lambda: now[0], background=False)
    with writing(app.state.kizuna.sessions) as session:
        _, secret = bootstrap(session, "ada@office.example", "Ada", "program-office", now[0])
    with TestClient(app) as client:
        service = Service(client, secret)
        ready(service)
        key = {"Idempotency-Key": "slow-retry"}
        first = service.call("POST", "/jobs", json=JOB, headers=key)
        now[0] += timedelta(hours=47)
        assert service.call("POST", "/jobs", json=JOB, headers=key).content == first.content
        now[0] += timedelta(hours=2)  # past its time, before the sweeper came by
        later = service.call("POST", "/jobs", json=JOB, headers=key)
        assert later.status_code == 201 and later.json()["id"] != first.json()["id"]
        now[0] += timedelta(hours=49)
        assert forget_old_keys(app.state.kizuna) == 1
