"""B5/B6 as both executors apply them (`backend.check_gang`): how a gang's ranks' codes
become its state, and when the others are signalled and killed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kizuna.execution.backend import FAILED_GANG_GRACE, LOST_RANK, RunState, check_gang

NOW = 1_000.0


def test_a_gang_runs_while_any_rank_runs_and_nothing_is_signalled() -> None:
    check = check_gang([None, 0], cancelled=False, kill_at=None, now=NOW)
    assert check.state is RunState.RUNNING
    assert check.running == [0]
    assert (check.terminate, check.kill, check.kill_at) == (False, False, None)
    assert check.exit_codes == (None, 0)


def test_a_failed_rank_gives_the_others_the_grace_then_they_are_killed() -> None:
    first = check_gang([3, None], cancelled=False, kill_at=None, now=NOW)
    assert first.state is RunState.RUNNING
    assert first.terminate and not first.kill
    assert first.kill_at == NOW + FAILED_GANG_GRACE
    later = check_gang([3, None], cancelled=False, kill_at=first.kill_at, now=first.kill_at)
    assert not later.terminate and later.kill
    done = check_gang([3, -9], cancelled=False, kill_at=first.kill_at, now=first.kill_at + 1)
    assert done.state is RunState.FAILED
    assert done.exit_codes == (3, -9)


def test_a_lost_rank_stops_the_others_at_once_and_the_run_is_lost() -> None:
    check = check_gang([LOST_RANK, None], cancelled=False, kill_at=None, now=NOW)
    assert check.terminate and check.kill and check.kill_at == NOW
    assert check_gang([LOST_RANK, -9], False, NOW, NOW).state is RunState.LOST
    assert check_gang([LOST_RANK, 0], True, NOW, NOW).state is RunState.LOST


def test_a_cancelled_gang_keeps_its_deadline_and_ends_stopped() -> None:
    check = check_gang([None, 1], cancelled=True, kill_at=NOW + 30, now=NOW)
    assert not check.terminate and not check.kill  # the cancel already signalled them
    assert check.kill_at == NOW + 30
    assert check_gang([0, 1], True, NOW + 30, NOW).state is RunState.STOPPED


codes = st.lists(st.one_of(st.none(), st.integers(-15, 3), st.just(LOST_RANK)), min_size=1)


@given(codes, st.booleans(), st.one_of(st.none(), st.floats(0, 2_000)))
def test_a_gang_ends_only_when_no_rank_runs_and_a_deadline_is_never_moved(
    ranks: list[int | object | None], cancelled: bool, kill_at: float | None
) -> None:
    check = check_gang(ranks, cancelled, kill_at, NOW)
    assert (check.state is RunState.RUNNING) == (None in ranks)
    if kill_at is not None:
        assert check.kill_at == kill_at and not check.terminate
    assert not (check.kill or check.terminate) or check.running
    assert len(check.exit_codes) == len(ranks)


@pytest.mark.parametrize("state", [RunState.SUCCEEDED, RunState.FAILED])
def test_no_rank_running_means_nothing_to_signal(state: RunState) -> None:
    ranks: list[int | object | None] = [0, 0] if state is RunState.SUCCEEDED else [0, 2]
    check = check_gang(ranks, False, None, NOW)
    assert check.state is state
    assert (check.terminate, check.kill) == (False, False)
