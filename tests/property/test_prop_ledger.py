"""The ledger's arithmetic (ADR 0023, rules L1-L4 in kizuna.ledger.rules) on random histories:
holds taken only when covered and charges never above their holds keep every award's
available balance at or above zero at every step, and the balance always equals what the
records say."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kizuna.ledger.rules import (
    Balance,
    Funds,
    burn_rate,
    charge_ms,
    hold_ms,
    pick,
    runs_out,
)

run = st.tuples(
    st.integers(1, 64),  # GPUs
    st.integers(1, 86_400),  # walltime, s
    st.floats(0, 2 * 86_400, allow_nan=False),  # the length it really ran, s
)


@given(granted_hours=st.integers(1, 10_000), runs=st.lists(run, max_size=60), data=st.data())
def test_holds_and_charges_never_overdraw_and_always_add_up(
    granted_hours: int, runs: list[tuple[int, int, float]], data: st.DataObject
) -> None:
    granted = granted_hours * 3600 * 1000
    charges: list[int] = []
    holds: dict[int, int] = {}
    open_runs: dict[int, tuple[int, int, float]] = {}
    for index, (gpus, walltime, length) in enumerate(runs):
        balance = Balance(granted, sum(charges), sum(holds.values()))
        need = hold_ms(gpus, walltime)
        if balance.covers(need):  # L1
            holds[index], open_runs[index] = need, (gpus, walltime, length)
        if open_runs and data.draw(st.booleans()):  # some run ends (L2)
            ending = data.draw(st.sampled_from(sorted(open_runs)))
            g, w, ran = open_runs.pop(ending)
            charge = charge_ms(g, 1000.0, 1000.0 + ran, w)
            assert 0 <= charge <= holds.pop(ending)
            charges.append(charge)
        after = Balance(granted, sum(charges), sum(holds.values()))
        assert after.available_ms >= 0  # L3
        assert after.available_ms == granted - sum(charges) - sum(holds.values())


@given(
    gpus=st.integers(1, 1024),
    walltime=st.integers(1, 10**6),
    a=st.floats(0, 1e9),
    b=st.floats(0, 1e9),
)
def test_a_charge_is_gpus_times_the_length_capped_at_the_walltime(
    gpus: int, walltime: int, a: float, b: float
) -> None:
    start, end = min(a, b), max(a, b)
    charge = charge_ms(gpus, start, end, walltime)
    assert charge % gpus == 0
    assert charge == gpus * min(round((end - start) * 1000), walltime * 1000)
    assert charge_ms(gpus, end, start, walltime) == 0  # an end before its start charges nothing


funds = st.lists(
    st.tuples(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**6)),
    max_size=6,
)


@given(found=funds, need=st.integers(0, 10**9))
def test_pick_takes_the_covering_award_that_ends_first(
    found: list[tuple[int, int, int]], need: int
) -> None:
    candidates = [
        Funds(f"awd_{i}", float(ends), Balance(granted, 0, 0))
        for i, (granted, _, ends) in enumerate(found)
    ]
    chosen = pick(candidates, need)
    covering = [f for f in candidates if f.balance.available_ms >= need]
    if not covering:
        assert chosen is None
    else:
        assert chosen is not None and chosen.balance.covers(need)
        assert chosen.ends_at == min(f.ends_at for f in covering)


@given(
    spans=st.lists(
        st.tuples(st.floats(0, 1000), st.floats(0, 1000), st.integers(0, 10**6)), max_size=20
    )
)
def test_the_burn_rate_counts_each_run_inside_the_window_pro_rata(
    spans: list[tuple[float, float, int]],
) -> None:
    runs = [(min(a, b), max(a, b), gpu_ms) for a, b, gpu_ms in spans]
    whole = burn_rate(runs, now=1000.0, window_s=1000.0)
    assert abs(whole - sum(gpu_ms for *_, gpu_ms in runs) / 1000.0) < 1e-6 * (1 + whole)
    half = burn_rate(runs, now=1000.0, window_s=500.0)
    inside = 0.0
    for start, end, gpu_ms in runs:
        overlap = min(end, 1000.0) - max(start, 500.0)
        if end == start:
            inside += gpu_ms if 500.0 <= end <= 1000.0 else 0
        elif overlap > 0:
            inside += gpu_ms * overlap / (end - start)
    assert abs(half - inside / 500.0) < 1e-6 * (1 + half)


def test_runs_out_at_the_rate_or_never() -> None:
    assert runs_out(3_600_000, 1000.0, now=100.0) == 100.0 + 3600.0
    assert runs_out(3_600_000, 0.0, now=100.0) is None
    assert runs_out(-5, 10.0, now=100.0) == 100.0  # already spent: now
