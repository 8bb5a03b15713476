"""The README's first command: `kizuna up --demo` starts the whole platform and shows a job
borrow, get preempted, resume from its checkpoint, finish, and be charged (issue 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kizuna.execution.local import free_port

KIZUNA = Path(sys.executable).with_name("kizuna")


def test_the_demo_runs_jobs_through_preemption_and_charges_them(tmp_path: Path) -> None:
    env = {**os.environ, "KIZUNA_HOME": str(tmp_path / "home")}
    port = str(free_port())
    done = subprocess.run(
        [str(KIZUNA), "up", "--demo", "--exit", "--port", port, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    jobs = {j["name"]: j for j in summary["jobs"]}
    assert {j["state"] for j in jobs.values()} == {"succeeded"}
    borrowed = jobs["llm-b"]
    kinds = [e["kind"] for e in borrowed["events"]]
    assert kinds.count("started") == 2 and "preempting" in kinds and "requeued" in kinds
    assert borrowed["segments"] == 2
    charged = {c["project"]: c for c in summary["charges"]}
    assert set(charged) == {"llm", "vision"}
    for line in charged.values():
        assert line["charged_gpu_ms"] > 0 and line["held_gpu_ms"] == 0
        assert line["available_gpu_ms"] == line["granted_gpu_ms"] - line["charged_gpu_ms"]
    # the CLI was left signed in to the platform it started
    assert "token" in (tmp_path / "home" / "config.toml").read_text()
