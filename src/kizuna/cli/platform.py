"""`kizuna up`: the whole platform on embedded defaults, and with `--demo` a small program
that shows it working (the README's first command).

The service (API, scheduling loop, local executor) runs in this process on SQLite in
$KIZUNA_HOME. `--demo` then seeds, through the API as a program admin would: two startups,
each with a project and an award of virtual GPUs on one local node of 4 GPU slots; the
example training job (examples/ddp_train.py, two DDP ranks on the CPU) twice for one
startup, so that it borrows the other's idle quota; and, once that job has checkpointed, a
job of the other startup within its own quota, which reclaims its GPUs. A live table shows
the jobs queue, run, get preempted, resume and finish; then the balances show what each
award was charged. The platform keeps serving afterwards (`--exit` stops it).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from kizuna.cli.output import OutputFormat
from kizuna.cli.present import emit, note, say
from kizuna.config import Settings, save_client

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "ddp_train.py"
FINAL = {"succeeded", "failed", "cancelled", "timed-out"}
GPU_TYPE = "virtual"
FALLBACK_JOB = (
    "import os, signal, sys, time, pathlib\n"
    "d = pathlib.Path(os.environ['KIZUNA_CHECKPOINT_DIR']); f = d / 'step'\n"
    "step = int(f.read_text()) if f.exists() else 0\n"
    "signal.signal(signal.SIGTERM, lambda *_: (f.write_text(str(step)), sys.exit(143)))\n"
    "while step < 60:\n"
    "    time.sleep(0.1); step += 1\n"
    "    if step % 5 == 0: f.write_text(str(step))\n"
    "print('done', step)\n"
)


def up(
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Seed and run the demo.")] = True,
    port: Annotated[
        int | None, typer.Option(min=1, max=65_535, help="Port (default 8600).")
    ] = None,
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Stop once the demo's jobs have finished.")
    ] = False,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table or json.")
    ] = OutputFormat.TABLE,
) -> None:
    """Start the whole platform here: service, scheduling loop, local executor (and the demo)."""
    import httpx  # noqa: PLC0415 (web and database layers load only for this verb)
    import uvicorn  # noqa: PLC0415

    from kizuna.api.app import create_app  # noqa: PLC0415

    settings = Settings.load()
    if port is not None:
        settings = replace(settings, port=port)
    settings = replace(settings, url="")
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = settings.service_url
    _wait_up(httpx, url)
    if output is OutputFormat.TABLE:
        note(f"Kizuna serving {url}/api/v1 (docs: {url}/api/v1/docs), home {settings.home}")
    summary: dict[str, Any] = {"url": f"{url}/api/v1", "home": str(settings.home)}
    if demo:
        with httpx.Client(base_url=f"{url}/api/v1", timeout=30) as client:
            summary.update(_demo(client, app.state.kizuna.sessions, settings, output))
    if output is OutputFormat.JSON:
        emit(summary)
    if exit_after:
        server.should_exit = True
        thread.join(timeout=30)
        return
    if output is OutputFormat.TABLE:
        say(
            f"The platform keeps running: in another terminal, `KIZUNA_HOME={settings.home} "
            "kizuna queue`, `kizuna balance`, `kizuna show 2`. Ctrl-C stops it."
        )
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(timeout=30)


def _wait_up(httpx: Any, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the service did not start at {url}")


def _demo(client: Any, sessions: Any, settings: Settings, output: OutputFormat) -> dict[str, Any]:
    from kizuna.services.bootstrap import bootstrap  # noqa: PLC0415
    from kizuna.store.engine import writing  # noqa: PLC0415

    with writing(sessions) as session:
        _, token = bootstrap(
            session, "ada@office.example", "Ada", "program-office", datetime.now(UTC)
        )
    save_client(settings, settings.service_url, token)
    client.headers["Authorization"] = f"Bearer {token}"

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = client.post(path, json=body)
        if answer.status_code >= 300:
            raise SystemExit(f"demo: POST {path} failed: {answer.text}")
        found: dict[str, Any] = answer.json()
        return found

    window = {"starts_at": "2026-01-01T00:00:00Z", "ends_at": "2036-01-01T00:00:00Z"}
    post("/nodes", {"name": "local-0", "gpu_type": GPU_TYPE, "gpus": 4})
    for org, project in (("aurora", "llm"), ("basalt", "vision")):
        post("/organizations", {"name": org, "kind": "startup"})
        post("/projects", {"organization": org, "name": project})
        award = {"project": f"{org}/{project}", "gpu_type": GPU_TYPE, "gpu_hours": 2}
        post("/awards", {**award, "nominal_gpus": 2, **window})
    train = _training_command()
    job = {"gpus": 2, "gpu_type": GPU_TYPE, "walltime": 600, "grace": 20}
    first = post("/jobs", {**job, "project": "aurora/llm", "command": train, "name": "llm-a"})
    second = post("/jobs", {**job, "project": "aurora/llm", "command": train, "name": "llm-b"})
    _wait_checkpoint(client, settings, second["id"])
    probe = [sys.executable, "-c", "import time; time.sleep(3); print('vision eval done')"]
    third = post(
        "/jobs",
        {**job, "walltime": 60, "project": "basalt/vision", "command": probe, "name": "eval"},
    )
    ids = [first["id"], second["id"], third["id"]]
    jobs = _watch(client, ids, output)
    charges = _charges(sessions)
    if output is OutputFormat.TABLE:
        _print_end(jobs, charges)
    return {"jobs": jobs, "charges": charges}


def _charges(sessions: Any) -> list[dict[str, Any]]:
    """Each award's grant and what the ledger charged it, from the usage records."""
    from sqlalchemy import select  # noqa: PLC0415

    from kizuna.services.ledger import balances_of  # noqa: PLC0415
    from kizuna.store.engine import reading  # noqa: PLC0415
    from kizuna.store.tables import Award, Project  # noqa: PLC0415

    with reading(sessions) as session:
        awards = list(session.scalars(select(Award).order_by(Award.id)))
        names = {p.id: p.name for p in session.scalars(select(Project))}
        found = balances_of(session, awards)
    return [
        {
            "award": a.id,
            "project": names[a.project_id],
            "granted_gpu_ms": found[a.id].granted_ms,
            "charged_gpu_ms": found[a.id].charged_ms,
            "held_gpu_ms": found[a.id].held_ms,
            "available_gpu_ms": found[a.id].available_ms,
        }
        for a in awards
    ]


def _training_command() -> list[str]:
    try:
        import torch  # noqa: F401, PLC0415
    except ImportError:
        return [sys.executable, "-c", FALLBACK_JOB]
    if not EXAMPLE.exists():
        return [sys.executable, "-c", FALLBACK_JOB]
    return [
        sys.executable,
        str(EXAMPLE),
        "--steps",
        "60",
        "--step-seconds",
        "0.1",
        "--checkpoint-every",
        "5",
    ]


def _wait_checkpoint(client: Any, settings: Settings, job: int) -> None:
    folder = settings.home / "checkpoints" / f"job-{job}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(folder.glob("*")):
            return
        if client.get(f"/jobs/{job}").json()["state"] in FINAL:
            return
        time.sleep(0.2)


def _watch(client: Any, ids: list[int], output: OutputFormat) -> list[dict[str, Any]]:
    from rich.live import Live  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    def table(found: list[dict[str, Any]]) -> Table:
        t = Table(title="Demo jobs (live)")
        for column in ("job", "name", "project", "state", "runs", "why / last event"):
            t.add_column(column)
        for j in found:
            last = j["events"][-1]["message"] if j["events"] else ""
            why = j["reason"]["message"] if j.get("reason") else last
            t.add_row(
                str(j["id"]),
                j["name"],
                j["project_id"][-6:],
                j["state"],
                str(j["segments"]),
                why[:70],
            )
        return t

    deadline = time.monotonic() + 600
    found = [client.get(f"/jobs/{i}").json() for i in ids]
    if output is OutputFormat.TABLE:
        with Live(table(found), refresh_per_second=4, transient=False) as live:
            while not all(j["state"] in FINAL for j in found) and time.monotonic() < deadline:
                time.sleep(0.25)
                found = [client.get(f"/jobs/{i}").json() for i in ids]
                live.update(table(found))
    else:
        while not all(j["state"] in FINAL for j in found) and time.monotonic() < deadline:
            time.sleep(0.25)
            found = [client.get(f"/jobs/{i}").json() for i in ids]
    return found


def _print_end(jobs: list[dict[str, Any]], charges: list[dict[str, Any]]) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    console = Console()
    console.print()
    for job in jobs:
        if job["segments"] > 1:
            console.print(f"[bold]Job {job['id']} ({job['name']}): preempted and resumed[/bold]")
            for event in job["events"]:
                console.print(f"  {event['at'][11:23]}  {event['kind']:<11} {event['message']}")
    table = Table(title="What each award was charged (GPU-seconds, from the usage records)")
    for column in ("project", "granted", "charged", "available"):
        table.add_column(column, justify="right" if column != "project" else "left")
    for line in charges:
        table.add_row(
            line["project"],
            f"{line['granted_gpu_ms'] / 1000:,.0f}",
            f"{line['charged_gpu_ms'] / 1000:,.3f}",
            f"{line['available_gpu_ms'] / 1000:,.3f}",
        )
    console.print(table)
