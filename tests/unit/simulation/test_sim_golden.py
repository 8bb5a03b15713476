"""Golden replays: tiny traces whose schedules were worked out by hand.

Each goes the whole way a user's trace goes: canonical rows, a cluster spec, awards, the
scenario's rules (W1-W5) and the replay loop (E1-E5). Restart overhead is 0 unless a test
says otherwise, so the arithmetic in each docstring is plain.
"""

from __future__ import annotations

import pytest

from kizuna.kernel.units import Seconds
from kizuna.scheduling import make_policy
from kizuna.simulation import Outcome, ReplayOptions, replay
from kizuna.simulation.awards import AwardsSpec
from kizuna.simulation.cluster import ClusterSpec
from kizuna.simulation.replay import ReplayResult
from kizuna.simulation.scenario import JobDefaults, build
from kizuna.traces.model import TraceRecord

PLAIN = JobDefaults(restart_overhead=Seconds(0), grace=Seconds(0), min_runtime=Seconds(0))
NO_OVERHEAD = ReplayOptions(checkpoint_interval=Seconds(60), restart_overhead=Seconds(0))
DONE, CUT, STOPPED = Outcome.COMPLETED, Outcome.TIMEOUT, Outcome.PREEMPTED


def row(id: str, gpus: int, duration: float, submit: float, project: str = "p1") -> TraceRecord:
    return TraceRecord(id, project, submit, gpus, duration, "H100")


def two_projects(nominal: int = 8) -> AwardsSpec:
    return AwardsSpec.from_mapping(
        {
            "awards": [
                {"project": "p1", "quotas": {"H100": nominal}},
                {"project": "p2", "quotas": {"H100": nominal}},
            ]
        }
    )


def spans(result: ReplayResult) -> dict[str, list[tuple[float, float, Outcome]]]:
    return {h.job.id: [(r.start, r.end, r.outcome) for r in h.runs] for h in result.histories}


def run(
    rows: list[TraceRecord],
    policy: str,
    cluster: ClusterSpec,
    *,
    backfill: bool = True,
    quotas: bool = False,
    awards: AwardsSpec | None = None,
    options: ReplayOptions = NO_OVERHEAD,
    defaults: JobDefaults = PLAIN,
) -> ReplayResult:
    workload = build(rows, cluster, awards, defaults)
    return replay(workload, make_policy(policy, backfill=backfill, quotas=quotas), options)


ONE_NODE = ClusterSpec.uniform(1, "H100", 8)
TWO_NODES = ClusterSpec.uniform(2, "H100", 8)

HEAD_OF_LINE = [
    row("a", 4, 100, 0),  # walltime 120 (W5: whole minutes)
    row("b", 8, 50, 10),  # needs the whole node: waits for a
    row("c", 2, 30, 20),  # walltime 60: would end by 80, before b's promised start 120
    row("d", 2, 200, 25),  # walltime 240: would hold 2 GPUs past 120 and delay b
]


def test_strict_fifo_blocks_behind_the_head() -> None:
    """Without backfill nothing passes b: a 0-100, b 100-150, then c and d in order; c and d
    fit side by side (2 + 2 of 8 GPUs): c 150-180, d 150-350."""
    result = run(HEAD_OF_LINE, "fifo", ONE_NODE, backfill=False)
    assert spans(result) == {
        "a": [(0.0, 100.0, DONE)],
        "b": [(100.0, 150.0, DONE)],
        "c": [(150.0, 180.0, DONE)],
        "d": [(150.0, 350.0, DONE)],
    }
    assert result.metrics.jct.mean == pytest.approx((100 + 140 + 160 + 325) / 4)
    assert result.metrics.makespan == 350.0


def test_backfill_lets_through_only_what_cannot_delay_the_head() -> None:
    """b is promised 120 (a's walltime end). c ends by 80 and backfills at 20; d would hold
    its GPUs until 265 and waits. a really ends at 100, so b starts then, and d after b."""
    result = run(HEAD_OF_LINE, "fifo", ONE_NODE)
    assert spans(result) == {
        "a": [(0.0, 100.0, DONE)],
        "b": [(100.0, 150.0, DONE)],
        "c": [(20.0, 50.0, DONE)],
        "d": [(150.0, 350.0, DONE)],
    }
    waits = {h.job.id: h.runs[0].start - h.job.submit_time for h in result.histories}
    assert waits == {"a": 0.0, "b": 90.0, "c": 0.0, "d": 125.0}


def test_sjf_runs_the_least_work_first() -> None:
    """Without backfill, in order of GPUs x walltime: at 20, c (2 x 60 = 120 GPU-s) goes
    before b (8 x 60 = 480) and fits beside a; d (2 x 240 = 480) ties b, which was
    submitted first, so d waits behind b."""
    result = run(HEAD_OF_LINE, "sjf", ONE_NODE, backfill=False)
    assert spans(result) == {
        "a": [(0.0, 100.0, DONE)],
        "c": [(20.0, 50.0, DONE)],
        "b": [(100.0, 150.0, DONE)],
        "d": [(150.0, 350.0, DONE)],
    }


def test_reclaim_stops_the_borrower_and_it_resumes_from_its_checkpoint() -> None:
    """p1's a borrows all 16 GPUs (nominal 8). At 100 p2's b asks for its nominal 8: a is
    preempted with a 10 s grace, stops at 110 having saved 60 s (checkpoints every 60 s),
    b runs 110-160, and a restarts at 160 with 940 s left plus 30 s of restart overhead,
    ending at 1130. Lost: 50 s since the checkpoint, then the 30 s overhead, on 16 GPUs."""
    rows = [row("a", 16, 1000, 0, "p1"), row("b", 8, 50, 100, "p2")]
    defaults = JobDefaults(restart_overhead=Seconds(30), grace=Seconds(10), min_runtime=Seconds(0))
    options = ReplayOptions(checkpoint_interval=Seconds(60), restart_overhead=Seconds(30))
    result = run(
        rows, "fifo", TWO_NODES, quotas=True, awards=two_projects(), options=options,
        defaults=defaults,
    )  # fmt: skip
    a, b = result.histories
    assert [(r.start, r.end, r.outcome, r.lost) for r in a.runs] == [
        (0.0, 110.0, STOPPED, 50.0),
        (160.0, 1130.0, DONE, 30.0),
    ]
    assert [(r.start, r.end, r.outcome) for r in b.runs] == [(110.0, 160.0, DONE)]
    m = result.metrics
    assert (m.preemptions, m.lost_gpu_seconds) == (1, 16 * (50 + 30))
    assert m.jct.mean == pytest.approx((1130 + 60) / 2)


LAS_ROWS = [
    row("a", 16, 10_000, 0, "p1"),
    row("b", 8, 100, 4_000, "p2"),
    row("c", 16, 100, 4_010, "p1"),
]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(
            "fifo",
            {"a": [(4_100.0, 10_140.0, DONE)], "c": [(10_140.0, 10_240.0, DONE)]},
            id="fifo-a-keeps-its-place",
        ),
        pytest.param(
            "las",
            {"c": [(4_100.0, 4_200.0, DONE)], "a": [(4_200.0, 10_240.0, DONE)]},
            id="las-c-has-attained-less",
        ),
    ],
)
def test_las_puts_the_job_that_has_had_the_most_behind(
    policy: str, expected: dict[str, list[tuple[float, float, Outcome]]]
) -> None:
    """a (p1, 16 GPUs) runs alone until p2's b reclaims 8 at 4,000 (no grace): a stops
    with 3,960 s saved and 64,000 GPU-s attained, past LAS's first threshold (16 GPU-hours).
    b runs 4,000-4,100. c (p1, 16 GPUs, attained 0) arrives at 4,010. When b ends, FIFO
    restarts a first (submitted at 0), LAS starts c first (a lower LAS queue)."""
    result = run(LAS_ROWS, policy, TWO_NODES, quotas=True, awards=two_projects())
    got = spans(result)
    assert got["a"][0] == (0.0, 4_000.0, STOPPED)
    assert got["b"] == [(4_000.0, 4_100.0, DONE)]
    assert got["a"][1:] == expected["a"]
    assert got["c"] == expected["c"]


def test_capacity_added_removed_and_added_again() -> None:
    """A 16-GPU job on a one-node cluster waits for the node added at 50; removing that node
    at 100 stops it (nothing saved: it ran 50 s, checkpoints every 60 s); a node added at 200
    lets it run its whole 100 s again."""
    cluster = ClusterSpec.from_mapping(
        {
            "node_groups": [{"gpu_type": "H100", "nodes": 1}],
            "changes": [{"at": 50, "add": 1}, {"at": 100, "remove": 1}, {"at": 200, "add": 1}],
        }
    )
    result = run([row("a", 16, 100, 0)], "fifo", cluster)
    (a,) = result.histories
    assert [(r.start, r.end, r.outcome, r.lost) for r in a.runs] == [
        (50.0, 100.0, STOPPED, 50.0),
        (200.0, 300.0, DONE, 0.0),
    ]
    capacity = dict(zip(result.timeline.times, result.timeline.capacity["H100"], strict=True))
    # 150, when a's first run would have ended, changes nothing and is not a sample
    assert capacity == {0.0: 8, 50.0: 16, 100.0: 8, 200.0: 16, 300.0: 16}
    # M3: 16 x 150 GPU-seconds held over 8 x 50 + 16 x 50 + 8 x 100 + 16 x 100 in service
    assert result.metrics.utilisation == pytest.approx(16 * 150 / (400 + 800 + 800 + 1600))


def test_a_drained_node_finishes_its_job_takes_nothing_new_and_comes_back() -> None:
    """x runs on one node from 0 to 50; at 10 one node drains for 100 s (the last one, which
    x is not on: placement fills the first node); y needs both nodes and starts at 110."""
    cluster = ClusterSpec.from_mapping(
        {
            "node_groups": [{"gpu_type": "H100", "nodes": 2}],
            "changes": [{"at": "10s", "drain": 1, "for": "100s"}],
        }
    )
    result = run([row("x", 8, 50, 0), row("y", 16, 30, 20)], "fifo", cluster)
    assert spans(result) == {"x": [(0.0, 50.0, DONE)], "y": [(110.0, 140.0, DONE)]}


def test_a_job_longer_than_its_walltime_is_cut() -> None:
    rows = [TraceRecord("t", "p1", 0.0, 8, 500.0, "H100", walltime=300.0)]
    result = run(rows, "fifo", ONE_NODE)
    assert spans(result) == {"t": [(0.0, 300.0, CUT)]}
    assert result.metrics.timed_out == 1


def test_a_job_larger_than_the_cluster_is_refused_not_replayed() -> None:
    result = run([row("huge", 64, 10, 0), row("ok", 8, 10, 0)], "fifo", TWO_NODES)
    assert [h.job.id for h in result.histories] == ["ok"]
    assert result.refused == 1


def test_the_same_inputs_replay_to_the_same_result() -> None:
    rows = [
        *LAS_ROWS,
        *[row(f"n{i}", 1 + i % 8, 50 + 37 * i, 13 * i, f"p{1 + i % 2}") for i in range(40)],
    ]
    cluster = ClusterSpec.from_mapping(
        {
            "node_groups": [{"gpu_type": "H100", "nodes": 2}],
            "changes": [{"at": 300, "drain": 1, "for": 600}, {"at": 900, "add": 1}],
        }
    )
    first = run(rows, "fair-share", cluster, quotas=True, awards=two_projects())
    second = run(rows, "fair-share", cluster, quotas=True, awards=two_projects())
    assert first.histories == second.histories
    assert first.metrics == second.metrics
    assert list(first.timeline.times) == list(second.timeline.times)
