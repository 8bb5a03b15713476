"""Slurm-style reservations: nodes held for one project during [start, end). Another project's
job may use them only if it ends (by walltime) before the window opens; the owner may use
them at any time."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kizuna.kernel.ids import JobId, NodeId, ProjectId, ReservationId
from kizuna.kernel.units import Instant
from kizuna.scheduling import (
    CycleResult,
    Job,
    ReasonCode,
    Reservation,
    Snapshot,
    make_policy,
    run_cycle,
)
from kizuna.scheduling.testing import job, nodes, running

OPENS, CLOSES, BUSY_UNTIL = 1000.0, 5000.0, 10_000.0
RESERVED_NODE = NodeId("h100-0001")
HERO = Reservation(
    ReservationId("hero"),
    ProjectId("p2"),
    frozenset({RESERVED_NODE}),
    Instant(OPENS),
    Instant(CLOSES),
)


def cycle(
    pending: Sequence[Job], now: float = 0.0, reservations: Sequence[Reservation] = (HERO,)
) -> CycleResult:
    """Node 0 is busy until t=10000; node 1 is reserved for p2 during [1000, 5000)."""
    busy = running(job("busy", project="p3", walltime=BUSY_UNTIL), 0.0, {"h100-0000": range(8)})
    snapshot = Snapshot(nodes(2), (busy,), tuple(pending), {}, tuple(reservations))
    return run_cycle(snapshot, make_policy("fifo", quotas=False, budgets=False), Instant(now))


@pytest.mark.parametrize(
    ("project", "walltime", "now", "admitted"),
    [
        pytest.param("p1", 900.0, 0.0, True, id="other-ends-before-window"),
        pytest.param("p1", 1000.0, 0.0, True, id="other-ends-as-window-opens"),
        pytest.param("p1", 1001.0, 0.0, False, id="other-runs-into-window"),
        pytest.param("p1", 10.0, 2000.0, False, id="other-during-window"),
        pytest.param("p1", 3600.0, CLOSES, True, id="other-after-window"),
        pytest.param("p2", 3600.0, 0.0, True, id="owner-before-window"),
        pytest.param("p2", 1e6, 2000.0, True, id="owner-during-window"),
    ],
)
def test_who_may_use_reserved_nodes(
    project: str, walltime: float, now: float, admitted: bool
) -> None:
    result = cycle([job("j", project=project, walltime=walltime)], now)
    assert (JobId("j") in result.admitted()) is admitted
    if admitted:
        assert result.admissions[0].allocation.nodes == (RESERVED_NODE,)


def test_a_reservation_on_other_nodes_changes_nothing() -> None:
    elsewhere = Reservation(
        ReservationId("x"),
        ProjectId("p2"),
        frozenset({NodeId("h100-0000")}),
        Instant(OPENS),
        Instant(CLOSES),
    )
    result = cycle([job("j", project="p1", walltime=1e6)], reservations=[elsewhere])
    assert result.admitted() == {"j"}


def test_reserved_reason_behind_a_blocked_head() -> None:
    """With a head job waiting, a job kept off the reserved node only by the window is told so,
    while a shorter one backfills there and the owner's job runs."""
    pending = [
        job("head", gpus=16, project="p1", submit=0),
        job("long", project="p1", walltime=3600.0, submit=1),
        job("short", project="p1", walltime=OPENS, submit=2),
    ]
    result = cycle(pending)
    assert result.reasons[JobId("long")].code is ReasonCode.RESERVED
    assert result.admitted() == {"short"}


def test_owner_job_runs_while_others_are_held() -> None:
    """During the window the owner's job runs on the reserved node that others may not use."""
    pending = [
        job("other", project="p1", walltime=10.0),
        job("mine", project="p2", submit=1, walltime=2500.0),
    ]
    result = cycle(pending, now=2000.0)
    assert result.admitted() == {"mine"}
    assert result.reasons[JobId("other")].code is ReasonCode.RESERVED


def test_owner_job_past_the_window_does_not_delay_the_next_user() -> None:
    """The window is the owner's; past its end the node is promised to the job waiting for it
    (ADR 0006), so an owner's job that would overrun the window waits like any backfill."""
    pending = [
        job("other", project="p1", walltime=10.0),
        job("mine", project="p2", submit=1, walltime=3600.0),
    ]
    result = cycle(pending, now=2000.0)
    assert result.admitted() == set()
    assert result.reasons[JobId("mine")].code is ReasonCode.BACKFILL


def test_job_kept_out_only_by_a_window_is_told_reserved() -> None:
    """The only free node is reserved for p2: p1's job must hear RESERVED, not 'resources,
    8 free', which contradicts itself."""
    result = cycle([job("j", project="p1", walltime=3600.0)])
    assert result.reasons[JobId("j")].code is ReasonCode.RESERVED


def test_promised_start_counts_the_window_closing() -> None:
    """Node 1 is free again for p1 when the window closes at t=5000, long before node 0 frees
    at t=10000: the promised start is t=5000."""
    result = cycle([job("j", project="p1", walltime=3600.0)])
    assert [s.start for s in result.shadows] == [CLOSES]
    assert result.reasons[JobId("j")].earliest_start == CLOSES
