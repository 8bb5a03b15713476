"""Jobs through the API: submit, list with filters and cursors, show with reason, cancel."""

from __future__ import annotations

from kizuna.api.testing import Service


def setup_cluster(service: Service) -> None:
    service.org("acme")
    service.project("acme", "llm")
    service.node("h100-0")
    service.node("h100-1")
    service.award("acme/llm", nominal=8)


def test_a_submitted_job_waits_with_the_scheduling_cores_reason(service: Service) -> None:
    setup_cluster(service)
    first = service.job("acme/llm", gpus=8)
    second = service.job("acme/llm", gpus=8)
    assert first["state"] == second["state"] == "pending"
    shown = service.ok("GET", f"/jobs/{second['id']}")
    assert shown["reason"]["code"] == "quota"
    assert "quota of 8 H100" in shown["reason"]["message"]
    assert [e["kind"] for e in shown["events"]] == ["submitted"]
    assert service.ok("GET", f"/jobs/{first['id']}/reason") is None  # would start now


def test_an_impossible_job_is_refused_at_once_with_every_reason(service: Service) -> None:
    setup_cluster(service)
    body = {"project": "acme/llm", "command": ["x"], "gpus": 32, "gpu_type": "H100", "walltime": 60}
    response = service.call("POST", "/jobs", json=body)
    assert response.status_code == 422
    assert "cluster has only 16 H100" in response.json()["detail"]
    body = {**body, "gpus": 8, "gpu_type": "A100"}
    problems = [e["detail"] for e in service.call("POST", "/jobs", json=body).json()["errors"]]
    assert any("unknown GPU type 'A100'" in p for p in problems)
    assert any("no award of A100" in p for p in problems)
    assert service.ok("GET", "/jobs")["items"] == []


def test_a_job_asks_to_be_requeued_by_default_or_not(service: Service) -> None:
    setup_cluster(service)
    assert service.job("acme/llm")["requeue"] is True
    job = service.job("acme/llm", requeue=False)
    assert job["requeue"] is False
    assert service.ok("GET", f"/jobs/{job['id']}")["requeue"] is False
    body = {"project": "acme/llm", "command": ["x"], "gpus": 8, "gpu_type": "H100", "walltime": 60}
    assert service.call("POST", "/jobs", json={**body, "requeue": "no"}).status_code == 422


def test_cancel_ends_a_job_once_and_records_the_event(service: Service) -> None:
    setup_cluster(service)
    job = service.job("acme/llm")
    cancelled = service.ok("POST", f"/jobs/{job['id']}/cancel")
    assert cancelled["state"] == "cancelled" and cancelled["ended_at"]
    again = service.call("POST", f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]
    events = service.ok("GET", f"/jobs/{job['id']}")["events"]
    assert [e["kind"] for e in events] == ["submitted", "cancelled"]


def test_lists_page_with_cursors_and_filter(service: Service) -> None:
    setup_cluster(service)
    ids = [service.job("acme/llm", gpus=1 + i % 4)["id"] for i in range(7)]
    service.ok("POST", f"/jobs/{ids[0]}/cancel")
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = service.ok("GET", "/jobs", params=params)
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    pending = service.ok("GET", "/jobs", params={"state": "pending"})["items"]
    assert [j["id"] for j in pending] == ids[1:]
    bad = service.call("GET", "/jobs", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422


def test_nodes_drain_and_come_back(service: Service) -> None:
    service.node("h100-0")
    assert service.ok("PATCH", "/nodes/h100-0", json={"state": "draining"})["state"] == "draining"
    listed = service.ok("GET", "/nodes", params={"state": "draining"})["items"]
    assert [n["name"] for n in listed] == ["h100-0"]
    assert service.ok("PATCH", "/nodes/h100-0", json={"state": "up"})["state"] == "up"


def test_a_reason_names_projects_as_people_know_them(service: Service) -> None:
    service.org("acme")
    service.project("acme", "llm")
    service.node("h100-0")
    body = {
        "project": "acme/llm",
        "gpu_type": "H100",
        "gpu_hours": 10,
        "nominal_gpus": 8,
        "starts_at": "2098-01-01T00:00:00Z",
        "ends_at": "2099-01-01T00:00:00Z",
    }
    service.ok("POST", "/awards", json=body)  # granted, not yet begun
    job = service.job("acme/llm")
    reason = service.ok("GET", f"/jobs/{job['id']}/reason")
    assert reason["code"] == "no-quota"
    assert reason["message"] == "project acme/llm has no H100 quota"


def test_a_node_added_makes_a_larger_job_possible_at_once(service: Service) -> None:
    service.org("acme")
    service.project("acme", "llm")
    service.node("h100-0")
    service.award("acme/llm", nominal=16)
    body = {"project": "acme/llm", "command": ["x"], "gpus": 16, "gpu_type": "H100", "walltime": 60}
    assert service.call("POST", "/jobs", json=body).status_code == 422
    service.node("h100-1")
    assert service.call("POST", "/jobs", json=body).status_code == 201


def test_an_award_patch_changes_what_it_names_and_null_lifts_the_limit(service: Service) -> None:
    service.org("acme")
    service.project("acme", "llm")
    award = service.ok(
        "POST",
        "/awards",
        json={
            "project": "acme/llm",
            "gpu_type": "H100",
            "gpu_hours": 100,
            "nominal_gpus": 8,
            "borrowing_limit": 4,
            "starts_at": "2026-01-01T00:00:00Z",
            "ends_at": "2099-01-01T00:00:00Z",
        },
    )
    path = f"/awards/{award['id']}"
    assert service.ok("PATCH", path, json={"nominal_gpus": 16})["borrowing_limit"] == 4
    lifted = service.ok("PATCH", path, json={"borrowing_limit": None})
    assert (lifted["borrowing_limit"], lifted["nominal_gpus"], lifted["gpu_hours"]) == (
        None,
        16,
        100,
    )
    early = service.call("PATCH", path, json={"ends_at": "2025-01-01T00:00:00Z"})
    assert early.status_code == 422 and "before it starts" in early.json()["detail"]
