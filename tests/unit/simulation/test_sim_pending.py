"""The replay's pending jobs (simulation/pending.py): each cycle's view lists the pending jobs
exactly as a copy of an insertion-ordered dict would (P1) and never changes afterwards (P2),
through any run of arrivals, starts and requeues, across rebases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.kernel.ids import JobId
from kizuna.scheduling.model import Job
from kizuna.scheduling.testing import job
from kizuna.simulation.pending import REBASE_AFTER, PendingJobs, PendingView

# an operation: ("add", n) a job "n" becomes pending (a new object each time: a requeued job
# is a new Job); ("pop", k) the k-th pending job (modulo) starts; ("view", 0) a cycle
operations = st.lists(
    st.tuples(st.sampled_from(["add", "pop", "view"]), st.integers(0, 12)), max_size=80
)


@settings(max_examples=300)
@given(operations, st.integers(0, 5))
def test_every_view_is_the_pending_jobs_in_order_and_stays_so(
    ops: list[tuple[str, int]], rebase_after: int
) -> None:
    pending = PendingJobs(rebase_after)
    model: dict[JobId, Job] = {}
    kept: list[tuple[PendingView, tuple[Job, ...]]] = []
    version = 0
    for op, n in ops:
        if op == "add" and JobId(str(n)) not in model:
            version += 1
            made = job(str(n), gpus=1 + version % 7)
            pending.add(made)
            model[made.id] = made
        elif op == "pop" and model:
            gone = list(model)[n % len(model)]
            assert pending.pop(gone) is model.pop(gone)
        elif op == "view":
            kept.append((pending.view(), tuple(model.values())))
        assert len(pending) == len(model)
    kept.append((pending.view(), tuple(model.values())))
    for view, expected in kept:  # P2: read after everything that came later
        assert len(view) == len(expected)
        assert tuple(view) == expected  # P1, the very objects
        assert all(a is b for a, b in zip(view, expected, strict=True))
        assert view == expected
        if expected:
            assert view[0] is expected[0] and view[-1] is expected[-1]


def test_a_requeued_job_comes_after_those_already_waiting() -> None:
    pending = PendingJobs()
    a, b, c = job("a"), job("b"), job("c")
    for j in (a, b, c):
        pending.add(j)
    for _ in range(REBASE_AFTER):  # past a rebase: "a" is in the base
        extra = job("x")
        pending.add(extra)
        pending.pop(extra.id)
    pending.view()
    pending.pop(a.id)
    again = job("a", gpus=2)
    pending.add(again)
    assert [j.id for j in pending.view()] == ["b", "c", "a"]
    assert pending.view()[2] is again


def test_popping_a_job_that_is_not_pending_is_an_error() -> None:
    with pytest.raises(KeyError):
        PendingJobs().pop(JobId("nobody"))
