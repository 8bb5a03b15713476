"""A snapshot that cannot be true is refused with a clear error, never scheduled on."""

from __future__ import annotations

import dataclasses
import re

import pytest

from kizuna.kernel.errors import InconsistentSnapshot
from kizuna.kernel.units import Instant
from kizuna.scheduling import Scheduler, Snapshot, make_policy, run_cycle
from kizuna.scheduling.testing import job, nodes, running

POLICY = make_policy("fifo", quotas=False, budgets=False)


@pytest.mark.parametrize(
    ("holders", "message"),
    [
        pytest.param(
            [("a", {"h100-0000": [0, 1]}), ("b", {"h100-0000": [1, 2]})],
            "holds GPUs [1] of node h100-0000, which another running job holds",
            id="gpu-held-twice",
        ),
        pytest.param([("a", {"nowhere": [0]})], "unknown node nowhere", id="unknown-node"),
        pytest.param(
            [("a", {"h100-0000": [7, 8]})], "on node h100-0000, which has 8", id="gpu-out-of-range"
        ),
    ],
)
def test_impossible_holdings_are_refused(
    holders: list[tuple[str, dict[str, list[int]]]], message: str
) -> None:
    held = tuple(running(job(name, gpus=2), 0.0, parts) for name, parts in holders)
    with pytest.raises(InconsistentSnapshot, match=re.escape(message)):
        run_cycle(Snapshot(nodes(2), held), POLICY, Instant(0.0))


def test_a_running_job_of_a_type_no_node_has_is_refused() -> None:
    held = (running(job("a", gpus=1, gpu_type="B200"), 0.0, {"h100-0000": [0]}),)
    with pytest.raises(InconsistentSnapshot, match="B200, which no node has"):
        run_cycle(Snapshot(nodes(1), held), POLICY, Instant(0.0))


def test_a_pending_id_twice_is_refused_by_a_cycle_and_by_a_scheduler() -> None:
    twice = (job("same"), job("other"), job("same", gpus=1))
    with pytest.raises(InconsistentSnapshot, match="appear twice: same"):
        run_cycle(Snapshot(nodes(2), pending=twice), POLICY, Instant(0.0))
    scheduler = Scheduler(POLICY)
    first = Snapshot(nodes(2), pending=(job("same"), job("other")))
    scheduler.cycle(first, Instant(0.0))
    later = dataclasses.replace(first, pending=(*first.pending, job("same", gpus=1)))
    with pytest.raises(InconsistentSnapshot, match="twice"):
        scheduler.cycle(later, Instant(1.0))
