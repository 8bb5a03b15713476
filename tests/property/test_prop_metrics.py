"""Entitlements (M8) keep the ledger's arithmetic for any demands, shares and delivery:
nothing is created or lost, no project is entitled beyond its demand, and projects not
capped by their demand split what is left in proportion to their shares."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.simulation.metrics import entitlements
from kizuna.simulation.timeline import Series, resample
from kizuna.simulation.timeline import area as under

PROJECTS = [f"p{n}" for n in range(6)]
REL = 1e-6

demands = st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=1e4))
weights = st.one_of(st.just(0.0), st.floats(min_value=1e-2, max_value=1e2))
deliveries = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=3e4))


@st.composite
def ledgers(draw: st.DrawFn) -> tuple[float, dict[str, float], dict[str, float]]:
    """(delivered, demand, shares); some projects may be missing from `shares`."""
    names = draw(st.lists(st.sampled_from(PROJECTS), unique=True, max_size=len(PROJECTS)))
    demand = {p: draw(demands) for p in names}
    shares = {p: draw(weights) for p in names if draw(st.integers(0, 3))}  # 1 in 4 missing
    return draw(deliveries), demand, shares


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(ledgers())
def test_entitlements_keep_the_ledgers_arithmetic(
    ledger: tuple[float, dict[str, float], dict[str, float]],
) -> None:
    delivered, demand, shares = ledger
    out = entitlements(delivered, demand, shares)
    entitled = {p for p, d in demand.items() if d > 0 and shares.get(p, 0.0) > 0}

    assert set(out) == set(demand)
    # Every GPU-hour delivered goes to someone, until all who may claim have what they asked.
    wanted = math.fsum(demand[p] for p in entitled)
    assert close(math.fsum(out.values()), min(delivered, wanted))
    for p, value in out.items():
        assert value >= 0.0
        assert value <= demand[p] * (1 + REL) + 1e-9  # never beyond its demand
        if p not in entitled:
            assert value == 0.0  # no shares, or nothing asked: nothing entitled

    # Water level: those below their demand all get the same amount per share, and no
    # capped project got more per share than that level.
    uncapped = [p for p in entitled if out[p] < demand[p] * (1 - REL)]
    if uncapped:
        level = out[uncapped[0]] / shares[uncapped[0]]
        for p in uncapped:
            assert close(out[p] / shares[p], level)
        for p in entitled - set(uncapped):
            assert out[p] / shares[p] <= level * (1 + REL) + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1e4), st.floats(0, 64)), min_size=1, max_size=20),
    st.floats(0, 1e6),
    st.floats(1, 1e5),
    st.integers(1, 500),
)
def test_resampling_keeps_the_area_under_a_timeline(
    steps: list[tuple[float, float]], origin: float, span: float, points: int
) -> None:
    """However a window is cut into buckets, bucket means x bucket width add up to the area
    under the step function in the window (what a report's chart shows is what happened)."""
    times, at = [], origin
    for gap, _ in steps:
        times.append(at)
        at += gap
    values = [v for _, v in steps]
    end = origin + span
    buckets = resample(Series(times, values), origin, end, points)
    assert len(buckets) == points
    width = span / points
    area = sum(mean * width for _, mean in buckets)
    assert math.isclose(area, under(times, values, origin, end), rel_tol=1e-9, abs_tol=1e-6)
