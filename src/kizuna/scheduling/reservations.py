"""Choosing the nodes of a reservation: N GPUs of a type for one project in a window.

A program officer asks for "256 H200 for project X from Monday 08:00 to Friday 20:00" (a hero
run); Kizuna picks the nodes the way it places a gang (ADR 0007: fewest NVLink domains, then
fewest racks, then best fit), on nodes that are up or draining and not held by another
reservation overlapping the window. Running jobs are not consulted: until the window opens
the nodes may run other work that ends before it (ADR 0006).
"""

from __future__ import annotations

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType, ProjectId, ReservationId
from kizuna.kernel.units import Instant
from kizuna.scheduling.capacity import Layout
from kizuna.scheduling.model import NodeState, Reservation, Snapshot
from kizuna.scheduling.placement import place


def plan_reservation(
    snapshot: Snapshot,
    id: ReservationId,
    project: ProjectId,
    gpu_type: GpuType,
    gpus: int,
    start: Instant,
    end: Instant,
) -> Reservation:
    """Whole nodes holding at least `gpus` GPUs of `gpu_type` for `project` in [start, end).

    Raises `InvalidRequest` with every reason when no such set of nodes exists.
    """
    problems = []
    if gpus <= 0:
        problems.append(f"a reservation needs at least one GPU (asked for {gpus})")
    if end <= start:
        problems.append("a reservation must end after it starts")
    if any(r.id == id for r in snapshot.reservations):
        problems.append(f"reservation {id!r} already exists")
    if problems:
        raise InvalidRequest(problems)
    nodes = [n for n in snapshot.nodes if n.gpu_type == gpu_type and n.state is not NodeState.DOWN]
    taken = {
        node for r in snapshot.reservations if r.start < end and start < r.end for node in r.nodes
    }
    layout = Layout.of(nodes)
    usable = [0 if n.id in taken else n.gpus for n in nodes]
    parts = place(layout.topo, usable, layout.topo.domain_sums(usable), gpus, None, False)
    if parts is None:
        free = sum(usable)
        raise InvalidRequest(
            [f"only {free} {gpu_type} are free of other reservations in that window; {gpus} asked"]
        )
    return Reservation(id, project, frozenset(nodes[i].id for i, _ in parts), start, end)
