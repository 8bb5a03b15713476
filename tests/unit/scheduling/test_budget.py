"""Award budgets, Slurm "safe" enforcement: a job starts only if GPUs x walltime fits what is
left after the running jobs' commitments, so an award is never overdrawn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from kizuna.kernel.ids import GpuType, ProjectId
from kizuna.kernel.units import HOUR, Instant
from kizuna.scheduling import Job, ReasonCode, RunningJob, Snapshot, make_policy, run_cycle
from kizuna.scheduling.budget import BudgetBook
from kizuna.scheduling.testing import job, nodes, project, projects, running

P1, H100 = ProjectId("p1"), GpuType("H100")


def book(
    budgets: Mapping[str, float] | None, active: Sequence[RunningJob] = (), now: float = 0.0
) -> BudgetBook:
    return BudgetBook.of(projects(project("p1", budgets=budgets)), active, Instant(now))


def on_node(j: Job, start: float = 0.0, stopping_at: float | None = None) -> RunningJob:
    return running(j, start, {"h100-0000": range(j.gpus)}, stopping_at)


@pytest.mark.parametrize(
    ("active", "now", "committed"),
    [
        pytest.param([], 0.0, 0.0, id="nothing-running"),
        pytest.param(
            [on_node(job("r", 8, walltime=2 * HOUR))],
            0.5 * HOUR,
            8 * 1.5 * HOUR,
            id="remaining-walltime-x-gpus",
        ),
        pytest.param(
            [on_node(job("r", 8, walltime=2 * HOUR), stopping_at=0.75 * HOUR)],
            0.5 * HOUR,
            8 * 0.25 * HOUR,
            id="stopping-job-ends-at-stopping-at",
        ),
        pytest.param(
            [on_node(job("r", 8, walltime=HOUR))], 2 * HOUR, 0.0, id="past-walltime-holds-nothing"
        ),
        pytest.param(
            [on_node(job("r", 4, walltime=HOUR, gpu_type="A100"))],
            0.0,
            0.0,
            id="other-gpu-type-not-counted",
        ),
        pytest.param(
            [on_node(job("r", 8, walltime=HOUR, project="p2"))],
            0.0,
            0.0,
            id="other-project-not-counted",
        ),
    ],
)
def test_running_jobs_commit_what_they_may_still_use(
    active: list[RunningJob], now: float, committed: float
) -> None:
    award = 100 * HOUR
    assert book({"H100": award}, active, now).remaining(P1, H100) == pytest.approx(
        award - committed
    )


@pytest.mark.parametrize(
    ("budgets", "request_", "admitted"),
    [
        pytest.param(None, job("j", 64, walltime=1e6), True, id="not-budget-limited"),
        pytest.param({"H100": 8 * HOUR}, job("j", 8, walltime=HOUR), True, id="exactly-fits"),
        pytest.param(
            {"H100": 8 * HOUR}, job("j", 8, walltime=HOUR + 1), False, id="one-second-over"
        ),
        pytest.param({"A100": 1e9}, job("j", 1, walltime=1.0), False, id="missing-type-is-zero"),
    ],
)
def test_check_admits_only_what_fits(
    budgets: dict[str, float] | None, request_: Job, admitted: bool
) -> None:
    assert (book(budgets).check(request_) is None) is admitted


def test_unknown_project_is_not_budget_limited() -> None:
    assert book({"H100": 0.0}).check(job("j", project="elsewhere")) is None


def test_refusal_states_need_left_and_held() -> None:
    active = [on_node(job("r", 8, walltime=2 * HOUR))]
    budget = book({"H100": 20 * HOUR}, active, now=0.5 * HOUR)
    assert budget.check(job("fits", 8, walltime=HOUR)) is None
    refused = budget.check(job("j", 8, walltime=1.5 * HOUR))
    assert refused is not None
    assert refused.code is ReasonCode.BUDGET
    assert refused.message == (
        "award budget exhausted: job needs 12.0 H100 GPU-hours (8 GPUs x walltime),"
        " 8.0 left after 12.0 held by running jobs"
    )


def test_overdrawn_award_shows_zero_left() -> None:
    active = [on_node(job("r", 8, walltime=2 * HOUR))]
    refused = book({"H100": HOUR}, active).check(job("j", 1, walltime=1.0))
    assert refused is not None
    assert "0.0 left after 16.0 held" in refused.message


def test_commit_reserves_the_whole_walltime() -> None:
    budget = book({"H100": 10 * HOUR})
    budget.commit(job("a", 4, walltime=2 * HOUR))
    assert budget.remaining(P1, H100) == 2 * HOUR


# -- in a cycle -------------------------------------------------------------------------------


def cycle(pending: Sequence[Job], budgets: bool = True, now: float = 0.0) -> dict[str, object]:
    tenants = projects(project("p1", budgets={"H100": 12 * HOUR}))
    snapshot = Snapshot(nodes(4), (), tuple(pending), tenants)
    policy = make_policy("fifo", quotas=False, budgets=budgets)
    result = run_cycle(snapshot, policy, Instant(now))
    out: dict[str, object] = {a.job: "admitted" for a in result.admissions}
    out.update({j: r.code for j, r in result.reasons.items()})
    return out


def test_jobs_admitted_in_one_cycle_use_up_the_budget() -> None:
    pending = [job("a", 8, walltime=HOUR, submit=0), job("b", 8, walltime=HOUR, submit=1)]
    assert cycle(pending) == {"a": "admitted", "b": ReasonCode.BUDGET}


def test_a_smaller_job_behind_a_refused_one_still_fits() -> None:
    pending = [job("big", 16, walltime=HOUR, submit=0), job("small", 8, walltime=HOUR, submit=1)]
    assert cycle(pending) == {"big": ReasonCode.BUDGET, "small": "admitted"}


def test_budgets_off_ignores_awards() -> None:
    pending = [job("big", 32, walltime=10 * HOUR)]
    assert cycle(pending, budgets=False) == {"big": "admitted"}
