"""The Ray backend on a real three-node Ray cluster (ADR 0025): each rank runs on the node
the scheduling core chose, with torchrun's environment and MASTER_ADDR on rank 0's node;
submitting a key twice starts one gang (B1); logs come back from the nodes (B4); cancel
sends the checkpoint signal (B3); one failed rank fails the gang (B5); a gang placed on a
node Ray does not have is lost at once, never started, not left waiting (B6); the inventory
reads Ray's nodes and their labels (B8)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kizuna.execution.backend import Launch, Rank, RunState, RunStatus
from multinode.cluster import RayCluster

SHOW = (
    "import os, subprocess\n"
    "me = subprocess.run(['ip', '-4', '-o', 'addr', 'show', 'eth0'], capture_output=True,"
    " text=True).stdout.split()[3].split('/')[0]\n"
    "print(*(os.environ[k] for k in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR',"
    " 'CUDA_VISIBLE_DEVICES')), me)\n"
)


def wait(executor: object, key: str, timeout: float = 60) -> RunStatus:
    deadline = time.monotonic() + timeout
    while (found := executor.status(key)).state is RunState.RUNNING:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    return found


def test_ranks_run_where_the_core_placed_them_with_torchrun_env(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    from kizuna.execution.ray_backend import RayExecutor  # noqa: PLC0415

    executor = RayExecutor(ray_cluster.address, tmp_path / "runs")
    facts = [(f.name, f.gpus, f.gpu_type, f.rack, f.alive) for f in executor.nodes()]
    assert facts == [("n1", 1, "H100", "rack-a", True), ("n2", 1, "H100", "rack-b", True)]

    ranks = (Rank("n2", (0,)), Rank("n1", (0,)))  # rank 0 on n2: the master is there
    launch = Launch("show-1", (sys.executable, "-c", SHOW), ranks, tmp_path / "ckpt")
    executor.submit(launch)
    executor.submit(launch)  # B1: the same key, no second gang
    ended = wait(executor, "show-1")
    assert (ended.state, ended.exit_codes) == (RunState.SUCCEEDED, (0, 0))
    assert ended.started_at is not None and ended.ended_at is not None
    n1, n2 = ray_cluster.nodes["n1"].address, ray_cluster.nodes["n2"].address
    lines = [executor.logs("show-1", r).read_text().splitlines() for r in (0, 1)]
    assert lines == [[f"0 0 2 {n2} 0 {n2}"], [f"1 0 2 {n2} 0 {n1}"]]
    assert executor.status("show-1") == ended  # answered from disk once the gang is gone


def test_cancel_signals_every_rank_and_a_failed_rank_fails_the_gang(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    from kizuna.execution.ray_backend import RayExecutor  # noqa: PLC0415

    executor = RayExecutor(ray_cluster.address, tmp_path / "runs")
    ranks = (Rank("n1", (0,)), Rank("n2", (0,)))
    sleep = "import time; print('up', flush=True); time.sleep(60)"
    executor.submit(Launch("stop-1", (sys.executable, "-c", sleep), ranks, tmp_path / "c"))
    deadline = time.monotonic() + 60
    while not all("up" in executor.logs("stop-1", r).read_text() for r in (0, 1)):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    executor.cancel("stop-1", grace=10, signal="TERM")
    stopped = wait(executor, "stop-1")
    assert (stopped.state, stopped.exit_codes) == (RunState.STOPPED, (-15, -15))

    bad = "import os, sys, time; sys.exit(3) if os.environ['RANK'] == '1' else time.sleep(60)"
    executor.submit(Launch("bad-1", (sys.executable, "-c", bad), ranks, tmp_path / "c"))
    failed = wait(executor, "bad-1")
    assert (failed.state, failed.exit_codes) == (RunState.FAILED, (-15, 3))


def test_a_gang_for_a_node_ray_does_not_have_is_lost(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    from kizuna.execution.ray_backend import RayExecutor  # noqa: PLC0415

    executor = RayExecutor(ray_cluster.address, tmp_path / "runs", placement_timeout=2.0)
    launch = Launch("nowhere-1", ("true",), (Rank("n9", (0,)),), tmp_path / "c")
    lost = executor.submit(launch)
    assert (lost.state, lost.started_at) == (RunState.LOST, None)  # nothing ran: nothing to pay
    assert executor.status("nowhere-1") == lost
