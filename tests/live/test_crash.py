"""CI's short form of the crash harness (tests/live/crash.py; the full run is
`python -m tests.live.crash --kills 100 --jobs 10000`, docs/benchmarks.md): the real service
SIGKILLed 10 times while 16 clients submit, on SQLite and on PostgreSQL, then C1-C6. And the
harness with each planted fault (api/deps.py F1, F2), to show it fails when it should."""

from __future__ import annotations

from dataclasses import replace

import pytest

from live.crash import Plan, run

SHORT = Plan(kills=10, clients=16, jobs=300, gap=(0.3, 1.0), settle=120.0, verbose=True)


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_the_service_survives_ten_kills_without_losing_or_doubling_anything(store: str) -> None:
    found = run(replace(SHORT, store=store))

    assert found.violations == []
    assert found.kills == 10
    assert found.acknowledged == found.submissions == 300
    assert found.jobs == 300
    assert found.usage_records == found.runs >= 300
    assert found.outcomes.get("succeeded") == 300


def test_the_harness_catches_a_service_that_ignores_idempotency_keys() -> None:
    """F1: answers resent (as if lost on the way) make second jobs; C2 sees them."""
    found = run(Plan(kills=1, jobs=60, gap=(0.5, 1.0), resend=0.25, faults="no-idempotency"))

    assert found.violated("C2"), found.violations
    assert found.jobs > found.acknowledged


def test_the_harness_catches_a_service_that_answers_before_it_commits() -> None:
    """F2: a kill between the answer and the commit loses acknowledged jobs; C1 sees them."""
    found = run(Plan(kills=3, jobs=120, gap=(1.0, 2.0), faults="ack-before-commit"))

    assert found.violated("C1"), found.violations
    assert found.jobs < found.acknowledged
