"""The control-plane verbs as a user or a script runs them, against the real service.

Each test starts the service (`create_app` under uvicorn, in a thread, on a free port of
127.0.0.1) on a SQLite database in its own KIZUNA_HOME, and drives `kizuna` with Typer's
CliRunner, as a shell would: KIZUNA_HOME, KIZUNA_URL and KIZUNA_TOKEN in the environment.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner, Result

from kizuna.api.app import create_app
from kizuna.audit import SigningKey
from kizuna.cli import choices
from kizuna.cli.client import Client, CliError
from kizuna.cli.jobs import walltime
from kizuna.cli.main import app
from kizuna.config import Settings
from kizuna.scheduling.model import PRIORITY_CLASSES

ADMIN = "admin@office.example"
UNSET = {"KIZUNA_PROJECT": None, "KIZUNA_GPU_TYPE": None, "KIZUNA_DATABASE_URL": None}


@dataclass
class Service:
    """A running service and how the CLI finds it."""

    home: Path
    url: str

    def env(self, token: str | None = None, **extra: str | None) -> dict[str, str | None]:
        return {
            **UNSET,
            "KIZUNA_HOME": str(self.home),
            "KIZUNA_URL": self.url,
            "KIZUNA_TOKEN": token,
            "COLUMNS": "200",
            **extra,
        }


@contextmanager
def serving(home: Path) -> Iterator[Service]:
    application = create_app(Settings(home=home), background=False)
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Service(home, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A service of its own, empty."""
    with serving(tmp_path / "kizuna") as running:
        yield running


@pytest.fixture(scope="module")
def seeded(runner: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service for the tests that only add to it, set up by `newcomer_setup`."""
    with serving(tmp_path_factory.mktemp("seeded") / "kizuna") as running:
        newcomer_setup(runner, running)
        yield running


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def kizuna(
    runner: CliRunner,
    service: Service,
    *args: str,
    code: int = 0,
    token: str | None = None,
    stdin: str | None = None,
    **env: str | None,
) -> Result:
    result = runner.invoke(app, list(args), env=service.env(token, **env), input=stdin)
    assert result.exit_code == code, (
        f"kizuna {' '.join(args)} -> {result.exit_code}, not {code}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"
    )
    return result


def as_json(runner: CliRunner, service: Service, *args: str, code: int = 0, **env: Any) -> Any:
    at = args.index("--") if "--" in args else len(args)  # a command's own options follow --
    result = kizuna(runner, service, *args[:at], "--output", "json", *args[at:], code=code, **env)
    return json.loads(result.stdout)


def day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


def newcomer_setup(runner: CliRunner, service: Service, gpus_per_node: int = 8) -> None:
    """A program admin (token saved to the config file), an organization, a project, two
    nodes and an award that starts tomorrow (so jobs wait for it)."""
    kizuna(runner, service, "admin", "bootstrap", "--email", ADMIN, "--name", "Ada")
    kizuna(runner, service, "org", "create", "acme", "--kind", "startup")
    kizuna(runner, service, "project", "create", "acme/llm", "--description", "pretraining")
    for n in range(2):
        kizuna(
            runner, service, "node", "add", f"h100-{n}", "--gpu-type", "H100", "--gpus",
            str(gpus_per_node), "--nvlink-domain", "nv0",
        )  # fmt: skip
    kizuna(
        runner, service, "award", "grant", "acme/llm", "--gpu-type", "H100",
        "--gpu-hours", "5000", "--nominal-gpus", "8", "--starts", day(1), "--ends", day(180),
    )  # fmt: skip


def submit_json(runner: CliRunner, service: Service, *options: str, code: int = 0) -> Any:
    return as_json(
        runner, service, "submit", "-A", "acme/llm", *options, "--", "python", "train.py",
        "--lr", "3e-4", code=code,
    )  # fmt: skip


# --- The newcomer's path ---------------------------------------------------------------


def test_the_newcomer_path_from_bootstrap_to_a_cancelled_job(
    runner: CliRunner, service: Service
) -> None:
    done = kizuna(runner, service, "admin", "bootstrap", "--email", ADMIN)
    assert "Token (shown once, store it now): kz_" in done.stdout
    config = (service.home / "config.toml").read_text()
    assert f'url = "{service.url}"' in config and 'token = "kz_' in config
    assert ADMIN in kizuna(runner, service, "whoami").stdout  # the saved token signs in

    assert (
        "Created organization acme"
        in kizuna(runner, service, "org", "create", "acme", "--kind", "startup").stdout
    )
    assert (
        "Created project acme/llm"
        in kizuna(runner, service, "project", "create", "acme/llm").stdout
    )
    added = kizuna(runner, service, "node", "add", "h100-0", "--gpu-type", "H100", "--gpus", "8")
    assert "Added node h100-0: 8 H100, up." in added.stdout
    granted = kizuna(
        runner, service, "award", "grant", "acme/llm", "--gpu-type", "H100", "--gpu-hours",
        "5000", "--nominal-gpus", "8", "--starts", day(1), "--ends", day(180),
    )  # fmt: skip
    assert "5,000 H100 GPU-hours" in granted.stdout

    submitted = kizuna(
        runner, service, "submit", "--project", "acme/llm", "--gpus", "8", "--time", "2h",
        "--", "python", "train.py",
    )  # fmt: skip
    assert submitted.stdout == "Submitted job 1\n"

    queue = kizuna(runner, service, "queue").stdout.splitlines()
    assert queue[0].split() == [
        "JOBID", "PROJECT", "NAME", "STATE", "GPUS", "GPU_TYPE", "TIME_LIMIT", "SUBMITTED",
        "REASON",
    ]  # fmt: skip
    row = queue[1].split()
    assert row[:7] == ["1", "acme/llm", "python", "PENDING", "8", "H100", "2:00:00"]
    assert row[-1].startswith("(") and row[-1].endswith(")")  # the reason code
    assert all(line == line.rstrip() for line in queue)

    why = kizuna(runner, service, "why", "1").stdout
    assert why.startswith("Job 1 is waiting: ")
    assert row[-1].strip("()") in why

    shown = kizuna(runner, service, "show", "1").stdout
    assert "State=PENDING" in shown and "Command=python train.py" in shown
    assert "submitted" in shown and "Timeline" in shown

    assert kizuna(runner, service, "cancel", "1").stdout == "Cancelled job 1\n"
    assert len(kizuna(runner, service, "queue").stdout.splitlines()) == 1  # header only
    ended = kizuna(runner, service, "queue", "--all").stdout.splitlines()
    assert ended[1].split()[3] == "CANCELLED"
    assert "CANCELLED" in kizuna(runner, service, "queue", "--state", "cancelled").stdout
    assert "is not waiting: it is cancelled" in kizuna(runner, service, "why", "1").stdout


# --- JSON for scripts ------------------------------------------------------------------


def test_every_verb_speaks_json(runner: CliRunner, service: Service) -> None:
    def run(*args: str, **env: Any) -> Any:
        return as_json(runner, service, *args, **env)

    first = run("admin", "bootstrap", "--email", ADMIN, "--no-save")
    token = first["token"]
    assert first["config_file"] is None and not (service.home / "config.toml").exists()

    def signed(*args: str) -> Any:
        return run(*args, token=token)

    assert run("admin", "migrate")["migrated"] is True
    assert run("login", "--token", token)["email"] == ADMIN
    me = signed("whoami")
    assert me["email"] == ADMIN and me["memberships"][0]["role"] == "program-admin"

    assert signed("org", "create", "acme", "--kind", "startup")["name"] == "acme"
    assert [o["name"] for o in signed("org", "list", "--kind", "startup")] == ["acme"]
    assert signed("org", "show", "acme")["kind"] == "startup"
    bob = signed("org", "member", "add", "acme", "bob@acme.example", "--name", "Bob")
    assert bob["role"] == "member"
    assert {m["email"] for m in signed("org", "member", "list", "acme")} == {"bob@acme.example"}
    assert signed("org", "member", "role", "acme", bob["person_id"], "org-admin")["role"] == (
        "org-admin"
    )
    assert signed("org", "member", "remove", "acme", bob["person_id"])["removed"] is True

    project = signed("project", "create", "acme/llm", "--description", "pretraining")
    assert [p["id"] for p in signed("project", "list", "--org", "acme")] == [project["id"]]
    assert signed("project", "show", "acme/llm")["id"] == project["id"]

    signed("node", "add", "h100-0", "--gpu-type", "H100", "--gpus", "8", "--rack", "r1")
    assert [n["name"] for n in signed("node", "list")] == ["h100-0"]
    assert signed("node", "show", "h100-0")["rack"] == "r1"
    assert signed("node", "drain", "h100-0")["state"] == "draining"
    assert signed("node", "down", "h100-0")["state"] == "down"
    assert signed("node", "resume", "h100-0")["state"] == "up"

    award = signed(
        "award", "grant", "acme/llm", "--gpu-type", "H100", "--gpu-hours", "5000",
        "--nominal-gpus", "8", "--borrowing-limit", "4", "--starts", "2026-01-01",
        "--ends", "2030-06-01T12:00",
    )  # fmt: skip
    assert award["starts_at"] == "2026-01-01T00:00:00Z"
    assert award["ends_at"] == "2030-06-01T12:00:00Z"
    assert [a["id"] for a in signed("award", "list", "--project", "acme/llm", "--active")] == [
        award["id"]
    ]
    assert signed("award", "show", award["id"])["borrowing_limit"] == 4
    assert signed("award", "update", award["id"], "--gpu-hours", "6000")["gpu_hours"] == 6000
    lifted = signed("award", "update", award["id"], "--unlimited-borrowing")
    assert (lifted["borrowing_limit"], lifted["gpu_hours"]) == (None, 6000)

    made = signed("token", "create", "--name", "ci", "--expires-in-days", "7")
    assert made["secret"].startswith("kz_")
    assert made["id"] in {t["id"] for t in signed("token", "list")}
    assert signed("token", "revoke", made["id"])["revoked_at"] is not None

    job = run(
        "submit", "-A", "acme/llm", "-G", "8", "--", "python", "train.py", token=token
    )  # the one awarded GPU type is the default
    assert job["gpu_type"] == "H100" and job["walltime"] == 3600
    assert [j["id"] for j in signed("queue")] == [job["id"]]
    assert signed("show", str(job["id"]))["events"][0]["kind"] == "submitted"
    assert signed("why", str(job["id"]))["job"] == job["id"]
    assert signed("cancel", str(job["id"])) == [
        {"job": job["id"], "cancelled": True, "state": "cancelled"}
    ]
    assert signed("audit", "checkpoint")["size"] > 0
    assert signed("audit", "verify")["ok"] is True


def test_signing_in_with_a_password_speaks_json(runner: CliRunner, seeded: Service) -> None:
    words = "correct horse battery"
    assert as_json(runner, seeded, "passwd", stdin=f"{words}\n{words}\n") == {"password_set": True}
    signed_in = as_json(runner, seeded, "login", "--email", ADMIN, stdin=f"{words}\n")
    assert signed_in["email"] == ADMIN


def test_server_runs_the_app_under_uvicorn(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr("kizuna.api.app.create_app", lambda settings: settings)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(kw, settings=app))
    database = f"sqlite:///{tmp_path}/x.db"
    env = {**UNSET, "KIZUNA_HOME": str(tmp_path)}
    args = ["server", "--port", "8611", "--database-url", database, "--output", "json"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["url"] == "http://127.0.0.1:8611"
    assert (served["host"], served["port"], served["log_level"]) == ("127.0.0.1", 8611, "info")
    assert served["settings"].database == database


# --- Exit codes scripts can trust -------------------------------------------------------


def test_exit_codes(runner: CliRunner, seeded: Service, tmp_path: Path) -> None:
    service = seeded
    not_found = as_json(runner, service, "show", "999", code=3)
    assert not_found["status"] == 404 and not_found["detail"] == "no job 999"
    error = kizuna(runner, service, "show", "999", code=3).stderr
    assert "Error: no job 999" in error
    kizuna(runner, service, "org", "show", "nobody", code=3)
    kizuna(runner, service, "submit", "-A", "acme/nothing", "--gpu-type", "H100", "--", "x", code=3)

    kizuna(runner, service, "queue", code=4, KIZUNA_HOME=str(tmp_path))  # no token saved
    signed_out = kizuna(runner, service, "queue", code=4, token="kz_not-a-token").stderr
    assert "kizuna login" in signed_out

    taken = kizuna(runner, service, "org", "create", "acme", "--kind", "startup", code=5)
    assert "taken" in taken.stderr
    kizuna(runner, service, "admin", "bootstrap", "--email", "again@x.example", code=5)
    job = submit_json(runner, service, "-G", "8")
    kizuna(runner, service, "cancel", str(job["id"]))
    kizuna(runner, service, "cancel", str(job["id"]), code=5)

    backwards = as_json(
        runner, service, "award", "grant", "acme/llm", "--gpu-type", "H100", "--gpu-hours",
        "10", "--nominal-gpus", "1", "--starts", day(30), "--ends", day(10), code=6,
    )  # fmt: skip
    assert backwards["status"] == 422 and "before it starts" in backwards["detail"]
    too_big = kizuna(runner, service, "submit", "-A", "acme/llm", "-G", "64", "--", "x", code=6)
    assert "only 16 H100" in too_big.stderr

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    gone = f"http://127.0.0.1:{closed}"
    unreachable = kizuna(runner, service, "queue", code=7, KIZUNA_URL=gone)
    assert "cannot reach the Kizuna service" in unreachable.stderr
    assert as_json(runner, service, "whoami", code=7, KIZUNA_URL=gone)["title"] == (
        "Cannot reach the service"
    )

    kizuna(runner, service, "submit", "-A", "acme/llm", "--time", "soon", "--", "x", code=2)
    kizuna(runner, service, "submit", "-A", "acme/llm", "--", code=2)
    kizuna(runner, service, "submit", "--", "python", code=2)  # no project
    kizuna(runner, service, "project", "create", "no-slash", code=2)
    kizuna(runner, service, "award", "update", "awd_x", code=2)
    (tmp_path / "config.toml").write_text("colour = 'red'\n")
    bad = kizuna(runner, service, "queue", code=2, KIZUNA_HOME=str(tmp_path))
    assert "unknown setting 'colour'" in bad.stderr


def test_cancel_goes_on_past_a_job_it_cannot_cancel(runner: CliRunner, seeded: Service) -> None:
    job = submit_json(runner, seeded, "-G", "8")
    result = kizuna(runner, seeded, "cancel", "999", str(job["id"]), code=3)
    assert f"Cancelled job {job['id']}" in result.stdout and "no job 999" in result.stderr


# --- Submitting like sbatch ------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "seconds"),
    [("1-00:00:00", 86_400), ("2h", 7200), ("3600", 3600), ("90m", 5400), ("1:30:00", 5400)],
)
def test_time_limits_are_read_like_slurm(limit: str, seconds: int) -> None:
    assert walltime(limit) == seconds


def test_submit_options(runner: CliRunner, seeded: Service) -> None:
    service = seeded
    ids = []
    for limit, seconds in (("1-00:00:00", 86_400), ("2h", 7200), ("3600", 3600)):
        job = submit_json(runner, service, "-G", "8", "--time", limit)
        assert job["walltime"] == seconds
        ids.append(job["id"])

    spread = submit_json(runner, service, "--nodes", "2", "--gpus-per-node", "8", "-J", "big")
    assert (spread["gpus"], spread["gpus_per_node"], spread["name"]) == (16, 8, "big")
    assert spread["command"] == ["python", "train.py", "--lr", "3e-4"]
    kizuna(runner, service, "submit", "-A", "acme/llm", "-N", "2", "--", "x", code=2)
    mismatch = ("-G", "8", "-N", "2", "--gpus-per-node", "8", "--", "x")
    kizuna(runner, service, "submit", "-A", "acme/llm", *mismatch, code=2)

    options = ("--priority", "high", "--one-domain", "--gpu-type", "H100")
    urgent = submit_json(runner, service, "-G", "4", *options)
    assert (urgent["priority"], urgent["one_domain"], urgent["gpus"]) == ("high", True, 4)

    from_env = kizuna(
        runner, service, "submit", "-G", "1", "--", "python", "x.py",
        KIZUNA_PROJECT="acme/llm",
    )  # fmt: skip
    assert from_env.stdout.startswith("Submitted job ")
    ids += [spread["id"], urgent["id"], int(from_env.stdout.split()[-1])]

    queue = as_json(runner, service, "queue", "--project", "acme/llm", "--state", "pending")
    assert set(ids) <= {j["id"] for j in queue} and {j["state"] for j in queue} == {"pending"}


# --- The audit log ---------------------------------------------------------------------


def test_audit_verify_passes_on_a_fresh_log_and_fails_after_tampering(
    runner: CliRunner, service: Service, tmp_path: Path
) -> None:
    newcomer_setup(runner, service)
    kizuna(runner, service, "audit", "checkpoint")
    saved = tmp_path / "checkpoint.note"
    verified = kizuna(runner, service, "audit", "verify", "--save-checkpoint", str(saved))
    assert verified.stdout.startswith("Verified: the audit log's")
    assert "kizuna.local/audit" in saved.read_text()

    kizuna(runner, service, "node", "drain", "h100-1")
    kizuna(runner, service, "audit", "checkpoint")
    grown = as_json(runner, service, "audit", "verify", "--checkpoint", str(saved))
    assert grown["ok"] and grown["extends_saved_checkpoint"] is True
    assert grown["unsealed"] == 0 and grown["size"] == grown["records"]
    one = as_json(runner, service, "audit", "verify", "--record", "1")
    assert one["ok"] and one["entry"]["seq"] == 1

    key = as_json(runner, service, "audit", "verify")["key"]
    assert as_json(runner, service, "audit", "verify", "--key", key)["key_source"] == "pinned"
    stranger = SigningKey.generate("kizuna.local/audit").public.to_text()
    forged = as_json(runner, service, "audit", "verify", "--key", stranger, code=1)
    assert {p["kind"] for p in forged["problems"]} == {"checkpoint-signature"}

    with sqlite3.connect(service.home / "kizuna.db") as db:
        db.execute("UPDATE audit_entries SET actor = 'system' WHERE leaf_index = 1")

    failed = kizuna(runner, service, "audit", "verify", "--checkpoint", str(saved), code=1)
    assert "Audit verification FAILED" in failed.stdout
    assert "root-mismatch" in failed.stdout and "leaf-hash" in failed.stdout
    assert "does not verify" in failed.stderr
    report = as_json(runner, service, "audit", "verify", code=1)
    assert report["ok"] is False
    assert {"leaf-hash", "root-mismatch"} <= {p["kind"] for p in report["problems"]}
    assert as_json(runner, service, "audit", "verify", "--record", "1", code=1)["problems"]
    assert as_json(runner, service, "audit", "verify", "--record", "2")["ok"]

    with sqlite3.connect(service.home / "kizuna.db") as db:  # a record no longer well formed
        db.execute("UPDATE audit_entries SET actor = 'x' WHERE leaf_index = 1")
    malformed = kizuna(runner, service, "audit", "verify", code=1)
    assert "record-format" in malformed.stdout


# --- Tokens and signing in -------------------------------------------------------------


def test_a_revoked_token_signs_nobody_in(runner: CliRunner, seeded: Service) -> None:
    service = seeded
    made = kizuna(runner, service, "token", "create", "--name", "laptop").stdout
    assert "Secret (shown once, store it now): kz_" in made
    secret = made.rsplit(": ", 1)[1].strip()
    token_id = made.split()[2]
    assert ADMIN in kizuna(runner, service, "whoami", token=secret).stdout
    listed = kizuna(runner, service, "token", "list").stdout
    assert token_id in listed and "active" in listed
    kizuna(runner, service, "token", "revoke", token_id)
    assert "revoked" in kizuna(runner, service, "token", "list").stdout
    kizuna(runner, service, "whoami", token=secret, code=4)
    kizuna(runner, service, "login", "--token", secret, code=4)


def test_login_saves_the_url_and_token(runner: CliRunner, seeded: Service, tmp_path: Path) -> None:
    secret = as_json(runner, seeded, "token", "create")["secret"]
    laptop: dict[str, Any] = {"KIZUNA_HOME": str(tmp_path), "KIZUNA_URL": None}
    signed_in = kizuna(
        runner, seeded, "login", "--token", secret, "--url", seeded.url + "/", **laptop
    )
    assert f"Signed in to {seeded.url} as {ADMIN}" in signed_in.stdout
    assert f'url = "{seeded.url}"' in (tmp_path / "config.toml").read_text()
    assert "acme/llm" in kizuna(runner, seeded, "project", "list", **laptop).stdout
    kizuna(runner, seeded, "login", code=2)
    kizuna(runner, seeded, "login", "--token", "a", "--email", "b@c.d", code=2)
    wrong = kizuna(runner, seeded, "login", "--email", ADMIN, stdin="nope\n", code=4, **laptop)
    assert "Error:" in wrong.stderr


def test_people_read_tables(runner: CliRunner, seeded: Service) -> None:
    service = seeded
    nodes = kizuna(runner, service, "node", "list").stdout.splitlines()
    assert nodes[1].split() == ["H100", "up", "2", "16", "h100-[0-1]"]
    per_node = kizuna(runner, service, "node", "list", "-N").stdout
    assert "nv0" in per_node and "h100-1" in per_node
    assert "NodeName=h100-0" in kizuna(runner, service, "node", "show", "h100-0").stdout
    assert "acme/llm" in kizuna(runner, service, "award", "list").stdout
    shown = kizuna(runner, service, "project", "show", "acme/llm").stdout
    assert "Project=acme/llm" in shown and "5,000" in shown
    assert "startup" in kizuna(runner, service, "org", "list").stdout
    kizuna(runner, service, "org", "member", "add", "acme", "bob@acme.example")
    assert "bob@acme.example" in kizuna(runner, service, "org", "member", "list", "acme").stdout
    me = kizuna(runner, service, "whoami").stdout
    assert "program-office" in me and "program-admin" in me


# --- The client's promises -------------------------------------------------------------


def test_a_write_is_retried_once_with_the_same_idempotency_key() -> None:
    keys: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) == 1:
            raise httpx.ConnectError("connection reset", request=request)
        return httpx.Response(201, json={"id": 7})

    with Client("http://kizuna.test", "t", transport=httpx.MockTransport(answer)) as client:
        assert client.post("/jobs", {"x": 1}) == {"id": 7}
        assert len(keys) == 2 and keys[0] == keys[1]
        client.post("/jobs", {"x": 1})
        assert keys[2] != keys[0]  # a new request, a new key


def test_a_second_connection_error_is_exit_code_7() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    transport = httpx.MockTransport(answer)
    with (
        Client("http://kizuna.test", transport=transport) as client,
        pytest.raises(CliError) as caught,
    ):
        client.post("/jobs", {})
    assert caught.value.exit_code == 7


def test_lists_are_followed_to_the_last_page() -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        seen.append(cursor)
        if cursor is None:
            return httpx.Response(200, json={"items": [1, 2], "next_cursor": "c2"})
        return httpx.Response(200, json={"items": [3], "next_cursor": None})

    with Client("http://kizuna.test/api/v1", transport=httpx.MockTransport(answer)) as client:
        assert list(client.pages("/jobs", {"state": ["pending", "running"]})) == [1, 2, 3]
    assert seen == [None, "c2"]


def test_the_cli_priorities_are_the_scheduling_cores() -> None:
    assert [p.value for p in choices.Priority] == list(PRIORITY_CLASSES)


def test_the_cli_starts_without_the_database_or_web_layers() -> None:
    code = (
        "import sys, kizuna.cli.main; print(sorted({'sqlalchemy', 'fastapi'} & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
