"""`GET /history/jobs` (services/history.py H1-H5): finished jobs as a canonical trace that
`kizuna simulate` reads back; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kizuna.api.testing import Service
from kizuna.store.engine import writing
from kizuna.store.tables import Job, Run
from kizuna.traces.canonical import read_csv, read_jsonl
from kizuna.traces.model import TraceRecord

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def finish(
    service: Service, job_id: int, state: str, runs: list[tuple[float, float | None]]
) -> None:
    """Gives job `job_id` the state `state` and runs admitted at a, ended at e (seconds from
    T0; a started time of None: the run never started)."""
    app: Any = service.client.app
    with writing(app.state.kizuna.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.state, job.submitted_at = state, at(0)
        for segment, (admitted, ended) in enumerate(runs, start=1):
            session.add(
                Run(
                    job_id=job.id,
                    segment=segment,
                    organization_id=job.organization_id,
                    project_id=job.project_id,
                    award_id=award_of(service, "acme/llm"),
                    gpu_type=job.gpu_type,
                    gpus=job.gpus,
                    allocation={"parts": [["h0", list(range(job.gpus))]]},
                    state="ended",
                    hold_ms=0,
                    admitted_at=at(admitted),
                    started_at=None if ended is None else at(admitted + 0.25),
                    ended_at=at(admitted if ended is None else ended),
                    outcome="succeeded",
                )
            )
        job.segments = len(runs)


def award_of(service: Service, project_id: str) -> str:
    found = service.ok("GET", "/awards", params={"project": project_id})["items"]
    return str(found[0]["id"])


@pytest.fixture
def history(service: Service) -> dict[str, int]:
    service.org("acme")
    service.project("acme", "llm")
    service.node("h0")
    service.award("acme/llm")
    command = {"command": ["python", "train.py"]}
    ids = {
        name: int(service.job("acme/llm", gpus, walltime=600, priority=priority, **command)["id"])
        for name, gpus, priority in (
            ("done", 2, "high"),
            ("preempted-then-done", 4, "normal"),
            ("cancelled-waiting", 1, "normal"),
            ("still-pending", 1, "normal"),
            ("timed-out", 8, "low"),
        )
    }
    finish(service, ids["done"], "succeeded", [(1.0, 11.5)])
    finish(service, ids["preempted-then-done"], "succeeded", [(2.0, 5.0), (20.0, 27.0)])
    finish(service, ids["cancelled-waiting"], "cancelled", [(3.0, None)])
    finish(service, ids["timed-out"], "timed-out", [(4.0, 604.0)])
    return ids


def export(service: Service, tmp_path: Path, fmt: str, **query: str) -> list[TraceRecord]:
    response = service.call("GET", "/history/jobs", params={"format": fmt, **query})
    assert response.status_code == 200, response.text
    path = tmp_path / f"history.{fmt}"
    path.write_bytes(response.content)
    trace = read_csv(path) if fmt == "csv" else read_jsonl(path)
    return list(trace.records)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_finished_jobs_that_ran_become_trace_rows(
    service: Service, history: dict[str, int], tmp_path: Path, fmt: str
) -> None:
    submit = T0.timestamp()
    assert export(service, tmp_path, fmt) == [
        TraceRecord(str(history["done"]), "acme/llm", submit, 2, 10.5, "H100", 600.0, "high"),
        # H3: every segment counts, from its admission to its end
        TraceRecord(
            str(history["preempted-then-done"]), "acme/llm", submit, 4, 10.0, "H100", 600.0
        ),
        TraceRecord(str(history["timed-out"]), "acme/llm", submit, 8, 600.0, "H100", 600.0, "low"),
    ]


def test_the_window_selects_by_submission(
    service: Service, history: dict[str, int], tmp_path: Path
) -> None:
    assert len(export(service, tmp_path, "csv", since=T0.isoformat())) == 3
    assert export(service, tmp_path, "csv", until=T0.isoformat()) == []
    assert export(service, tmp_path, "csv", since=at(1).isoformat()) == []
    wrong = {"format": "csv", "since": at(1).isoformat(), "until": T0.isoformat()}
    assert service.call("GET", "/history/jobs", params=wrong).status_code == 422


def test_filters_and_formats(service: Service, history: dict[str, int], tmp_path: Path) -> None:
    assert len(export(service, tmp_path, "jsonl", project="acme/llm", organization="acme")) == 3
    response = service.call("GET", "/history/jobs", params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    bad = service.call("GET", "/history/jobs", params={"format": "xlsx"})
    assert bad.status_code == 422
