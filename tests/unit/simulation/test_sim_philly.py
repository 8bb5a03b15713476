"""A real virtual cluster of the Philly trace, replayed under strict FIFO, checked against
the schedule plain arithmetic predicts.

VC 0e4a51 submitted 1,435 jobs of 1, 2 or 4 GPUs over 85 days (77,556 GPU-hours, 38 GPUs
busy on average). On six 8-GPU servers (48 GPUs, ~80 % load) with strict FIFO, no
backfill and no quotas, and gangs that may split across servers, a job starts at the
latest of: its submit time, the start of the job before it, and the instant enough GPUs
are free. That is a dozen lines with a heap of end times; the replay must agree on every
job's start to the second.
"""

from __future__ import annotations

import heapq
from pathlib import Path

import pytest

from kizuna.kernel.units import Seconds
from kizuna.scheduling import make_policy
from kizuna.simulation import ReplayOptions, replay
from kizuna.simulation.cluster import ClusterSpec
from kizuna.simulation.scenario import JobDefaults, build
from kizuna.traces import read_trace
from kizuna.traces.model import TraceRecord

PHILLY = Path(__file__).parents[3] / ".." / "shared" / "data" / "traces" / "philly" / "philly.csv"
VC = "0e4a51"
GPUS = 48

pytestmark = pytest.mark.skipif(not PHILLY.exists(), reason="../shared is absent")


def predicted_starts(jobs: list[TraceRecord], gpus: int) -> dict[str, float]:
    """Strict FIFO on a pool of `gpus` interchangeable GPUs."""
    ends: list[tuple[float, int]] = []
    free, previous, out = gpus, 0.0, {}
    for job in sorted(jobs, key=lambda j: (j.submit, j.id)):
        at = max(job.submit, previous)
        while ends and (ends[0][0] <= at or free < job.gpus):
            end, held = heapq.heappop(ends)
            free += held
            at = max(at, end)
        heapq.heappush(ends, (at + job.duration, job.gpus))
        free -= job.gpus
        out[job.id] = previous = at
    return out


def test_a_philly_virtual_cluster_under_strict_fifo_follows_the_arithmetic() -> None:
    jobs = [r for r in read_trace(PHILLY).records if r.project == VC]
    assert len(jobs) == 1_435 and {r.gpus for r in jobs} == {1, 2, 4}
    workload = build(
        jobs,
        ClusterSpec.uniform(GPUS // 8, "V100", 8),
        defaults=JobDefaults(restart_overhead=Seconds(0)),
    )
    result = replay(
        workload,
        make_policy("fifo", backfill=False, quotas=False, budgets=False),
        ReplayOptions(restart_overhead=Seconds(0)),
    )
    starts = {h.job.id: h.runs[0].start for h in result.histories}
    assert all(len(h.runs) == 1 for h in result.histories)
    expected = predicted_starts(jobs, GPUS)
    assert starts == expected
    waited = sum(starts[j.id] - j.submit for j in jobs)
    assert waited > 0  # the cluster is busy enough for the order to matter
    assert result.metrics.wait.mean == pytest.approx(waited / len(jobs))
