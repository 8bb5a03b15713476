"""Quotas and budgets hold after every admission (rules Q1-Q3 of quota.py, ADR 0010)."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from oracles import Ledger, end_of
from strategies import Case, cases, with_policy

from kizuna.kernel.ids import GpuType, ProjectId
from kizuna.scheduling import Job, ReasonCode, run_cycle


@settings(max_examples=250, deadline=None)
@given(cases())
def test_admissions_respect_quotas(case: Case) -> None:
    """Replayed in the order the cycle considered the jobs, each admission either keeps its
    project within nominal quota (Q1), or borrows (and says so) from a cohort, within the
    borrowing limit, with the cohort's usage at most its members' nominal sum (Q2, Q3). A
    job waiting for GPUs it reclaims counts as holding them from its turn on, as in Q1.

    The cohort bound is checked for borrowing admissions only: Q1 admits a job within its
    project's nominal quota on any free GPU, even if borrowers have filled the cohort (they
    are then reclaimed only when GPUs run out), so a cohort's total can legitimately exceed
    the nominal sum when the cluster has GPUs beyond the quotas.
    """
    case = with_policy(case, quotas=True)
    result = run_cycle(case.snapshot, case.policy, case.now)
    ledger = Ledger.of(case.snapshot.projects, [r.job for r in case.snapshot.running])
    admitted = {a.job: a for a in result.admissions}
    for job_id in result.order:
        job = case.job(job_id)
        reason = result.reasons.get(job_id)
        if reason is not None and reason.code is ReasonCode.RECLAIMING:
            ledger.add(job, job.gpus)
        if job_id in admitted:
            ledger.add(job, job.gpus)
            _check_quota(ledger, job, admitted[job_id].borrowing)


def _check_quota(ledger: Ledger, job: Job, flagged: bool) -> None:
    """Q1-Q3 for a job just counted in `ledger`; `flagged`: the admission says it borrows."""
    used = ledger.usage[(job.project, job.gpu_type)]
    quota = ledger.quota(job.project, job.gpu_type)
    borrowing = used > quota.nominal
    assert flagged == borrowing, (job, used, quota)
    if not borrowing:
        return
    cohort = ledger.cohort(job.project)
    assert cohort is not None, f"{job.id} borrows but {job.project} has no cohort"
    if quota.borrowing_limit is not None:
        assert used <= quota.nominal + quota.borrowing_limit, (job, used, quota)
    in_cohort = ledger.cohorts[(cohort, job.gpu_type)]
    assert in_cohort <= ledger.cohort_nominal(cohort, job.gpu_type), (job, in_cohort)


@settings(max_examples=250, deadline=None)
@given(cases())
def test_projects_stay_within_quota_when_they_started_within(case: Case) -> None:
    """After the cycle, a project that held at most nominal + borrowing limit still does."""
    case = with_policy(case, quotas=True)
    result = run_cycle(case.snapshot, case.policy, case.now)
    before = Ledger.of(case.snapshot.projects, [r.job for r in case.snapshot.running])
    after = Ledger.of(case.snapshot.projects, [r.job for r in case.snapshot.running])
    for a in result.admissions:
        job = case.job(a.job)
        after.add(job, job.gpus)
    for (pid, t), used in after.usage.items():
        ceiling = _ceiling(after, pid, t)
        if ceiling is not None and before.usage[(pid, t)] <= ceiling:
            assert used <= ceiling, (pid, t, before.usage[(pid, t)], used)


def _ceiling(ledger: Ledger, pid: ProjectId, gpu_type: GpuType) -> int | None:
    """The most GPUs a project may hold by quota: nominal without a cohort (Q3), nominal plus
    borrowing limit within one, None when it may borrow without limit (the cohort bounds it)."""
    quota = ledger.quota(pid, gpu_type)
    if ledger.cohort(pid) is None:
        return quota.nominal
    if quota.borrowing_limit is None:
        return None
    return quota.nominal + quota.borrowing_limit


@settings(max_examples=250, deadline=None)
@given(cases())
def test_admissions_never_overdraw_a_budget(case: Case) -> None:
    """Slurm's `safe` rule: for a budget-limited project, what running jobs may still use
    until their end bound plus walltime x GPUs of the jobs admitted never exceeds the
    remaining award GPU-seconds (a missing GPU type has none)."""
    case = with_policy(case, budgets=True)
    result = run_cycle(case.snapshot, case.policy, case.now)
    committed: defaultdict[tuple[ProjectId, GpuType], float] = defaultdict(float)
    for r in case.snapshot.running:
        committed[(r.job.project, r.job.gpu_type)] += r.job.gpus * max(0.0, end_of(r) - case.now)
    for a in result.admissions:
        job = case.job(a.job)
        committed[(job.project, job.gpu_type)] += job.gpus * job.walltime
        p = case.snapshot.projects.get(job.project)
        if p is None or p.budgets is None:
            continue
        left = p.budgets.get(job.gpu_type, 0.0)
        spent = committed[(job.project, job.gpu_type)]
        assert spent <= left, f"{job.id}: {spent} GPU-s committed, {left} left"
