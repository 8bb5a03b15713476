"""Every ReasonCode from a minimal scenario: users read these codes and sentences to learn why
their job waits, so each test checks the code and the facts the sentence must carry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from kizuna.kernel.ids import JobId, NodeId, ProjectId, ReservationId
from kizuna.kernel.units import Instant
from kizuna.scheduling import (
    CycleResult,
    Job,
    Node,
    Project,
    Reason,
    ReasonCode,
    Reservation,
    RunningJob,
    Snapshot,
    make_policy,
    run_cycle,
)
from kizuna.scheduling.model import NodeState
from kizuna.scheduling.testing import job, nodes, project, projects, running

H100 = "h100-{:04d}"


def node(n: int) -> str:
    return H100.format(n)


def cycle(
    cluster: Sequence[Node],
    pending: Sequence[Job],
    active: Sequence[RunningJob] = (),
    tenants: Mapping[ProjectId, Project] | None = None,
    reservations: Sequence[Reservation] = (),
    now: float = 0.0,
    backfill: bool = True,
    quotas: bool = False,
) -> CycleResult:
    """One cycle with FIFO order; checks that every pending job is admitted or given a reason."""
    snapshot = Snapshot(
        tuple(cluster), tuple(active), tuple(pending), tenants or {}, tuple(reservations)
    )
    policy = make_policy("fifo", backfill=backfill, quotas=quotas)
    result = run_cycle(snapshot, policy, Instant(now))
    assert result.admitted() | set(result.reasons) == {j.id for j in pending}
    assert not result.admitted() & set(result.reasons)
    return result


def reason(result: CycleResult, job_id: str) -> Reason:
    return result.reasons[JobId(job_id)]


def full(j: Job, n: int, start: float = 0.0, stopping_at: float | None = None) -> RunningJob:
    """`j` running on all 8 GPUs of node `n`."""
    return running(j, start, {node(n): range(8)}, stopping_at)


# -- INVALID ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pending", "facts"),
    [
        pytest.param(job("j", gpus=0), ["at least one GPU", "asked for 0"], id="zero-gpus"),
        pytest.param(
            job("j", gpu_type="B200"), ["unknown GPU type 'B200'", "has: H100"], id="unknown-type"
        ),
        pytest.param(
            job("j", gpus=24), ["requests 24 H100", "only 16 H100"], id="more-than-cluster"
        ),
        pytest.param(
            job("j", gpus=16, per_node=16),
            ["16 H100 per node", "largest H100 node has 8"],
            id="per-node-larger-than-any-node",
        ),
        pytest.param(
            job("j", gpus=16, one_domain=True),
            ["16 H100 in one NVLink domain", "largest has 8"],
            id="one-domain-larger-than-any-domain",
        ),
    ],
)
def test_invalid_job_is_refused_with_what_is_wrong(pending: Job, facts: list[str]) -> None:
    result = cycle(nodes(2, per_domain=1), [pending])
    got = reason(result, "j")
    assert got.code is ReasonCode.INVALID
    for fact in facts:
        assert fact in got.message
    assert got.earliest_start is None


def test_invalid_job_does_not_hold_the_line_for_later_jobs() -> None:
    result = cycle(nodes(1), [job("bad", gpus=0), job("ok", submit=1)], backfill=False)
    assert result.admitted() == {"ok"}


# -- CAPACITY ---------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [NodeState.DOWN, NodeState.DRAINING], ids=str)
def test_capacity_when_nodes_out_of_service_leave_too_few(state: NodeState) -> None:
    cluster = nodes(2) + nodes(2, prefix="spare", state=state)
    result = cycle(cluster, [job("j", gpus=24)])
    got = reason(result, "j")
    assert got.code is ReasonCode.CAPACITY
    assert "requests 24 H100" in got.message
    assert "only 16 H100" in got.message
    assert "down or draining" in got.message


def test_jobs_on_draining_nodes_free_nothing_for_the_queue() -> None:
    """GPUs a job releases on a draining node are not counted towards anyone's start."""
    cluster = nodes(1) + nodes(1, prefix="drain", state=NodeState.DRAINING)
    old = running(job("old", gpus=8), 0.0, {"drain-0000": range(8)})
    busy = full(job("busy"), 0)
    result = cycle(cluster, [job("j", gpus=16)], [old, busy])
    assert reason(result, "j").code is ReasonCode.CAPACITY


# -- NO_QUOTA, QUOTA, COHORT ------------------------------------------------------------------


def test_no_quota_for_the_gpu_type() -> None:
    tenants = projects(project("p1", quotas={"A100": (8, 0)}))
    result = cycle(nodes(1), [job("j")], tenants=tenants, quotas=True)
    got = reason(result, "j")
    assert got.code is ReasonCode.NO_QUOTA
    assert got.message == "project p1 has no H100 quota"


def test_quota_in_use_says_limit_held_and_needed() -> None:
    tenants = projects(project("p1", quotas={"H100": (8, 0)}))
    result = cycle(nodes(2), [job("j")], [full(job("r"), 0)], tenants, quotas=True)
    got = reason(result, "j")
    assert got.code is ReasonCode.QUOTA
    assert "quota of 8 H100 (nominal)" in got.message
    assert "8 held, job needs 8" in got.message


def test_cohort_without_idle_quota_to_lend() -> None:
    tenants = projects(
        project("p1", quotas={"H100": (8, None)}, cohort="c"),
        project("p2", quotas={"H100": (8, None)}, cohort="c"),
    )
    result = cycle(
        nodes(4), [job("j", gpus=16)], [full(job("r", project="p2"), 0)], tenants, quotas=True
    )
    got = reason(result, "j")
    assert got.code is ReasonCode.COHORT
    assert "needs 16 H100 from cohort c" in got.message
    assert "8 of the cohort's 16 are idle" in got.message


def test_cohort_message_counts_only_the_borrowed_gpus() -> None:
    """A 16-GPU job with a nominal quota of 8 borrows 8, not 16: the sentence must say so."""
    tenants = projects(
        project("p1", quotas={"H100": (8, None)}, cohort="c"),
        project("p2", quotas={"H100": (8, None)}, cohort="c"),
    )
    result = cycle(
        nodes(4), [job("j", gpus=16)], [full(job("r", project="p2"), 0)], tenants, quotas=True
    )
    assert "8 of them beyond its nominal quota" in reason(result, "j").message


# -- BUDGET -----------------------------------------------------------------------------------


def test_budget_too_small_for_walltime_times_gpus() -> None:
    tenants = projects(project("p1", budgets={"H100": 8 * 3600.0}))
    result = cycle(nodes(2), [job("j", gpus=16, walltime=3600.0)], tenants=tenants)
    got = reason(result, "j")
    assert got.code is ReasonCode.BUDGET
    assert "needs 16.0 H100 GPU-hours" in got.message
    assert "8.0 left" in got.message
    assert "after 0.0 held by running jobs" in got.message


# -- RESOURCES --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ends", "gpus", "start"),
    [
        pytest.param((5000.0, 2000.0, 9000.0), 16, 5000.0, id="second-release-frees-enough"),
        pytest.param((5000.0, 2000.0, 9000.0), 8, 2000.0, id="first-release-frees-enough"),
        pytest.param((5000.0, 2000.0, 9000.0), 24, 9000.0, id="needs-every-node"),
    ],
)
def test_resources_gives_the_head_job_the_walltime_end_that_frees_enough(
    ends: tuple[float, ...], gpus: int, start: float
) -> None:
    active = [full(job(f"r{n}", walltime=end), n) for n, end in enumerate(ends)]
    result = cycle(nodes(3), [job("head", gpus=gpus)], active)
    got = reason(result, "head")
    assert got.code is ReasonCode.RESOURCES
    assert got.earliest_start == start
    assert f"needs {gpus} H100, 0 free" in got.message
    assert "earliest start" in got.message


def test_resources_message_gives_clock_time_and_delay() -> None:
    active = [full(job("r", walltime=5000.0), 0)]
    result = cycle(nodes(1), [job("head")], active)
    assert "earliest start ~01:23 UTC (in 1h 23m)" in reason(result, "head").message


def test_resources_for_a_later_job_names_the_job_ahead() -> None:
    active = [full(job("r", walltime=5000.0), 0)]
    result = cycle(
        nodes(1), [job("a", walltime=9000.0), job("b", walltime=9000.0, submit=1)], active
    )
    got = reason(result, "b")
    assert got.code is ReasonCode.RESOURCES
    assert "waits behind higher-priority H100 jobs: job a is promised the next start" in got.message


# -- RECLAIMING -------------------------------------------------------------------------------


def test_reclaiming_names_the_victims_and_the_start_after_grace() -> None:
    tenants = projects(
        project("p1", quotas={"H100": (8, None)}, cohort="c"),
        project("p2", quotas={"H100": (8, None)}, cohort="c"),
    )
    active = [
        full(job("a", project="p2", grace=300.0), 0),
        full(job("b", project="p2", grace=300.0), 1, start=100.0),
    ]
    result = cycle(nodes(2), [job("j")], active, tenants, now=1000.0, quotas=True)
    got = reason(result, "j")
    assert got.code is ReasonCode.RECLAIMING
    assert got.earliest_start == 1300.0
    assert "1 borrowing job preempted" in got.message
    assert "give back 8 H100" in got.message
    assert "(in 5m)" in got.message


# -- PRIORITY, BACKFILL -----------------------------------------------------------------------


def blocked_head(second: Job, backfill: bool) -> CycleResult:
    """`head` needs both nodes; one is busy until t=1000. `second` could use the free node."""
    active = [full(job("r", walltime=1000.0), 0)]
    return cycle(nodes(2), [job("head", gpus=16), second], active, backfill=backfill)


def test_priority_when_backfill_is_off() -> None:
    result = blocked_head(job("small", walltime=10.0, submit=1), backfill=False)
    got = reason(result, "small")
    assert got.code is ReasonCode.PRIORITY
    assert "behind job head, which holds the line for H100 until ~00:16 UTC" in got.message
    assert "backfill is off" in got.message


def test_backfill_refused_when_it_would_delay_the_shadow_job() -> None:
    result = blocked_head(job("long", walltime=2000.0, submit=1), backfill=True)
    got = reason(result, "long")
    assert got.code is ReasonCode.BACKFILL
    assert "would delay job head" in got.message
    assert "a walltime of at most 16m" in got.message


def test_shorter_walltime_in_the_same_spot_is_backfilled() -> None:
    result = blocked_head(job("short", walltime=1000.0, submit=1), backfill=True)
    (admission,) = result.admissions
    assert admission.job == "short"
    assert admission.backfilled
    assert admission.allocation.nodes == (NodeId(node(1)),)


# -- RESERVED ---------------------------------------------------------------------------------


def test_reserved_when_the_free_nodes_belong_to_another_projects_window() -> None:
    window = Reservation(
        ReservationId("hero"),
        ProjectId("p2"),
        frozenset({NodeId(node(1))}),
        Instant(1000.0),
        Instant(5000.0),
    )
    active = [full(job("r", walltime=10_000.0), 0)]
    pending = [job("head", gpus=16), job("j", walltime=3600.0, submit=1)]
    result = cycle(nodes(2), pending, active, reservations=[window])
    got = reason(result, "j")
    assert got.code is ReasonCode.RESERVED
    assert "free H100 are held by another project's reservation" in got.message
