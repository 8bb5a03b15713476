"""How trace rows become the jobs and projects a replay runs (scenario rules W1-W5)."""

from __future__ import annotations

from typing import Any

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType
from kizuna.kernel.units import Seconds
from kizuna.scheduling.model import HIGH, LOW, NORMAL
from kizuna.simulation.awards import AwardsSpec
from kizuna.simulation.cluster import ClusterSpec
from kizuna.simulation.scenario import JobDefaults, build, demand
from kizuna.simulation.workload import Workload
from kizuna.traces.model import TraceRecord

TWO_NODES = ClusterSpec.uniform(2, "H100", 8)
"""16 H100 GPUs, 8 to a node."""
EXACT = JobDefaults(restart_overhead=Seconds(0))
"""Walltime = duration rounded up to a minute."""


def row(
    id: str,
    gpus: int = 1,
    duration: float = 600.0,
    *,
    project: str = "t1",
    submit: float = 0.0,
    gpu_type: str | None = "H100",
    walltime: float | None = None,
    priority: str = "normal",
) -> TraceRecord:
    return TraceRecord(id, project, submit, gpus, duration, gpu_type, walltime, priority)


def cluster(*changes: dict[str, Any], groups: list[dict[str, Any]] | None = None) -> ClusterSpec:
    return ClusterSpec.from_mapping(
        {"node_groups": groups or [{"gpu_type": "H100", "nodes": 2}], "changes": list(changes)}
    )


def ids(workload: Workload) -> tuple[list[str], list[str]]:
    """(ids of the jobs replayed, ids of the jobs refused)."""
    return [t.job.id for t in workload.jobs], [t.job.id for t in workload.refused]


# -- W1: tenants to projects ------------------------------------------------------------------


def test_rows_take_the_project_their_tenant_is_awarded_to() -> None:
    awards = AwardsSpec.from_mapping(
        {
            "awards": [
                {"project": "lab", "tenants": ["t1", "t2"], "gpu_hours": {"H100": 500}},
                {"project": "solo"},
            ]
        }
    )
    rows = [row("a", project="t1"), row("b", project="t2"), row("c", project="solo")]
    workload = build(rows, TWO_NODES, awards)
    assert [t.job.project for t in workload.jobs] == ["lab", "lab", "solo"]
    assert sorted(workload.projects) == ["lab", "solo"]
    assert workload.awards == {"lab": 500.0, "solo": 0.0}  # award sizes in GPU-hours


def test_without_awards_each_tenant_is_a_project_by_demand() -> None:
    """A2: t1 asks 1 GPU x 3600 s = 1 GPU-hour, t2 3 GPU-hours: quotas 16 x 1/4 = 4 and 12,
    shares 1 and 3."""
    rows = [row("a", 1, 3600.0, project="t1"), row("b", 3, 3600.0, project="t2")]
    workload = build(rows, TWO_NODES)
    assert [t.job.project for t in workload.jobs] == ["t1", "t2"]
    h100 = GpuType("H100")
    assert {p: (x.quotas[h100].nominal, x.shares) for p, x in workload.projects.items()} == {
        "t1": (4, 1.0),
        "t2": (12, 3.0),
    }


def test_a_tenant_without_an_award_and_no_default_is_refused() -> None:
    awards = AwardsSpec.from_mapping({"awards": [{"project": "p"}]})
    with pytest.raises(InvalidRequest, match="no award and the spec gives no default: stray"):
        build([row("a", project="stray")], TWO_NODES, awards)


def test_demand_is_gpu_hours_per_tenant_and_type() -> None:
    """t1: 2 x 1800 s on H100 = 1 h, plus 4 x 900 s with no type (the default, H100) = 1 h;
    t2: 8 x 450 s on A100 = 1 h."""
    rows = [
        row("a", 2, 1800.0, project="t1"),
        row("b", 4, 900.0, project="t1", gpu_type=None),
        row("c", 8, 450.0, project="t2", gpu_type="A100"),
    ]
    assert demand(rows, TWO_NODES) == {"t1": {"H100": 2.0}, "t2": {"A100": 1.0}}


# -- W2: the default GPU type -----------------------------------------------------------------


def test_a_row_without_a_type_asks_for_the_first_groups_type() -> None:
    spec = cluster(
        groups=[{"gpu_type": "A100", "nodes": 1}, {"gpu_type": "H100", "nodes": 1}],
    )
    workload = build([row("a", gpu_type=None), row("b", gpu_type="H100")], spec)
    assert [t.job.gpu_type for t in workload.jobs] == ["A100", "H100"]


# -- W3: whole-node gangs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpus", "per_node"),
    [
        pytest.param(16, 8, id="two-whole-nodes"),
        pytest.param(24, 8, id="three-whole-nodes"),
        pytest.param(12, None, id="not-a-multiple"),
        pytest.param(8, None, id="one-node-is-not-larger"),
        pytest.param(4, None, id="part-of-a-node"),
    ],
)
def test_gangs_larger_than_a_node_and_a_multiple_of_it_take_whole_nodes(
    gpus: int, per_node: int | None
) -> None:
    spec = ClusterSpec.uniform(4, "H100", 8)
    (trace_job,) = build([row("a", gpus)], spec).jobs
    assert trace_job.job.gpus_per_node == per_node
    assert trace_job.job.gpus == gpus


def test_whole_nodes_follow_the_node_size_of_the_gangs_type() -> None:
    """A100 nodes hold 4 GPUs: an 8-GPU A100 gang is 2 x 4; the first group of a type sets
    its node size (H100: 8, not the later group's 2)."""
    spec = cluster(
        groups=[
            {"name": "h", "gpu_type": "H100", "nodes": 2},
            {"name": "a", "gpu_type": "A100", "nodes": 4, "gpus_per_node": 4},
            {"name": "small", "gpu_type": "H100", "nodes": 4, "gpus_per_node": 2},
        ]
    )
    workload = build([row("a", 8, gpu_type="A100"), row("h", 16, gpu_type="H100")], spec)
    assert [t.job.gpus_per_node for t in workload.jobs] == [4, 8]


# -- W4: jobs the cluster will never hold -----------------------------------------------------


def test_jobs_larger_than_the_cluster_are_refused_not_replayed() -> None:
    """16 H100 GPUs: 16 fits, 17 never will; a type the cluster lacks never will."""
    rows = [row("fits", 16), row("big", 17), row("b200", 1, gpu_type="B200")]
    workload = build(rows, TWO_NODES)
    assert ids(workload) == (["fits"], ["big", "b200"])
    assert workload.refused[0].duration == 600.0


def test_a_job_that_fits_only_after_nodes_are_added_is_kept() -> None:
    """2 nodes (16 GPUs) grow to 3 (24) at 1d: a 24-GPU job waits for them; 32 never fits."""
    spec = cluster({"at": "1d", "add": 1})
    workload = build([row("later", 24), row("never", 32)], spec)
    assert ids(workload) == (["later"], ["never"])


def test_a_job_that_fits_only_before_nodes_are_removed_is_kept() -> None:
    spec = cluster({"at": "1d", "remove": 1})
    assert ids(build([row("early", 16)], spec)) == (["early"], [])


def test_capacity_is_the_most_in_service_at_once_not_all_ever_added() -> None:
    """One node leaves at 10 and one arrives at 20: never more than 2 nodes (16 GPUs) at
    once, though 3 different nodes serve over the plan; 24 GPUs never fit."""
    spec = cluster({"at": 10, "remove": 1}, {"at": 20, "add": 1})
    assert ids(build([row("a", 16), row("b", 24)], spec)) == (["a"], ["b"])


def test_drained_nodes_still_count_as_in_service() -> None:
    spec = cluster({"at": 0, "drain": 2})
    assert ids(build([row("a", 16)], spec)) == (["a"], [])


def test_the_workload_carries_the_clusters_nodes_and_changes() -> None:
    spec = cluster({"at": 5, "add": 1})
    workload = build([row("a")], spec)
    assert workload.nodes == spec.nodes()
    assert workload.changes == spec.node_changes()


# -- W5: walltimes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "overhead", "factor", "walltime"),
    [
        # (100 + 60) x 1 = 160 s -> 3 minutes
        pytest.param(100.0, 60.0, 1.0, 180.0, id="overhead-rounded-up-to-minutes"),
        # (100 + 60) x 1.5 = 240 s, exactly 4 minutes
        pytest.param(100.0, 60.0, 1.5, 240.0, id="factor-exact-minutes"),
        # (3600 + 0) x 1 = 3600 s, kept
        pytest.param(3600.0, 0.0, 1.0, 3600.0, id="whole-hour-no-overhead"),
        # (3601 + 0) x 2 = 7202 s -> 121 minutes
        pytest.param(3601.0, 0.0, 2.0, 7260.0, id="factor-then-rounded"),
        # (0 + 0) x 1 = 0 s -> at least a minute
        pytest.param(0.0, 0.0, 1.0, 60.0, id="at-least-a-minute"),
    ],
)
def test_walltime_is_duration_plus_overhead_times_factor_in_whole_minutes(
    duration: float, overhead: float, factor: float, walltime: float
) -> None:
    defaults = JobDefaults(walltime_factor=factor, restart_overhead=Seconds(overhead))
    (trace_job,) = build([row("a", duration=duration)], TWO_NODES, defaults=defaults).jobs
    assert trace_job.job.walltime == walltime
    assert trace_job.duration == duration


def test_a_walltime_given_by_the_trace_is_kept_as_is() -> None:
    """Not rounded, not stretched by the factor, even if shorter than the run."""
    defaults = JobDefaults(walltime_factor=3.0)
    (trace_job,) = build(
        [row("a", duration=600.0, walltime=90.0)], TWO_NODES, defaults=defaults
    ).jobs
    assert trace_job.job.walltime == 90.0
    assert trace_job.duration == 600.0


# -- the rest of a job ------------------------------------------------------------------------


def test_jobs_keep_submit_priority_and_take_grace_and_min_runtime_from_defaults() -> None:
    defaults = JobDefaults(grace=Seconds(30), min_runtime=Seconds(120))
    rows = [
        row("a", submit=5.0, priority="high"),
        row("b", submit=7.5, priority="low"),
        row("c", submit=9.0),
    ]
    jobs = [t.job for t in build(rows, TWO_NODES, defaults=defaults).jobs]
    assert [(j.id, j.submit_time, j.priority) for j in jobs] == [
        ("a", 5.0, HIGH),
        ("b", 7.5, LOW),
        ("c", 9.0, NORMAL),
    ]
    assert all((j.grace, j.min_runtime) == (30.0, 120.0) for j in jobs)


def test_an_unknown_priority_class_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        build([row("j7", priority="urgent")], TWO_NODES)
    assert caught.value.problems == ["job j7: unknown priority class 'urgent'"]


def test_a_repeated_job_id_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        build([row("a"), row("b"), row("a", submit=3.0)], TWO_NODES)
    assert caught.value.problems == ["job id 'a' appears twice in the trace"]


def test_default_job_defaults_have_no_problems() -> None:
    assert JobDefaults().problems() == []


def test_job_defaults_name_every_problem_and_build_refuses_them() -> None:
    defaults = JobDefaults(
        walltime_factor=0.9,
        restart_overhead=Seconds(-1),
        grace=Seconds(-1),
        min_runtime=Seconds(-1),
    )
    expected = [
        "the walltime factor must be at least 1",
        "the restart overhead cannot be negative",
        "the grace period cannot be negative",
        "the minimum runtime cannot be negative",
    ]
    assert defaults.problems() == expected
    with pytest.raises(InvalidRequest) as caught:
        build([row("a")], TWO_NODES, defaults=defaults)
    assert caught.value.problems == expected


def test_an_empty_trace_is_an_empty_workload() -> None:
    workload = build([], TWO_NODES, defaults=EXACT)
    assert (workload.jobs, workload.refused, dict(workload.projects)) == ((), (), {})
    assert len(workload.nodes) == 2
