"""Studies: every (scale, policy) pair replayed in order, and the results as JSON."""

from __future__ import annotations

import json
import math

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType
from kizuna.planning import Study
from kizuna.planning.study import finite
from kizuna.scheduling import Quota, make_policy
from kizuna.simulation.awards import Award, AwardsSpec
from kizuna.simulation.cluster import ClusterSpec
from kizuna.simulation.replay import ProgressHook
from kizuna.traces import Trace, TraceRecord

ONE_JOB = Trace((TraceRecord("j1", "vc1", 100.0, 2, 3600.0),), "kizuna-csv")


def trace(*records: TraceRecord) -> Trace:
    return Trace(records, "kizuna-csv")


def study(
    data: Trace = ONE_JOB,
    *policies: str,
    scales: tuple[float, ...] = (1.0,),
    awards: AwardsSpec | None = None,
) -> Study:
    chosen = tuple(make_policy(p, budgets=False) for p in (policies or ("fifo",)))
    return Study("t.csv", data, ClusterSpec.uniform(2), chosen, awards, scales=scales)


def test_a_lone_job_runs_on_arrival_so_its_jct_is_its_duration() -> None:
    (row,) = study().run().rows
    m = row.metrics
    assert m.jct.mean == m.jct.p99 == 3600.0
    assert m.wait.mean == 0.0
    assert m.jct_mean_bound == m.makespan == m.makespan_bound == 3600.0
    assert (row.policy, row.scale, row.total_gpus, row.refused) == ("fifo", 1.0, 16, 0)


def test_runs_go_scale_by_scale_then_policy_by_policy() -> None:
    result = study(ONE_JOB, "las", "fifo", scales=(0.5, 1.0, 0.5)).run()
    assert [(r.scale, r.policy, r.total_gpus) for r in result.rows] == [
        (0.5, "las", 8),
        (0.5, "fifo", 8),
        (1.0, "las", 16),
        (1.0, "fifo", 16),
    ]
    assert [scale for scale, _ in result.by_scale()] == [0.5, 1.0]
    assert all(r.wall_seconds >= 0 and r.cycles == 1 for r in result.rows)


def test_progress_hears_of_each_run_with_its_jobs() -> None:
    seen: list[tuple[str, int]] = []
    finished: list[int] = []

    def track(label: str, total: int) -> ProgressHook:
        seen.append((label, total))
        return lambda done, _total: finished.append(done)

    study(ONE_JOB, "fifo", "las", scales=(1.0, 2.0)).run(track)
    assert seen == [
        ("fifo x1", 1),
        ("las x1", 1),
        ("fifo x2", 1),
        ("las x2", 1),
    ]
    assert finished[-1] == 1


@pytest.mark.parametrize(
    ("scales", "problem"),
    [
        ((1.0, 0.0), "a scale must be positive (got 0)"),
        ((), "a study needs at least one cluster scale"),
    ],
)
def test_bad_studies_fail_before_any_replay(scales: tuple[float, ...], problem: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        study(scales=scales).run(lambda label, total: pytest.fail("a replay started"))
    assert problem in raised.value.problems


def test_an_empty_trace_or_no_policy_is_refused() -> None:
    empty = Study("t.csv", trace(), ClusterSpec.uniform(1), ())
    assert empty.problems() == [
        "the trace t.csv has no jobs",
        "a study needs at least one policy",
    ]


def test_a_job_larger_than_the_cluster_is_refused_and_counted() -> None:
    data = trace(TraceRecord("big", "p", 0.0, 32, 60.0), TraceRecord("small", "p", 0.0, 1, 60.0))
    (row,) = study(data).run().rows
    assert row.refused == 1
    assert row.metrics.jobs == row.metrics.finished == 1


def test_quotas_scale_with_the_cluster_in_a_sweep() -> None:
    awards = AwardsSpec(
        (
            Award("a", ("vc1",), quotas={"V100": Quota(12)}),
            Award("b", ("vc2",), quotas={"V100": Quota(4)}),
        )
    )
    plan = study(awards=awards, scales=(0.5, 1.0))
    half = plan.awards_at(plan.cluster_at(0.5))
    assert half is not None
    assert {a.project: a.quotas["V100"].nominal for a in half.awards} == {"a": 6, "b": 2}
    assert plan.awards_at(plan.cluster_at(1.0)) is awards
    assert plan.cluster_at(0.5).gpus() == {GpuType("V100"): 8}


def test_json_is_plain_and_rounded() -> None:
    document = study(ONE_JOB, "fifo", scales=(1.0,)).run().as_json()
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert document["trace"] == {
        "name": "t.csv",
        "format": "kizuna-csv",
        "jobs": 1,
        "skipped": 0,
        "filtered": 0,
    }
    (run,) = document["runs"]
    assert run["cluster"] == {"name": "2 x 8 V100", "nodes": 2, "gpus": {"V100": 16}}
    metrics = run["metrics"]
    assert metrics["jct"] == {"mean": 3600.0, "p50": 3600.0, "p95": 3600.0, "p99": 3600.0}
    assert metrics["gpu_hours"] == 2.0
    assert metrics["projects"] == [
        {
            "project": "vc1",
            "jobs": 1,
            "demand_gpu_hours": 2.0,
            "received_gpu_hours": 2.0,
            "entitled_gpu_hours": 2.0,
            "ratio": 1.0,
        }
    ]
    assert document["options"]["checkpoint_interval"] == 1800.0


def test_numbers_json_cannot_hold_become_null() -> None:
    assert finite(math.inf, 3) is None
    assert finite(1.23456, 2) == 1.23


def test_replays_side_by_side_give_what_one_by_one_gives() -> None:
    """S4: with two workers each replay runs in a process of its own; rows come back in the
    study's order with the same results, and each run's progress hears that it finished."""
    busy = trace(
        *(
            TraceRecord(f"j{n:02d}", f"vc{n % 3}", 60.0 * n, 1 + n % 8, 600.0 + 97 * n)
            for n in range(30)
        )
    )
    alone = study(busy, "fifo", "fair-share", scales=(0.5, 1.0)).run()
    finished: list[tuple[str, int]] = []

    def progress(label: str, jobs: int) -> ProgressHook:
        return lambda done, total: finished.append((label, done))

    together = study(busy, "fifo", "fair-share", scales=(0.5, 1.0)).run(progress, workers=2)
    assert [(r.policy, r.scale, r.metrics) for r in together.rows] == [
        (r.policy, r.scale, r.metrics) for r in alone.rows
    ]
    assert [h.runs for h in together.results[3].histories] == [
        h.runs for h in alone.results[3].histories
    ]
    assert sorted(finished) == sorted(
        [(f"{p} x{s:g}", 30) for s in (0.5, 1.0) for p in ("fifo", "fair-share")]
    )
