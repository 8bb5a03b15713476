"""`kizuna jobs export`: the finished jobs as a trace file `kizuna simulate` reads back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from test_cli_control_plane import Service, kizuna, newcomer_setup, runner, service, submit_json
from typer.testing import CliRunner

from kizuna.config import Settings
from kizuna.store.engine import make_engine, session_factory, writing
from kizuna.store.tables import Award, Job, Run
from kizuna.traces.canonical import read_csv, read_jsonl

__all__ = ["runner", "service"]  # the fixtures, shared with the control-plane tests


def finish(home: Path, job_id: int, seconds: float) -> None:
    """The job ran once for `seconds` and succeeded (as the live loop would leave it)."""
    engine = make_engine(Settings(home=home).database)
    with writing(session_factory(engine)) as session:
        job = session.get(Job, job_id)
        assert job is not None
        award = session.scalars(select(Award).where(Award.project_id == job.project_id)).one()
        start = job.submitted_at + timedelta(seconds=1)
        session.add(
            Run(
                job_id=job.id, segment=1, organization_id=job.organization_id,
                project_id=job.project_id, award_id=award.id, gpu_type=job.gpu_type,
                gpus=job.gpus, allocation={"parts": [["h100-0", list(range(job.gpus))]]},
                state="ended", hold_ms=0, admitted_at=start, started_at=start,
                ended_at=start + timedelta(seconds=seconds), outcome="succeeded",
            )
        )  # fmt: skip
        job.state, job.segments, job.ended_at = "succeeded", 1, datetime.now(UTC)
    engine.dispose()


def test_export_writes_a_trace_the_simulator_reads(
    runner: CliRunner, service: Service, tmp_path: Path
) -> None:
    newcomer_setup(runner, service)
    done = submit_json(runner, service, "--gpus", "4", "--time", "2h", "--output", "json")
    submit_json(runner, service, "--gpus", "2", "--output", "json")  # still pending: left out
    finish(service.home, done["id"], 90.0)

    out = tmp_path / "history.csv"
    said = kizuna(runner, service, "jobs", "export", "-o", str(out))
    assert said.stdout.strip() == f"Exported 1 jobs to {out}"
    (row,) = read_csv(out).records
    assert (row.id, row.project, row.gpus, row.duration, row.walltime) == (
        str(done["id"]), "acme/llm", 4, 90.0, 7200.0,
    )  # fmt: skip

    printed = kizuna(runner, service, "jobs", "export", "--format", "jsonl", "--org", "acme")
    (tmp_path / "h.jsonl").write_text(printed.stdout)
    assert read_jsonl(tmp_path / "h.jsonl").records == (row,)

    later = kizuna(runner, service, "jobs", "export", "--since", "2999-01-01", "--output", "json",
                   "-o", str(tmp_path / "none.csv"))  # fmt: skip
    assert json.loads(later.stdout)["jobs"] == 0
    kizuna(runner, service, "jobs", "export", "--project", "acme/nowhere", code=3)
    kizuna(runner, service, "jobs", "export", "--since", "yesterday", code=2)
