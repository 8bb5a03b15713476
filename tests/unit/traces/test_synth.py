"""Synthetic traces: one seed, one trace; shaped like Philly; streamed to disk."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces import SynthSpec, read_trace, synthesize, synthesize_to
from kizuna.traces.synth import PHILLY_VC_JOBS, mean_duration, project_shares

PHILLY_ONE_GPU_SHARE = 76_627 / 82_247
PHILLY_MEDIAN_DURATION = 1_144.0


@pytest.fixture(scope="module")
def big() -> tuple[SynthSpec, list[float], list[int]]:
    spec = SynthSpec(jobs=50_000, seed=7)
    trace = synthesize(spec)
    return spec, [r.duration for r in trace.records], [r.gpus for r in trace.records]


def test_same_seed_same_trace_and_another_seed_another() -> None:
    spec = SynthSpec(jobs=500, seed=3)
    assert synthesize(spec) == synthesize(SynthSpec(jobs=500, seed=3))
    assert synthesize(spec).records != synthesize(SynthSpec(jobs=500, seed=4)).records


def test_durations_and_gang_sizes_follow_philly(
    big: tuple[SynthSpec, list[float], list[int]],
) -> None:
    _, durations, gpus = big
    assert statistics.median(durations) == pytest.approx(PHILLY_MEDIAN_DURATION, rel=0.05)
    p90 = statistics.quantiles(durations, n=10)[-1]
    assert p90 == pytest.approx(11_265.0, rel=0.08)
    assert gpus.count(1) / len(gpus) == pytest.approx(PHILLY_ONE_GPU_SHARE, abs=0.01)
    assert min(durations) >= 1.0 and max(durations) <= 254_758.0
    assert set(gpus) <= {1, 2, 4, 8, 12, 16, 24, 32, 64, 128}


def test_arrivals_offer_the_asked_load() -> None:
    spec = SynthSpec(jobs=20_000, seed=2, load=0.5, cluster_gpus=512)
    records = synthesize(spec).records
    offered = sum(r.gpus * r.duration for r in records) / (512 * records[-1].submit)
    assert offered == pytest.approx(0.5, rel=0.2)
    assert all(a.submit <= b.submit for a, b in itertools.pairwise(records))


def test_an_arrival_rate_sets_the_jobs_per_hour() -> None:
    records = synthesize(SynthSpec(jobs=5_000, seed=1, arrival_rate=120.0)).records
    assert len(records) / (records[-1].submit / 3600) == pytest.approx(120.0, rel=0.05)


def test_projects_are_named_and_as_skewed_as_philly_vcs() -> None:
    records = synthesize(SynthSpec(jobs=20_000, seed=5)).records
    counts = {p: sum(r.project == p for r in records) for p in ("vc01", "vc02", "vc15")}
    assert counts["vc01"] / len(records) == pytest.approx(41_226 / 82_247, abs=0.02)
    assert counts["vc02"] / len(records) == pytest.approx(16_091 / 82_247, abs=0.02)
    assert {r.project for r in records} <= {f"vc{k:02d}" for k in range(1, 16)}


def test_project_shares_match_philly_for_fifteen_and_sum_to_one() -> None:
    assert project_shares(15) == pytest.approx([n / sum(PHILLY_VC_JOBS) for n in PHILLY_VC_JOBS])
    shares = project_shares(100)
    assert sum(shares) == pytest.approx(1.0)
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(shares))
    assert project_shares(1) == pytest.approx([1.0])


def test_walltimes_overestimate_by_1_2_to_3_times_in_whole_minutes() -> None:
    records = synthesize(SynthSpec(jobs=2_000, seed=9, gpu_type="H100", max_gpus=8)).records
    for r in records:
        assert r.walltime is not None and r.walltime % 60 == 0
        assert 1.2 * r.duration <= r.walltime < 3.0 * r.duration + 60
        assert r.gpus <= 8 and r.gpu_type == "H100" and r.priority == "normal"


def test_the_mean_duration_is_that_of_the_samples(
    big: tuple[SynthSpec, list[float], list[int]],
) -> None:
    assert statistics.fmean(big[1]) == pytest.approx(mean_duration(), rel=0.1)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_streaming_to_a_file_writes_the_same_trace(tmp_path: Path, suffix: str) -> None:
    spec = SynthSpec(jobs=1_000, seed=4)
    path = tmp_path / f"synth{suffix}"
    assert synthesize_to(spec, path) == 1_000
    assert read_trace(path).records == synthesize(spec).records


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (SynthSpec(jobs=-1), "the number of jobs cannot be negative"),
        (SynthSpec(projects=0), "at least one project"),
        (SynthSpec(load=0), "the load must be positive"),
        (SynthSpec(cluster_gpus=0), "at least one GPU"),
        (SynthSpec(arrival_rate=-5.0), "the arrival rate must be positive"),
        (SynthSpec(max_gpus=0), "the largest gang needs at least one GPU"),
    ],
)
def test_a_bad_spec_is_refused_before_anything_is_written(
    tmp_path: Path, spec: SynthSpec, message: str
) -> None:
    path = tmp_path / "synth.csv"
    with pytest.raises(InvalidRequest, match=message):
        synthesize_to(spec, path)
    assert not path.exists()
