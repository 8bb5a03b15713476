"""Admissions only take GPUs that exist, are up, are free, and are not reserved for others;
and every gang gets exactly the shape it asked for."""

from __future__ import annotations

from hypothesis import given, settings
from strategies import Case, cases

from kizuna.scheduling import CycleResult, NodeState, run_cycle


def _cycle(case: Case) -> CycleResult:
    return run_cycle(case.snapshot, case.policy, case.now)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_no_gpu_is_over_allocated(case: Case) -> None:
    """A GPU runs one job at a time: admissions use GPUs of up nodes that no running job
    holds (stopping jobs included) and no other admission takes."""
    result = _cycle(case)
    nodes = {n.id: n for n in case.snapshot.nodes}
    taken = {
        (node, g) for r in case.snapshot.running for node, ix in r.allocation.parts for g in ix
    }
    for a in result.admissions:
        for node, indices in a.allocation.parts:
            assert node in nodes, f"{a.job} placed on unknown node {node}"
            assert nodes[node].state is NodeState.UP, f"{a.job} placed on {node}, not up"
            for g in indices:
                assert 0 <= g < nodes[node].gpus, f"{a.job}: {node} has no GPU {g}"
                assert (node, g) not in taken, f"{a.job}: GPU {node}/{g} already held"
                taken.add((node, g))


@settings(max_examples=300, deadline=None)
@given(cases())
def test_gangs_are_all_or_nothing_in_their_shape(case: Case) -> None:
    """Each admission holds exactly the GPUs asked for, on nodes of the right type; a fixed
    shape gets `nodes` distinct nodes of `per_node` GPUs; a one-domain gang sits in one
    NVLink domain."""
    result = _cycle(case)
    nodes = {n.id: n for n in case.snapshot.nodes}
    for a in result.admissions:
        job, parts = case.job(a.job), a.allocation.parts
        assert a.allocation.gpus == job.gpus
        assert all(indices for _, indices in parts), f"{job.id}: empty part {parts}"
        assert len({node for node, _ in parts}) == len(parts), f"{job.id}: node twice {parts}"
        assert {nodes[node].gpu_type for node, _ in parts} == {job.gpu_type}
        if job.gpus_per_node:
            assert len(parts) == job.nodes
            assert all(len(ix) == job.gpus_per_node for _, ix in parts), parts
        if job.one_domain:
            assert len({nodes[node].domain for node, _ in parts}) == 1, parts


@settings(max_examples=300, deadline=None)
@given(cases())
def test_reservations_are_honoured(case: Case) -> None:
    """Another project's job may use reserved nodes only if its walltime ends before the
    reservation opens (or the reservation is over)."""
    result = _cycle(case)
    for a in result.admissions:
        job = case.job(a.job)
        end = case.now + job.walltime
        for r in case.snapshot.reservations:
            if r.project == job.project or r.end <= case.now or end <= r.start:
                continue
            used = set(a.allocation.nodes) & r.nodes
            assert not used, f"{job.id} runs on {sorted(used)} reserved by {r.id} ({r.project})"
