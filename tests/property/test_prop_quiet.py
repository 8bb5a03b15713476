"""A cycle after one that decided nothing, with only arrivals and time between, is not walked
when the last walk proves it decides nothing (quiet.py, ADR 0026): it must still decide
exactly what `run_cycle` decides.

The sequences below are what the simulator sends most: a job arrives, the clock moves on by
anything from a second to hours (across promised starts, minimum runtimes and the instants
jobs turn late for a head's start), now and then a cycle's decisions are carried out.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import BUSY, LINE, MIXED, SHAPES, Case, cases, with_policy
from test_prop_scheduler import changes_between, same

from kizuna.kernel.units import Instant
from kizuna.scheduling import PendingChanges, Scheduler, run_cycle
from kizuna.scheduling.model import Job
from kizuna.scheduling.testing import job, settle

STEPS = st.lists(
    st.tuples(
        st.sampled_from(("arrive", "arrive", "arrive", "wait", "settle")),
        st.sampled_from((0.0, 1.0, 59.0, 300.0, 599.0, 600.0, 1799.0, 1800.0, 1801.0, 3600.0)),
        st.integers(0, 1 << 16),
    ),
    min_size=1,
    max_size=10,
)
"""(what happens, seconds the clock moves on first, a seed for the arriving job)."""
SIZES = ((1, None, False), (2, None, False), (2, None, True), (4, None, False), (8, 4, False),
         (8, None, False), (16, 8, False), (3, None, True), (6, None, False))  # fmt: skip
WALLTIMES = (60.0, 600.0, 1800.0, 1801.0, 3599.0, 3600.0, 5400.0, 7200.0, 36_000.0)
PROFILES = st.sampled_from((LINE, BUSY, SHAPES, MIXED))


def arrival(case: Case, now: Instant, n: int, seed: int) -> Job:
    """A job of any shape, walltime and project, of a GPU type the cluster has (mostly)."""
    gpus, per_node, one_domain = SIZES[seed % len(SIZES)]
    owners = sorted(case.snapshot.projects) or ["p0"]
    types = sorted({node.gpu_type for node in case.snapshot.nodes})
    return job(
        f"a{n}",
        gpus=gpus,
        per_node=per_node,
        one_domain=one_domain,
        project=owners[(seed >> 4) % len(owners)],
        gpu_type=types[(seed >> 6) % len(types)],
        walltime=WALLTIMES[(seed >> 8) % len(WALLTIMES)],
        submit=now,
        min_runtime=(0.0, 600.0)[(seed >> 12) % 2],
    )


@settings(max_examples=600, deadline=None)
@given(cases(profiles=PROFILES), STEPS)
def test_cycles_after_a_quiet_one_decide_what_a_fresh_cycle_decides(
    case: Case, steps: list[tuple[str, float, int]]
) -> None:
    # budgets and reservations answer by the clock: no cycle is answered without a walk
    # with them (and the other property tests walk those), so they are left out here
    case = with_policy(case, budgets=False)
    case = dataclasses.replace(case, snapshot=dataclasses.replace(case.snapshot, reservations=()))
    scheduler = Scheduler(case.policy)
    snapshot, now = case.snapshot, case.now
    result = scheduler.cycle(snapshot, now, PendingChanges())
    same(result, run_cycle(snapshot, case.policy, now))
    for n, (action, seconds, seed) in enumerate(steps):
        before = snapshot
        now = Instant(now + seconds)
        if action == "settle":
            snapshot = settle(snapshot, result, now)
        elif action == "arrive":
            new = arrival(case, now, n, seed)
            snapshot = dataclasses.replace(snapshot, pending=(*snapshot.pending, new))
        result = scheduler.cycle(snapshot, now, changes_between(before, snapshot))
        same(result, run_cycle(snapshot, case.policy, now))
