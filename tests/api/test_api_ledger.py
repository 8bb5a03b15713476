"""Balances, usage reports, a job's runs and its logs through the API, on both stores.

The service here runs no loop: runs are made in the store with the ledger's own `hold` and
`settle` (ADR 0023), and their logs written where the local executor writes them.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kizuna.api.deps import Wiring
from kizuna.api.logs import MAX_PIECE
from kizuna.api.testing import Service
from kizuna.services import ledger
from kizuna.store.engine import writing
from kizuna.store.tables import Job

HOUR_MS = 3_600_000
EIGHT = {"parts": [["h100-0", list(range(8))]]}


def wiring(service: Service) -> Wiring:
    found: Wiring = service.client.app.state.kizuna  # type: ignore[attr-defined]
    return found


def run_for(
    service: Service,
    job_id: int,
    hours_ago: float,
    hours: float | None,
    allocation: dict[str, Any] = EIGHT,
) -> None:
    """A run of the job started `hours_ago`, ended `hours` later (None: still running)."""
    now = datetime.now(UTC)
    with writing(wiring(service).sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        started = now - timedelta(hours=hours_ago)
        run = ledger.hold(session, job, started, allocation)
        assert run is not None
        run.started_at, run.state, job.state = started, "running", "running"
        if hours is not None:
            end = started + timedelta(hours=hours)
            ledger.settle(session, run, job.walltime, end, "succeeded", [0] * run.gpus)
            job.state = "succeeded"


def world(service: Service) -> dict[str, Any]:
    """acme/llm with a 10 GPU-hour award, one job that ran 1 h on 8 GPUs and one running
    for 30 min; globex/vision with an award and nothing spent."""
    for org, project in (("acme", "llm"), ("globex", "vision")):
        service.org(org)
        service.project(org, project)
    service.node("h100-0")
    award = service.award("acme/llm", hours=10)
    service.award("globex/vision", hours=100)
    done = service.job("acme/llm", gpus=8)["id"]
    running = service.job("acme/llm", gpus=1, walltime=1800)["id"]
    run_for(service, done, 2, 1)
    run_for(service, running, 0.5, None, {"parts": [["h100-0", [0]]]})
    return {"award": award["id"], "done": done, "running": running}


def test_a_balance_is_granted_less_charged_less_held_with_its_burn_rate(service: Service) -> None:
    made = world(service)
    items = service.ok("GET", "/balances")["items"]
    assert [b["project"] for b in items] == ["acme/llm", "globex/vision"]
    acme = items[0]
    assert acme["award_id"] == made["award"] and acme["organization"] == "acme"
    assert acme["granted_gpu_ms"] == 10 * HOUR_MS
    assert acme["charged_gpu_ms"] == 8 * HOUR_MS
    assert acme["held_gpu_ms"] == HOUR_MS // 2  # 1 GPU x its walltime of 30 min
    assert acme["available_gpu_ms"] == 10 * HOUR_MS - 8 * HOUR_MS - HOUR_MS // 2
    assert acme["available_gpu_hours"] == 1.5 and acme["charged_gpu_hours"] == 8.0
    # 8 GPU-hours, and the open run's half hour so far, over 7 days
    assert acme["burn_gpu_hours_per_day"] == pytest.approx(8.5 / 7, abs=0.002)
    runs_out = datetime.fromisoformat(acme["runs_out_at"])
    expected = datetime.now(UTC) + timedelta(days=1.5 / (8.5 / 7))
    assert abs(runs_out - expected) < timedelta(minutes=5)
    assert items[1]["burn_gpu_hours_per_day"] == 0 and items[1]["runs_out_at"] is None
    only = service.ok("GET", "/balances", params={"project": "globex/vision"})["items"]
    assert [b["project"] for b in only] == ["globex/vision"]
    by_org = service.ok("GET", "/balances", params={"organization": "acme"})["items"]
    assert [b["award_id"] for b in by_org] == [made["award"]]


def test_an_ended_award_is_shown_only_when_asked(service: Service) -> None:
    service.org("acme")
    service.project("acme", "llm")
    body = {
        "project": "acme/llm",
        "gpu_type": "H100",
        "gpu_hours": 5,
        "nominal_gpus": 8,
        "starts_at": "2020-01-01T00:00:00Z",
        "ends_at": "2021-01-01T00:00:00Z",
    }
    service.ok("POST", "/awards", json=body)
    assert service.ok("GET", "/balances")["items"] == []
    ended = service.ok("GET", "/balances", params={"include_ended": "true"})["items"]
    assert [b["granted_gpu_hours"] for b in ended] == [5.0]


def test_a_member_sees_only_its_organizations_balances_and_usage(service: Service) -> None:
    world(service)
    member = service.person("globex")
    items = service.ok("GET", "/balances", member)["items"]
    assert [b["project"] for b in items] == ["globex/vision"]
    assert service.ok("GET", "/usage", member)["items"] == []
    for path in ("/balances", "/usage"):
        hidden = service.call("GET", path, member, params={"project": "acme/llm"})
        assert hidden.status_code == 404 and hidden.json()["detail"] == "no project acme/llm"


def test_usage_groups_by_what_is_asked_and_by_period(service: Service) -> None:
    made = world(service)
    lines = service.ok("GET", "/usage")["items"]
    assert lines == [
        {
            "group": {"project": "acme/llm"},
            "period": None,
            "runs": 1,
            "gpu_hours": 8.0,
            "gpu_ms": 8 * HOUR_MS,
        }
    ]
    by = [("by", "organization"), ("by", "gpu_type"), ("by", "job"), ("period", "day")]
    (line,) = service.ok("GET", "/usage", params=by)["items"]
    assert line["group"] == {"organization": "acme", "gpu_type": "H100", "job": str(made["done"])}
    assert line["period"] == (datetime.now(UTC) - timedelta(hours=1)).date().isoformat()
    later = {"since": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()}
    assert service.ok("GET", "/usage", params=later)["items"] == []


def test_usage_as_csv_by_accept_or_format(service: Service) -> None:
    world(service)
    by = [("by", "project"), ("by", "award"), ("period", "month")]
    for extra, headers in (([], {"Accept": "text/csv"}), ([("format", "csv")], {})):
        got = service.call("GET", "/usage", params=by + extra, headers=headers)
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(got.text)))
        assert list(rows[0]) == ["project", "award", "period", "runs", "gpu_hours", "gpu_ms"]
        assert rows[0]["project"] == "acme/llm" and rows[0]["gpu_ms"] == str(8 * HOUR_MS)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"by": "colour"}, "unknown group 'colour'"),
        ({"period": "year"}, "unknown period 'year'"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until must be"),
    ],
)
def test_a_bad_usage_request_is_a_422_problem(
    service: Service, params: dict[str, str], problem: str
) -> None:
    got = service.call("GET", "/usage", params=params)
    assert got.status_code == 422 and problem in got.text
    assert got.headers["content-type"] == "application/problem+json"


def test_a_jobs_runs_show_each_segment_and_its_charge(service: Service) -> None:
    made = world(service)
    (done,) = service.ok("GET", f"/jobs/{made['done']}/runs")["items"]
    assert done["segment"] == 1 and done["state"] == "ended" and done["outcome"] == "succeeded"
    assert done["award_id"] == made["award"] and done["allocation"] == EIGHT
    assert done["charged_gpu_ms"] == 8 * HOUR_MS and done["exit_codes"] == [0] * 8
    (running,) = service.ok("GET", f"/jobs/{made['running']}/runs")["items"]
    assert running["state"] == "running" and running["charged_gpu_ms"] is None
    waiting = service.job("acme/llm", gpus=1)["id"]
    assert service.ok("GET", f"/jobs/{waiting}/runs")["items"] == []


def write_log(service: Service, job: int, segment: int, rank: int, data: bytes) -> None:
    folder = wiring(service).settings.runs_dir / f"job-{job}-{segment}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank-{rank}.log").write_bytes(data)


def logs(service: Service, job: int, **params: Any) -> tuple[bytes, int, str]:
    got = service.call("GET", f"/jobs/{job}/logs", params=params)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/plain")
    return got.content, int(got.headers["x-log-offset"]), got.headers["x-run-state"]


def test_logs_are_read_from_an_offset_with_the_runs_state(service: Service) -> None:
    made = world(service)
    job = made["running"]
    assert logs(service, job) == (b"", 0, "running")  # nothing written yet
    write_log(service, job, 1, 0, b"step 1\nstep 2\n")
    assert logs(service, job) == (b"step 1\nstep 2\n", 14, "running")
    assert logs(service, job, offset=7) == (b"step 2\n", 14, "running")
    assert logs(service, job, offset=99) == (b"", 99, "running")
    write_log(service, made["done"], 1, 7, b"rank 7\n")
    assert logs(service, made["done"], rank=7, run=1) == (b"rank 7\n", 7, "ended")
    waiting = service.job("acme/llm", gpus=1)["id"]
    assert logs(service, waiting) == (b"", 0, "pending")
    service.ok("POST", f"/jobs/{waiting}/cancel")
    assert logs(service, waiting) == (b"", 0, "ended")


def test_a_log_answer_holds_at_most_one_mebibyte(service: Service) -> None:
    made = world(service)
    write_log(service, made["done"], 1, 0, b"x" * (MAX_PIECE + 10))
    first, offset, _ = logs(service, made["done"])
    assert len(first) == MAX_PIECE == offset
    assert logs(service, made["done"], offset=offset) == (b"x" * 10, MAX_PIECE + 10, "ended")


@pytest.mark.parametrize(
    ("params", "detail"),
    [({"rank": 8}, "no rank 8 of run 1 of job {job}"), ({"run": 2}, "no run 2 of job {job}")],
)
def test_logs_of_a_rank_or_run_that_does_not_exist_are_404(
    service: Service, params: dict[str, int], detail: str
) -> None:
    job = world(service)["done"]
    got = service.call("GET", f"/jobs/{job}/logs", params=params)
    assert got.status_code == 404 and got.json()["detail"] == detail.format(job=job)
