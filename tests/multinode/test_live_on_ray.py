"""The whole service on a Ray cluster (issue 6, ADR 0025): nodes discovered from Ray; the
two-rank DDP example of the local executor's tests run across two Ray nodes, preempted in
the middle by a job within its nominal quota, resumed from its checkpoint to the weights of
an uninterrupted run and charged exactly as on the local executor; a worker node killed in
the middle of a job: the node goes down, the job is requeued, and completes once a new
node has joined."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from kizuna.api.testing import Service
from live import jobs
from live.jobs import runs_of, wait_for
from multinode.cluster import RayCluster

GLOO = ("env", "GLOO_SOCKET_IFNAME=eth0")
"""gloo finds a rank's own address from the host name, which on these namespaced nodes
resolves to nothing they can reach: name the interface instead, as on any cluster whose
host names do not resolve to the training network."""


def nodes(live: Service) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in live.ok("GET", "/nodes")["items"]}


def wait_nodes(live: Service, want: dict[str, str], timeout: float = 60) -> dict[str, Any]:
    """Until the store has these nodes in these states (the loop's inventory, every 2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        found = nodes(live)
        if all(found.get(n, {}).get("state") == s for n, s in want.items()):
            return found
        assert time.monotonic() < deadline, (want, found)
        time.sleep(0.2)


def ddp(live: Service, project: str, *extra: str) -> int:
    return jobs.ddp(live, project, "H100", *extra, prefix=GLOO)


def test_ddp_across_two_ray_nodes_is_preempted_resumes_and_is_charged_exactly(
    on_ray: Service,
) -> None:
    live = on_ray
    found = wait_nodes(live, {"n1": "up", "n2": "up"})
    assert {n: (v["gpus"], v["gpu_type"], v["rack"]) for n, v in found.items()} == {
        "n1": (1, "H100", "rack-a"),
        "n2": (1, "H100", "rack-b"),
    }
    jobs.world(live, "H100")
    home = live.client.app.state.kizuna.settings.home  # type: ignore[attr-defined]
    reference = ddp(live, "acme/urgent")
    assert wait_for(live, reference, {"succeeded", "failed"})["state"] == "succeeded"
    [(first_run, _)] = runs_of(live, reference)
    assert sorted(node for node, _ in first_run.allocation["parts"]) == ["n1", "n2"]

    job = ddp(live, "beta/train", "--step-seconds", "0.15", "--checkpoint-every", "5")
    folder = home / "checkpoints" / f"job-{job}"
    deadline = time.monotonic() + 90
    while not (folder / "checkpoint.pt").exists():
        assert time.monotonic() < deadline, live.ok("GET", f"/jobs/{job}")
        time.sleep(0.1)
    sleep = [sys.executable, "-c", "import time; time.sleep(2)"]
    urgent = live.job("acme/urgent", 2, command=sleep, gpu_type="H100", walltime=60)["id"]
    done = wait_for(live, job, {"succeeded", "failed", "cancelled", "timed-out"}, 180)
    assert done["state"] == "succeeded", done
    assert [e["kind"] for e in done["events"]] == [
        "submitted",
        "admitted",
        "started",
        "preempting",
        "requeued",
        "admitted",
        "started",
        "succeeded",
    ]
    assert wait_for(live, urgent, {"succeeded", "failed"})["state"] == "succeeded"

    result = json.loads((folder / "result.json").read_text())
    expected = json.loads((home / "checkpoints" / f"job-{reference}" / "result.json").read_text())
    assert result == expected  # the same weights as the uninterrupted run
    second_log = (home / "runs" / f"job-{job}-2" / "rank-0.log").read_text()
    assert "starting at step" in second_log and "starting at step 0" not in second_log

    runs = runs_of(live, job)
    assert [(r.segment, r.outcome) for r, _ in runs] == [(1, "preempted"), (2, "succeeded")]
    assert all(run.started_at is not None for run, _ in runs)
    jobs.charged_by_the_rule(live, done["project_id"], runs, 600)  # as the local executor


def test_a_killed_worker_node_requeues_its_job_which_completes_on_a_new_node(
    on_ray: Service, ray_cluster: RayCluster
) -> None:
    live = on_ray
    wait_nodes(live, {"n1": "up", "n2": "up"})
    jobs.world(live, "H100")
    work = "import time; print('up', flush=True); time.sleep(10)"
    command = [sys.executable, "-c", work]
    job = live.job("acme/urgent", 2, command=command, gpu_type="H100", walltime=120)["id"]
    wait_for(live, job, {"running"}, 60)
    deadline = time.monotonic() + 30
    for rank in (0, 1):  # streamed from the nodes while the job runs (`kizuna logs -f`)
        while (
            answer := live.call("GET", f"/jobs/{job}/logs", params={"rank": rank})
        ).text != "up\n":
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.2)
        assert answer.headers["X-Run-State"] == "running"
    ray_cluster.kill("n2")
    wait_nodes(live, {"n1": "up", "n2": "down"})
    waiting = wait_for(live, job, {"pending", "failed", "succeeded"}, 60)
    assert waiting["state"] == "pending", waiting
    assert "requeued" in [e["kind"] for e in waiting["events"]]
    first, record = runs_of(live, job)[0]
    assert first.outcome in ("node-down", "lost") and record is not None and record.gpu_ms > 0

    ray_cluster.add_worker("n3", 1, rack="rack-c")  # a node joins; the job runs again
    wait_nodes(live, {"n3": "up"})
    done = wait_for(live, job, {"succeeded", "failed"}, 120)
    assert done["state"] == "succeeded" and done["segments"] >= 2
    runs = runs_of(live, job)
    # between the kill and the node going down in Ray's table (a second or two), the job
    # may have been placed on n2 again: such a run is lost before it starts, and costs 0
    assert all(r.outcome in ("node-down", "lost") for r, _ in runs[:-1])
    assert sorted(n for n, _ in runs[-1][0].allocation["parts"]) == ["n1", "n3"]
    jobs.charged_by_the_rule(live, done["project_id"], runs, 120)  # as the local executor
