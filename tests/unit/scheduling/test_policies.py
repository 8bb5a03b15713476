"""Policy orderings: who goes first under fifo, fair-share and las, and the registry's contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from kizuna.kernel.errors import UnknownName
from kizuna.kernel.ids import JobId
from kizuna.kernel.units import HOUR, Instant
from kizuna.scheduling import POLICIES, Job, Project, ReasonCode, Snapshot, make_policy, run_cycle
from kizuna.scheduling.fair_share import factors
from kizuna.scheduling.model import HIGH, LOW
from kizuna.scheduling.policies.fair_share import FairShare
from kizuna.scheduling.testing import job, nodes, project, projects, running

WEEK = 7 * 24 * HOUR


def order(
    name: str,
    pending: Sequence[Job],
    tenants: Sequence[Project] = (),
    now: float = 0.0,
    **params: Any,
) -> list[str]:
    """The ids of `pending` in the order policy `name` considers them."""
    snapshot = Snapshot(nodes(8), pending=tuple(pending), projects=projects(*tenants))
    return [j.id for j in make_policy(name, **params).order(snapshot, Instant(now))]


# -- fifo -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pending", "expected"),
    [
        pytest.param(
            [job("a", submit=30), job("b", submit=10), job("c", submit=20)],
            ["b", "c", "a"],
            id="by-submit-time",
        ),
        pytest.param(
            [job("big", gpus=64, submit=5, priority=HIGH), job("small", gpus=1, submit=1)],
            ["small", "big"],
            id="ignores-size-and-class",
        ),
        pytest.param(
            [job("z", submit=1), job("a", submit=1), job("m", submit=0)],
            ["m", "a", "z"],
            id="tie-broken-by-id",
        ),
    ],
)
def test_fifo_orders_by_submit_time(pending: list[Job], expected: list[str]) -> None:
    assert order("fifo", pending) == expected


# -- fair-share -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenants", "expected"),
    [
        pytest.param(
            [project("a", usage=1000.0), project("b", usage=0.0)],
            ["b", "a"],
            id="low-decayed-usage-first",
        ),
        pytest.param(
            [project("a", usage=500.0), project("b", usage=500.0, shares=3.0)],
            ["b", "a"],
            id="same-usage-more-shares-first",
        ),
        pytest.param(
            [project("a", usage=100.0, shares=2.0), project("b", usage=300.0, shares=6.0)],
            ["a", "b"],
            id="usage-in-proportion-to-shares-keeps-fifo",
        ),
        pytest.param(
            [project("a"), project("b")],
            ["a", "b"],
            id="both-idle-keeps-fifo",
        ),
    ],
)
def test_fair_share_ranks_the_under_served_project_first(
    tenants: list[Project], expected: list[str]
) -> None:
    """Job `b` is submitted after `a`: it goes first only when its project is under-served."""
    pending = [job("a", project="a", submit=0), job("b", project="b", submit=1)]
    assert order("fair-share", pending, tenants) == expected


@pytest.mark.parametrize(
    ("pending", "now", "params", "expected"),
    [
        pytest.param(
            [job("young", gpus=16, submit=WEEK), job("old", gpus=8, submit=0)],
            WEEK,
            {},
            ["old", "young"],
            id="a-week-of-age-beats-size",
        ),
        pytest.param(
            [job("small", gpus=8, submit=0), job("large", gpus=16, submit=HOUR)],
            HOUR,
            {},
            ["large", "small"],
            id="larger-first-when-age-is-close",
        ),
        pytest.param(
            [job("small", gpus=8, submit=HOUR), job("large", gpus=16, submit=0)],
            HOUR,
            {"favor_small": True},
            ["small", "large"],
            id="favor-small-flips-size",
        ),
        pytest.param(
            [job("normal", submit=0), job("high", submit=HOUR, priority=HIGH)],
            HOUR,
            {},
            ["high", "normal"],
            id="priority-class-first",
        ),
        pytest.param(
            [job("low", submit=0, priority=LOW), job("normal", submit=1)],
            1.0,
            {},
            ["normal", "low"],
            id="low-class-last",
        ),
        pytest.param(
            [job("b", submit=5), job("a", submit=5), job("c", submit=4)],
            5.0,
            {"w_age": 0.0},
            ["c", "a", "b"],
            id="ties-by-submit-then-id",
        ),
    ],
)
def test_fair_share_weighs_age_size_and_class(
    pending: list[Job], now: float, params: dict[str, Any], expected: list[str]
) -> None:
    assert order("fair-share", pending, [project("p1")], now, **params) == expected


@pytest.mark.parametrize("favor_small", [False, True], ids=["favor-large", "favor-small"])
def test_fair_share_order_follows_its_documented_priority(favor_small: bool) -> None:
    """The sort key is an unrolled copy of `FairShare.priority`: both must rank alike."""
    tenants = [project("a", usage=300.0), project("b", usage=100.0, shares=2.0)]
    pending = [
        job("j1", gpus=8, project="a", submit=0),
        job("j2", gpus=64, project="b", submit=2 * HOUR, priority=HIGH),
        job("j3", gpus=16, project="b", submit=WEEK / 2),
        job("j4", gpus=1, project="a", submit=HOUR, priority=LOW),
        job("j5", gpus=32, project="ghost", submit=0),
    ]
    now = Instant(WEEK)
    policy = FairShare(favor_small=favor_small)
    snapshot = Snapshot(nodes(8), pending=tuple(pending), projects=projects(*tenants))
    fair = factors(snapshot.projects, policy.as_of(now), policy.half_life)

    def documented(j: Job) -> tuple[float, float, str]:
        value = policy.priority(j, now, fair.get(j.project, 0.0), 64)
        return (-value, j.submit_time, j.id)

    expected = [j.id for j in sorted(pending, key=documented)]
    assert order("fair-share", pending, tenants, now, favor_small=favor_small) == expected


def test_fair_share_projects_missing_from_snapshot_go_last() -> None:
    pending = [job("ghost", project="ghost", submit=0), job("known", project="p1", submit=1)]
    assert order("fair-share", pending, [project("p1", usage=1e9)], now=1.0) == ["known", "ghost"]


# -- las --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pending", "expected"),
    [
        pytest.param(
            [job("served", attained=100 * HOUR, submit=0), job("fresh", submit=1)],
            ["fresh", "served"],
            id="lower-queue-first",
        ),
        pytest.param(
            [job("a", attained=10 * HOUR, submit=50), job("b", attained=1 * HOUR, submit=60)],
            ["a", "b"],
            id="fifo-within-a-queue",
        ),
        pytest.param(
            [job("edge", attained=16 * HOUR, submit=0), job("below", attained=15 * HOUR, submit=1)],
            ["below", "edge"],
            id="threshold-starts-next-queue",
        ),
        pytest.param(
            [job("top", attained=300 * HOUR, submit=0), job("mid", attained=200 * HOUR, submit=1)],
            ["mid", "top"],
            id="third-queue-last",
        ),
        pytest.param(
            [job("b", submit=3), job("a", submit=3)],
            ["a", "b"],
            id="ties-by-id",
        ),
    ],
)
def test_las_uses_tiresias_queues_then_fifo(pending: list[Job], expected: list[str]) -> None:
    assert order("las", pending) == expected


def test_las_thresholds_are_a_parameter() -> None:
    pending = [job("a", attained=2.0, submit=0), job("b", attained=0.0, submit=1)]
    assert order("las", pending, thresholds=(1.0,)) == ["b", "a"]


@pytest.mark.parametrize(
    ("pending", "expected"),
    [
        pytest.param(
            [
                job("big", gpus=16, walltime=600, submit=0),
                job("small", gpus=1, walltime=3600, submit=5),
            ],
            ["small", "big"],
            id="less-work-first",  # 3,600 GPU-seconds before 9,600
        ),
        pytest.param(
            [
                job("long", gpus=1, walltime=7200, submit=0),
                job("wide", gpus=8, walltime=600, submit=1),
            ],
            ["wide", "long"],
            id="work-not-width",  # 4,800 before 7,200
        ),
        pytest.param(
            [job("b", gpus=2, walltime=60, submit=3), job("a", gpus=1, walltime=120, submit=3)],
            ["a", "b"],
            id="equal-work-by-submit-then-id",
        ),
    ],
)
def test_sjf_orders_by_requested_work(pending: list[Job], expected: list[str]) -> None:
    assert order("sjf", pending) == expected


# -- registry ---------------------------------------------------------------------------------


def test_unknown_policy_lists_the_known_names() -> None:
    with pytest.raises(UnknownName) as raised:
        make_policy("round-robin")
    message = str(raised.value)
    assert "'round-robin'" in message
    for name in POLICIES:
        assert name in message


def test_registry_holds_the_documented_policies() -> None:
    assert set(POLICIES) == {"fifo", "fair-share", "las", "sjf"}


@pytest.mark.parametrize("quotas", [True, False], ids=["quotas-on", "quotas-off"])
@pytest.mark.parametrize("backfill", [True, False], ids=["backfill-on", "backfill-off"])
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_runs_with_every_switch(name: str, backfill: bool, quotas: bool) -> None:
    """A 16-GPU head waits for a busy node; a short 8-GPU job of another project backfills
    only if backfill is on (one of the head's own project would take the quota kept for it)."""
    tenants = projects(
        project("p1", quotas={"H100": (16, 0)}),
        project("p2", quotas={"H100": (8, 0)}),
        project("p3", quotas={"H100": (8, 0)}),
    )
    busy = running(job("r", project="p2", walltime=1000.0), 0.0, {"h100-0000": range(8)})
    pending = (
        job("head", gpus=16, walltime=200.0, submit=0),  # also the least work, for sjf
        job("short", project="p3", walltime=500.0, submit=1),
    )
    snapshot = Snapshot(nodes(2), (busy,), pending, tenants)
    policy = make_policy(name, backfill=backfill, quotas=quotas)
    assert (policy.name, policy.backfill, policy.quotas) == (name, backfill, quotas)
    result = run_cycle(snapshot, policy, Instant(0.0))
    assert tuple(result.order) == ("head", "short")
    assert result.reasons[JobId("head")].code is ReasonCode.RESOURCES
    assert result.reasons[JobId("head")].earliest_start == 1000.0
    if backfill:
        assert result.admitted() == {"short"}
        assert result.admissions[0].backfilled
    else:
        assert result.reasons[JobId("short")].code is ReasonCode.PRIORITY
