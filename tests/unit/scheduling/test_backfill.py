"""EASY backfill: the highest blocked job of a GPU type is promised a start (the shadow time);
later jobs start now only if they end by then or use GPUs the promise leaves unused."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kizuna.kernel.ids import GpuType, JobId
from kizuna.kernel.units import Instant
from kizuna.scheduling import (
    CycleResult,
    Job,
    ReasonCode,
    ShadowReservation,
    Snapshot,
    make_policy,
    run_cycle,
)
from kizuna.scheduling.testing import job, nodes, project, projects, running

BUSY_UNTIL = 1000.0


def cycle(
    head_gpus: int, later: Sequence[Job], backfill: bool = True, extra_nodes: int = 0
) -> CycleResult:
    """Two H100 nodes, node 0 busy until t=1000; `head` (submitted first) needs `head_gpus`."""
    cluster = nodes(2) + nodes(extra_nodes, gpu_type="A100")
    busy = running(job("busy", walltime=BUSY_UNTIL), 0.0, {"h100-0000": range(8)})
    pending = (job("head", gpus=head_gpus, submit=0), *later)
    snapshot = Snapshot(cluster, (busy,), pending)
    policy = make_policy("fifo", backfill=backfill, quotas=False, budgets=False)
    return run_cycle(snapshot, policy, Instant(0.0))


def outcome(result: CycleResult, job_id: str) -> str:
    """'backfilled', 'admitted' or the reason code of one job."""
    for a in result.admissions:
        if a.job == job_id:
            return "backfilled" if a.backfilled else "admitted"
    return result.reasons[JobId(job_id)].code.value


def test_the_head_job_gets_a_shadow_reservation() -> None:
    result = cycle(16, [])
    assert result.shadows == (ShadowReservation(JobId("head"), GpuType("H100"), Instant(1000.0)),)
    assert result.reasons[JobId("head")].earliest_start == BUSY_UNTIL


@pytest.mark.parametrize(
    ("walltime", "expected"),
    [
        pytest.param(500.0, "backfilled", id="ends-before-shadow"),
        pytest.param(1000.0, "backfilled", id="ends-at-shadow"),
        pytest.param(1001.0, "backfill", id="ends-after-shadow"),
    ],
)
def test_jobs_that_end_by_the_shadow_time_backfill(walltime: float, expected: str) -> None:
    result = cycle(16, [job("later", walltime=walltime, submit=1)])
    assert outcome(result, "later") == expected


@pytest.mark.parametrize(
    ("later", "expected"),
    [
        pytest.param([job("long", gpus=4, walltime=1e6, submit=1)], ["backfilled"], id="in-slack"),
        pytest.param([job("long", gpus=5, walltime=1e6, submit=1)], ["backfill"], id="over-slack"),
        pytest.param(
            [job("l1", gpus=4, walltime=1e6, submit=1), job("l2", gpus=4, walltime=1e6, submit=2)],
            ["backfilled", "backfill"],
            id="slack-used-up",
        ),
        pytest.param(
            [job("l1", gpus=4, walltime=1e6, submit=1), job("s", gpus=4, walltime=10.0, submit=2)],
            ["backfilled", "backfilled"],
            id="short-job-beside-slack-user",
        ),
    ],
)
def test_long_jobs_use_only_the_slack(later: list[Job], expected: list[str]) -> None:
    """`head` needs 12 GPUs at t=1000: all of node 0 and 4 of node 1; 4 of node 1 are slack."""
    result = cycle(12, later)
    assert [outcome(result, j.id) for j in later] == expected


def test_backfill_off_holds_every_later_job_of_the_type() -> None:
    later = [job("short", walltime=10.0, submit=1), job("tiny", gpus=1, walltime=1.0, submit=2)]
    result = cycle(16, later, backfill=False)
    assert [outcome(result, j.id) for j in later] == ["priority", "priority"]
    assert "behind job head, which holds the line for H100" in result.reasons[JobId("tiny")].message


def test_other_gpu_types_are_not_held_by_the_line() -> None:
    later = [job("a100", gpu_type="A100", walltime=1e6, submit=1)]
    result = cycle(16, later, backfill=False, extra_nodes=1)
    assert outcome(result, "a100") == "admitted"


def test_only_the_highest_blocked_job_is_promised_a_start() -> None:
    later = [job("second", gpus=16, submit=1)]
    result = cycle(16, later)
    assert [s.job for s in result.shadows] == ["head"]
    got = result.reasons[JobId("second")]
    assert got.code is ReasonCode.RESOURCES
    assert got.earliest_start is None


def test_jobs_ahead_of_the_head_are_not_backfilled() -> None:
    busy = running(job("busy", walltime=BUSY_UNTIL), 0.0, {"h100-0000": range(8)})
    pending = (job("first", submit=0), job("head", gpus=16, submit=1))
    snapshot = Snapshot(nodes(2), (busy,), pending)
    result = run_cycle(snapshot, make_policy("fifo", quotas=False), Instant(0.0))
    assert outcome(result, "first") == "admitted"
    assert outcome(result, "head") == "resources"


@pytest.mark.parametrize(
    ("backfill", "expected"),
    [
        pytest.param(True, "backfill", id="backfill-on"),
        pytest.param(False, "priority", id="backfill-off"),
    ],
)
def test_jobs_admitted_earlier_in_the_cycle_count_towards_the_shadow(
    backfill: bool, expected: str
) -> None:
    """`first` starts this cycle and ends at t=500, `busy` at t=1000: `head` (all 3 nodes) is
    promised t=1000, so `long` may not take the last free node for a week."""
    busy = running(job("busy", walltime=BUSY_UNTIL), 0.0, {"h100-0000": range(8)})
    pending = (
        job("first", walltime=500.0, submit=0),
        job("head", gpus=24, submit=1),
        job("long", walltime=7 * 86400.0, submit=2),
    )
    snapshot = Snapshot(nodes(3), (busy,), pending)
    policy = make_policy("fifo", backfill=backfill, quotas=False, budgets=False)
    result = run_cycle(snapshot, policy, Instant(0.0))
    assert outcome(result, "first") == "admitted"
    assert result.reasons[JobId("head")].earliest_start == BUSY_UNTIL
    assert outcome(result, "long") == expected


@pytest.mark.parametrize(
    ("who", "budget", "kept"),
    [
        pytest.param("p1", None, "the quota of project p1", id="own-project-quota"),
        pytest.param("p2", None, None, id="other-project-backfills"),
        pytest.param("p2", 16 * 1000.0 + 100.0, None, id="budget-of-others-untouched"),
    ],
)
def test_promise_keeps_the_heads_quota_for_it(
    who: str, budget: float | None, kept: str | None
) -> None:
    """The head's project may not start a short job with the quota the head needs (rule B2);
    another project's short job backfills as usual."""
    budgets = {"H100": budget} if budget is not None else None
    tenants = projects(
        project("p1", quotas={"H100": (16, 0)}, budgets=budgets),
        project("p2", quotas={"H100": (16, 0)}),
        project("p3", quotas={"H100": (8, 0)}),
    )
    busy = running(job("r", project="p3", walltime=1000.0), 0.0, {"h100-0000": range(8)})
    pending = (
        job("head", gpus=16, submit=0, walltime=1000.0),
        job("short", project=who, walltime=500.0, submit=1),
    )
    result = run_cycle(
        Snapshot(nodes(2), (busy,), pending, tenants), make_policy("fifo"), Instant(0.0)
    )
    if kept is None:
        assert result.admitted() == {"short"}
    else:
        got = result.reasons[JobId("short")]
        assert got.code is ReasonCode.BACKFILL
        assert f"{kept} is kept for job head" in got.message
