"""Quota rules Q1-Q4: nominal quota, borrowing within the cohort, and who counts as borrowing."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kizuna.kernel.ids import GpuType, JobId, ProjectId
from kizuna.kernel.units import Instant
from kizuna.scheduling import Job, Project, Reason, ReasonCode, Snapshot, make_policy, run_cycle
from kizuna.scheduling.quota import Fit, QuotaBook
from kizuna.scheduling.testing import job, nodes, project, projects, running

H100 = GpuType("H100")


def check(tenants: Sequence[Project], holding: Sequence[Job], request: Job) -> Fit | Reason:
    return QuotaBook.of(projects(*tenants), holding).check(request)


def in_cohort(nominal: int, limit: int | None, other: int = 24) -> list[Project]:
    """p1 with the given H100 quota and p2 with `other` nominal, both in cohort c."""
    return [
        project("p1", quotas={"H100": (nominal, limit)}, cohort="c"),
        project("p2", quotas={"H100": (other, None)}, cohort="c"),
    ]


@pytest.mark.parametrize(
    ("tenants", "holding", "gpus", "expected"),
    [
        pytest.param(in_cohort(8, 0), [], 8, Fit.NOMINAL, id="Q1-within-nominal"),
        pytest.param(
            in_cohort(16, 0), [job("h", 8)], 8, Fit.NOMINAL, id="Q1-fills-nominal-exactly"
        ),
        pytest.param(in_cohort(8, None), [], 32, Fit.BORROWING, id="Q2-no-limit-up-to-cohort"),
        pytest.param(in_cohort(8, 4), [], 12, Fit.BORROWING, id="Q2-up-to-borrowing-limit"),
        pytest.param(in_cohort(0, None), [], 8, Fit.BORROWING, id="Q2-zero-nominal-may-borrow"),
        pytest.param(
            [*in_cohort(8, None), project("p3", quotas={"H100": (8, None)}, cohort="d")],
            [job("h", 8, project="p3")],
            32,
            Fit.BORROWING,
            id="Q2-other-cohorts-do-not-count",
        ),
    ],
)
def test_quota_fits(tenants: list[Project], holding: list[Job], gpus: int, expected: Fit) -> None:
    assert check(tenants, holding, job("j", gpus)) is expected


@pytest.mark.parametrize(
    ("tenants", "holding", "gpus", "code", "message"),
    [
        pytest.param(
            [project("p1", quotas={"A100": (8, None)}, cohort="c")],
            [],
            8,
            ReasonCode.NO_QUOTA,
            "project p1 has no H100 quota",
            id="Q3-no-quota-for-type",
        ),
        pytest.param(
            [], [], 8, ReasonCode.NO_QUOTA, "project p1 has no H100 quota", id="Q3-unknown-project"
        ),
        pytest.param(
            [project("p1", quotas={"H100": (8, None)})],
            [],
            16,
            ReasonCode.QUOTA,
            "project quota of 8 H100 (nominal) in use: 0 held, job needs 16",
            id="Q3-no-cohort-cannot-borrow",
        ),
        pytest.param(
            in_cohort(8, 0),
            [],
            16,
            ReasonCode.QUOTA,
            "project quota of 8 H100 (nominal) in use: 0 held, job needs 16",
            id="Q2-limit-zero-cannot-borrow",
        ),
        pytest.param(
            in_cohort(8, 0),
            [job("h", 8)],
            8,
            ReasonCode.QUOTA,
            "project quota of 8 H100 (nominal) in use: 8 held, job needs 8",
            id="Q1-nominal-in-use",
        ),
        pytest.param(
            in_cohort(8, 4),
            [job("h", 4)],
            16,
            ReasonCode.QUOTA,
            "project quota of 12 H100 (nominal + borrowing limit) in use: 4 held, job needs 16",
            id="Q2-over-borrowing-limit",
        ),
        pytest.param(
            in_cohort(8, None),
            [],
            40,
            ReasonCode.COHORT,
            "needs 40 H100 from cohort c, 32 of them beyond its nominal quota;"
            " 32 of the cohort's 32 are idle",
            id="Q2-more-than-cohort-pool",
        ),
        pytest.param(
            in_cohort(8, None),
            [job("h", 24, project="p2")],
            16,
            ReasonCode.COHORT,
            "needs 16 H100 from cohort c, 8 of them beyond its nominal quota;"
            " 8 of the cohort's 32 are idle",
            id="Q2-cohort-lent-out",
        ),
        pytest.param(
            in_cohort(8, None),
            [job("h", 40, project="p2")],
            16,
            ReasonCode.COHORT,
            "needs 16 H100 from cohort c, 8 of them beyond its nominal quota;"
            " 0 of the cohort's 32 are idle",
            id="Q2-cohort-over-committed",
        ),
    ],
)
def test_quota_refusals(
    tenants: list[Project], holding: list[Job], gpus: int, code: ReasonCode, message: str
) -> None:
    got = check(tenants, holding, job("j", gpus))
    assert isinstance(got, Reason)
    assert got.code is code
    assert message in got.message


def test_usage_is_counted_per_gpu_type() -> None:
    tenants = [project("p1", quotas={"H100": (8, 0), "A100": (8, 0)})]
    assert check(tenants, [job("h", 8, gpu_type="A100")], job("j", 8)) is Fit.NOMINAL


@pytest.mark.parametrize(
    ("held", "borrowed"),
    [
        pytest.param(6, 0, id="under-nominal"),
        pytest.param(8, 0, id="at-nominal"),
        pytest.param(12, 4, id="beyond-nominal"),
    ],
)
def test_q4_borrowed_is_usage_beyond_nominal(held: int, borrowed: int) -> None:
    book = QuotaBook.of(projects(*in_cohort(8, None)), [job("h", held)])
    assert book.borrowed(ProjectId("p1"), H100) == borrowed


def test_usage_added_and_removed_moves_the_cohort_too() -> None:
    """Admissions and preemptions within a cycle change what the cohort can lend."""
    book = QuotaBook.of(projects(*in_cohort(8, None)), [])
    other = job("h", 24, project="p2")
    assert book.check(job("k", 16)) is Fit.BORROWING
    book.add(other, 24)
    refused = book.check(job("k", 16))
    assert isinstance(refused, Reason)
    assert refused.code is ReasonCode.COHORT
    book.add(other, -24)
    assert book.check(job("k", 16)) is Fit.BORROWING


# -- in a cycle -------------------------------------------------------------------------------


def cycle(
    tenants: Sequence[Project], pending: Sequence[Job], quotas: bool = True
) -> dict[str, object]:
    """Admission borrowing flags (or reason codes) per job on 4 free H100 nodes."""
    snapshot = Snapshot(nodes(4), (), tuple(pending), projects(*tenants))
    result = run_cycle(snapshot, make_policy("fifo", quotas=quotas), Instant(0.0))
    out: dict[str, object] = {a.job: a.borrowing for a in result.admissions}
    out.update({j: r.code for j, r in result.reasons.items()})
    return out


def test_admissions_say_whether_they_borrow() -> None:
    pending = [job("own", 8, submit=0), job("lent", 8, submit=1)]
    assert cycle(in_cohort(8, None), pending) == {"own": False, "lent": True}


def test_admissions_in_one_cycle_use_up_the_quota() -> None:
    pending = [job("a", 8, submit=0), job("b", 8, submit=1)]
    assert cycle(in_cohort(8, 0), pending) == {"a": False, "b": ReasonCode.QUOTA}


def test_quotas_off_admits_projects_without_quota() -> None:
    pending = [job("a", 8, project="nobody")]
    assert cycle([], pending, quotas=False) == {"a": False}


def test_running_jobs_count_against_quota() -> None:
    busy = running(job("r", 8), 0.0, {"h100-0000": range(8)})
    snapshot = Snapshot(nodes(4), (busy,), (job("j", 8),), projects(*in_cohort(8, 0)))
    result = run_cycle(snapshot, make_policy("fifo"), Instant(0.0))
    assert result.reasons[JobId("j")].code is ReasonCode.QUOTA
