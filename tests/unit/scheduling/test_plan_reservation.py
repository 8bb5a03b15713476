"""Choosing a reservation's nodes: whole nodes, fewest NVLink domains, never two reservations."""

from __future__ import annotations

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType, NodeId, ProjectId, ReservationId
from kizuna.kernel.units import Instant
from kizuna.scheduling import (
    NodeState,
    Reservation,
    Snapshot,
    make_policy,
    plan_reservation,
    run_cycle,
)
from kizuna.scheduling.testing import job, nodes, project, projects

HERO = ProjectId("hero")


def plan(snapshot: Snapshot, gpus: int, start: float = 100.0, end: float = 200.0) -> Reservation:
    return plan_reservation(
        snapshot, ReservationId("r"), HERO, GpuType("H100"), gpus, Instant(start), Instant(end)
    )


def test_takes_whole_nodes_in_one_nvlink_domain() -> None:
    cluster = Snapshot(nodes(8, per_domain=4))
    reservation = plan(cluster, 32)
    domains = {n.domain for n in cluster.nodes if n.id in reservation.nodes}
    assert len(reservation.nodes) == 4
    assert len(domains) == 1
    assert (reservation.project, reservation.start, reservation.end) == (HERO, 100.0, 200.0)


def test_avoids_nodes_of_an_overlapping_reservation_and_down_nodes() -> None:
    down = nodes(1, prefix="down", state=NodeState.DOWN)
    other = Reservation(
        ReservationId("o"),
        ProjectId("x"),
        frozenset({NodeId("h100-0000")}),
        Instant(150),
        Instant(300),
    )
    cluster = Snapshot(nodes(2) + down, reservations=(other,))
    assert plan(cluster, 8).nodes == {"h100-0001"}
    assert plan(cluster, 16, start=300.0, end=400.0).nodes == {"h100-0000", "h100-0001"}


@pytest.mark.parametrize(
    ("gpus", "start", "end", "message"),
    [
        (0, 100.0, 200.0, "at least one GPU"),
        (8, 200.0, 100.0, "must end after it starts"),
        (24, 100.0, 200.0, "only 16 H100 are free"),
    ],
)
def test_refuses_what_cannot_be_held(gpus: int, start: float, end: float, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        plan(Snapshot(nodes(2)), gpus, start, end)


def test_the_planned_window_keeps_other_projects_out() -> None:
    """Planned for the hero run, the nodes are then honoured by the cycle: another project's
    long job cannot start on them, the hero project's job can."""
    cluster = Snapshot(nodes(1), projects=projects(project("p1"), project("hero")))
    reservation = plan(cluster, 8, start=0.0, end=1000.0)
    pending = (
        job("other", project="p1", walltime=50.0),
        job("mine", project="hero", walltime=500.0, submit=1),
    )
    snapshot = Snapshot(cluster.nodes, (), pending, cluster.projects, (reservation,))
    result = run_cycle(snapshot, make_policy("fifo", quotas=False), Instant(10.0))
    assert result.admitted() == {"mine"}
