"""Fair-share arithmetic (F1 decay, F2 factor): the numbers behind who goes first."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from kizuna.kernel.ids import CohortId, GpuType, ProjectId
from kizuna.kernel.units import GpuSeconds, Instant, Seconds
from kizuna.scheduling.fair_share import charge, decayed, factors
from kizuna.scheduling.model import Project, Quota, UsageRecord
from kizuna.scheduling.testing import project, projects

HALF = Seconds(1000.0)


@pytest.mark.parametrize(
    ("record", "now", "half_life", "expected"),
    [
        pytest.param(UsageRecord(100.0, Instant(0.0)), 0.0, HALF, 100.0, id="no-time-no-decay"),
        pytest.param(UsageRecord(100.0, Instant(0.0)), 1000.0, HALF, 50.0, id="one-half-life"),
        pytest.param(UsageRecord(100.0, Instant(0.0)), 2000.0, HALF, 25.0, id="two-half-lives"),
        pytest.param(UsageRecord(100.0, Instant(500.0)), 1500.0, HALF, 50.0, id="from-as-of"),
        pytest.param(
            UsageRecord(100.0, Instant(0.0)), 500.0, HALF, 100 * 2**-0.5, id="half-of-one"
        ),
        pytest.param(UsageRecord(100.0, Instant(900.0)), 0.0, HALF, 100.0, id="never-grows-back"),
        pytest.param(UsageRecord(100.0, Instant(0.0)), 5000.0, Seconds(0.0), 100.0, id="no-decay"),
    ],
)
def test_decayed(record: UsageRecord, now: float, half_life: Seconds, expected: float) -> None:
    assert decayed(record, Instant(now), half_life) == pytest.approx(expected)


def test_charge_decays_old_usage_then_adds_new() -> None:
    record = charge(UsageRecord(100.0, Instant(0.0)), 10.0, Instant(1000.0), HALF)
    assert record.gpu_seconds == pytest.approx(60.0)
    assert record.as_of == 1000.0


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        pytest.param(
            [project("a", usage=100.0), project("b", usage=100.0)],
            {"a": 0.5, "b": 0.5},
            id="exact-share-gets-half",
        ),
        pytest.param(
            [project("a", usage=100.0), project("idle")],
            {"a": 0.25, "idle": 1.0},
            id="idle-gets-one",
        ),
        pytest.param([project("a"), project("b")], {"a": 1.0, "b": 1.0}, id="all-idle-get-one"),
        pytest.param(
            [project("a", usage=300.0, shares=3.0), project("b", usage=100.0)],
            {"a": 0.5, "b": 0.5},
            id="usage-in-proportion-to-shares",
        ),
        pytest.param(
            [project("a", usage=100.0, shares=3.0), project("b", usage=300.0)],
            {"a": 2 ** (-0.25 / 0.75), "b": 2 ** (-0.75 / 0.25)},
            id="over-served-gets-little",
        ),
        pytest.param(
            [project("a", usage=10.0, shares=0.0), project("b", usage=10.0)],
            {"a": 0.0, "b": 2**-0.5},
            id="no-shares-gets-zero",
        ),
        pytest.param([project("solo", usage=5.0)], {"solo": 0.5}, id="alone-uses-its-share"),
    ],
)
def test_factors(members: list[Project], expected: dict[str, float]) -> None:
    got = factors(projects(*members), Instant(0.0), HALF)
    assert got == {ProjectId(k): pytest.approx(v) for k, v in expected.items()}


def test_factors_decay_usage_before_comparing() -> None:
    """Old usage of a counts a quarter after two half-lives, so a and b end up even."""
    old = Project(ProjectId("a"), usage=UsageRecord(400.0, Instant(0.0)))
    recent = Project(ProjectId("b"), usage=UsageRecord(100.0, Instant(2000.0)))
    got = factors(projects(old, recent), Instant(2000.0), HALF)
    assert got == {"a": pytest.approx(0.5), "b": pytest.approx(0.5)}


def test_a_project_with_new_usage_keeps_everything_else() -> None:
    """`Project.with_usage` is `replace(..., usage=...)` made by hand: it must name every
    field, so a field added to `Project` and forgotten there fails here."""
    full = Project(
        ProjectId("p1"),
        cohort=CohortId("c1"),
        quotas={GpuType("H100"): Quota(8, 4)},
        shares=3.0,
        usage=UsageRecord(10.0, Instant(5.0)),
        budgets={GpuType("H100"): GpuSeconds(3600.0)},
    )
    assert [f.name for f in fields(Project)] == [
        "id", "cohort", "quotas", "shares", "usage", "budgets"
    ]  # fmt: skip
    fresh = UsageRecord(99.0, Instant(60.0))
    assert full.with_usage(fresh) == replace(full, usage=fresh)
