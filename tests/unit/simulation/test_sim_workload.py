"""The synthetic workload: reproducible from a seed, and shaped like the traces it stands for."""

from __future__ import annotations

import statistics
from collections import Counter

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.units import MINUTE
from kizuna.scheduling import ClusterShape, validate_job
from kizuna.simulation import Workload, WorkloadSpec, generate

SPEC = WorkloadSpec(jobs=400, nodes=16)


@pytest.fixture(scope="module")
def workload() -> Workload:
    return generate(SPEC, seed=11)


def test_same_seed_same_workload() -> None:
    assert generate(SPEC, seed=3) == generate(SPEC, seed=3)


def test_different_seeds_different_workloads() -> None:
    a, b = generate(SPEC, seed=3), generate(SPEC, seed=4)
    assert a.nodes == b.nodes  # the cluster comes from the spec alone
    assert [t.job for t in a.jobs] != [t.job for t in b.jobs]
    assert a.awards != b.awards


def test_cluster_is_node_groups_in_nvlink_domains_and_racks(workload: Workload) -> None:
    assert workload.gpus() == {"H100": 64, "A100": 64}
    assert all(n.gpus == 8 for n in workload.nodes)
    domains = Counter(n.nvlink_domain for n in workload.nodes)
    assert set(domains.values()) == {4}
    racks: dict[str, set[str]] = {}
    for n in workload.nodes:
        racks.setdefault(n.rack, set()).add(n.nvlink_domain)
    assert sorted(len(d) for d in racks.values()) == [2, 2]  # two domains to a rack, per type


def test_an_odd_node_count_goes_to_the_first_group() -> None:
    w = generate(WorkloadSpec(jobs=5, nodes=3), seed=1)
    assert w.gpus() == {"H100": 16, "A100": 8}
    one = generate(WorkloadSpec(jobs=20, nodes=1), seed=1)
    assert one.gpus() == {"H100": 8}
    assert all(t.job.gpu_type == "H100" and t.job.gpus <= 8 for t in one.jobs)


def test_quotas_follow_award_size_within_one_cohort(workload: Workload) -> None:
    projects = workload.projects.values()
    assert {p.cohort for p in projects} == {"program"}
    for gpu_type, gpus in workload.gpus().items():
        quotas = {p.id: p.quotas[gpu_type] for p in projects}
        assert sum(q.nominal for q in quotas.values()) == gpus
        assert all(q.borrowing_limit is None for q in quotas.values())
        by_award = sorted(quotas, key=lambda pid: workload.awards[pid])
        nominal = [quotas[pid].nominal for pid in by_award]
        assert nominal == sorted(nominal)  # a larger award never gets a smaller quota
    assert all(p.shares == workload.awards[p.id] for p in projects)
    assert all(p.budgets is None for p in projects)  # every generated job can finish


def test_jobs_arrive_in_order_and_all_fit_the_cluster(workload: Workload) -> None:
    jobs = [t.job for t in workload.jobs]
    assert len(jobs) == SPEC.jobs
    assert len({j.id for j in jobs}) == len(jobs)
    submits = [j.submit_time for j in jobs]
    assert submits == sorted(submits) and submits[0] > 0
    shape = ClusterShape.of(workload.nodes)
    assert all(validate_job(j, shape) == [] for j in jobs)
    assert {j.project for j in jobs} == set(workload.projects)


def test_gangs_are_mostly_single_node_with_a_whole_node_tail(workload: Workload) -> None:
    jobs = [t.job for t in workload.jobs]
    small = [j for j in jobs if j.gpus <= 8]
    large = [j for j in jobs if j.gpus > 8]
    assert {j.gpus for j in small} == {1, 2, 4, 8}
    assert all(j.gpus_per_node is None for j in small)
    assert {j.gpus for j in large} == {16, 32, 64}
    assert all(j.gpus_per_node == 8 for j in large)
    assert 0.02 < len(large) / len(jobs) < 0.2


def test_durations_are_heavy_tailed_and_walltimes_overestimate(workload: Workload) -> None:
    durations = sorted(t.duration for t in workload.jobs)
    assert durations[-1] > 10 * statistics.median(durations)
    for t in workload.jobs:
        assert 1.2 * t.duration <= t.job.walltime <= 3.0 * t.duration + MINUTE
        assert t.job.walltime % MINUTE == 0  # users write walltimes in whole minutes


def test_load_scales_the_arrival_rate_exactly() -> None:
    base = generate(WorkloadSpec(jobs=50, load=1.0), seed=5)
    double = generate(WorkloadSpec(jobs=50, load=2.0), seed=5)
    for a, b in zip(base.jobs, double.jobs, strict=True):
        assert b.job.submit_time == pytest.approx(a.job.submit_time / 2, abs=0.002)
        assert b.duration == a.duration


def test_an_impossible_spec_lists_every_problem() -> None:
    with pytest.raises(InvalidRequest) as error:
        generate(WorkloadSpec(jobs=-1, nodes=0, load=0.0), seed=1)
    assert len(error.value.problems) == 3
    assert "at least one node" in str(error.value)
