"""Synthetic traces shaped like Philly, from a seed: for demos and for scale beyond real traces.

The shape follows the published Philly statistics (the job summary Pollux ships, from
Jeon et al., ATC'19):

- gang sizes: drawn with Philly's GPUs-per-job counts as weights (sizes above `max_gpus` are
  left out of the table);
- durations: a lognormal with Philly's median (1,144 s) and 90th percentile (11,265 s),
  rounded to whole seconds and clipped to [1 s, Philly's 99th percentile, 254,758 s]. The
  fitted lognormal's tail is lighter than Philly's, so the mean is lower (about 5,600 s
  against Philly's 13,136 s);
- projects: `vc01`, `vc02`, ... in falling popularity, which follows Philly's jobs per
  virtual cluster: the i-th of n projects gets the share that the i-th n-th of Philly's VCs
  (ranked by jobs, shares interpolated linearly) submitted, so 15 projects get exactly
  Philly's shares;
- arrivals: Poisson, at `arrival_rate` jobs per hour, or else at the rate that offers
  `load` x `cluster_gpus` GPUs of work on average;
- walltimes: the duration times a factor drawn from [1.2, 3.0] (users overestimate), rounded
  up to whole minutes; every job has the normal priority.

Only `random.Random(seed)` is used, with the draws of each job made in a fixed order, so one
seed always gives the same trace. Records are made one at a time (`records`), so
`synthesize_to` writes a million jobs without holding them.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from statistics import NormalDist

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces.canonical import write_trace
from kizuna.traces.model import Trace, TraceRecord

PHILLY_GANGS: tuple[tuple[int, int], ...] = (
    (1, 76_627),
    (2, 1_818),
    (4, 1_870),
    (8, 1_643),
    (12, 7),
    (16, 199),
    (24, 7),
    (32, 67),
    (64, 6),
    (128, 3),
)
"""(GPUs per job, jobs) in Philly."""

PHILLY_VC_JOBS: tuple[int, ...] = (
    41_226,
    16_091,
    9_953,
    7_423,
    1_934,
    1_511,
    1_435,
    1_137,
    723,
    422,
    374,
    8,
    4,
    3,
    3,
)
"""Jobs per Philly virtual cluster, most to fewest."""

MEDIAN_DURATION = 1_144.0
P90_DURATION = 11_265.0
MIN_DURATION = 1.0
MAX_DURATION = 254_758.0
"""Philly's 99th percentile: no synthetic job runs longer."""
WALLTIME_FACTOR: tuple[float, float] = (1.2, 3.0)

_SIGMA = math.log(P90_DURATION / MEDIAN_DURATION) / NormalDist().inv_cdf(0.9)
_MU = math.log(MEDIAN_DURATION)


@dataclass(frozen=True, slots=True)
class SynthSpec:
    """What to generate; the defaults make a busy Philly-like cluster of 1,024 GPUs."""

    jobs: int = 1_000
    seed: int = 0
    projects: int = 15
    load: float = 0.8
    """Offered GPU work over `cluster_gpus`, on average (unused with `arrival_rate`)."""
    cluster_gpus: int = 1_024
    arrival_rate: float | None = None
    """Jobs per hour; None: the rate that offers `load` x `cluster_gpus`."""
    gpu_type: str | None = None
    """The GPU type every job asks for; None: any."""
    max_gpus: int | None = None
    """The largest gang; None: Philly's largest (128)."""


def synthesize(spec: SynthSpec) -> Trace:
    """The whole trace `spec` describes, in submit order."""
    return Trace(tuple(records(spec)), "synth")


def synthesize_to(spec: SynthSpec, path: Path) -> int:
    """Write the trace as canonical CSV or JSON Lines (by `path`'s suffix) one job at a time;
    returns how many jobs were written."""
    return write_trace(records(spec), path)


def records(spec: SynthSpec) -> Iterator[TraceRecord]:
    """The jobs `spec` describes, one at a time; raises `InvalidRequest` at once on a bad spec."""
    problems = _problems(spec)
    if problems:
        raise InvalidRequest(problems)
    gangs = [(gpus, weight) for gpus, weight in PHILLY_GANGS if gpus <= (spec.max_gpus or gpus)]
    return _draw(spec, gangs, _rate(spec, gangs))


def project_shares(count: int) -> list[float]:
    """The share of jobs of each of `count` projects, most popular first (sums to 1)."""
    whole = sum(PHILLY_VC_JOBS)
    points = [0.0, *(jobs / whole for jobs in accumulate(PHILLY_VC_JOBS))]
    span = len(PHILLY_VC_JOBS)

    def share_below(x: float) -> float:
        at = min(int(x * span), span - 1)
        return points[at] + (points[at + 1] - points[at]) * (x * span - at)

    return [share_below((k + 1) / count) - share_below(k / count) for k in range(count)]


def mean_duration() -> float:
    """The expected duration of a synthetic job: the clipped lognormal's mean."""
    unit = NormalDist()
    low = (math.log(MIN_DURATION) - _MU) / _SIGMA
    high = (math.log(MAX_DURATION) - _MU) / _SIGMA
    middle = math.exp(_MU + _SIGMA**2 / 2) * (unit.cdf(high - _SIGMA) - unit.cdf(low - _SIGMA))
    return MIN_DURATION * unit.cdf(low) + middle + MAX_DURATION * (1 - unit.cdf(high))


def _problems(spec: SynthSpec) -> list[str]:
    checks = [
        (spec.jobs >= 0, f"the number of jobs cannot be negative (got {spec.jobs})"),
        (spec.projects >= 1, f"a trace needs at least one project (got {spec.projects})"),
        (spec.load > 0, f"the load must be positive (got {spec.load:g})"),
        (spec.cluster_gpus >= 1, f"the cluster needs at least one GPU (got {spec.cluster_gpus})"),
        (
            spec.arrival_rate is None or spec.arrival_rate > 0,
            f"the arrival rate must be positive (got {spec.arrival_rate})",
        ),
        (
            spec.max_gpus is None or spec.max_gpus >= 1,
            f"the largest gang needs at least one GPU (got {spec.max_gpus})",
        ),
    ]
    return [message for ok, message in checks if not ok]


def _rate(spec: SynthSpec, gangs: Sequence[tuple[int, int]]) -> float:
    """Arrivals per second."""
    if spec.arrival_rate is not None:
        return spec.arrival_rate / 3600
    mean_gpus = sum(gpus * weight for gpus, weight in gangs) / sum(w for _, w in gangs)
    return spec.load * spec.cluster_gpus / (mean_gpus * mean_duration())


def _draw(spec: SynthSpec, gangs: Sequence[tuple[int, int]], rate: float) -> Iterator[TraceRecord]:
    rng = random.Random(spec.seed)
    width = max(2, len(str(spec.projects)))
    names = [f"vc{k + 1:0{width}d}" for k in range(spec.projects)]
    name_cuts = list(accumulate(project_shares(spec.projects)))
    sizes = [gpus for gpus, _ in gangs]
    size_cuts = list(accumulate(weight for _, weight in gangs))
    low, high = WALLTIME_FACTOR
    digits = len(str(spec.jobs))
    now = 0.0
    for n in range(spec.jobs):
        now += rng.expovariate(rate)
        project = names[bisect_right(name_cuts, rng.random() * name_cuts[-1])]
        gpus = sizes[bisect_right(size_cuts, rng.random() * size_cuts[-1])]
        duration = float(min(max(round(rng.lognormvariate(_MU, _SIGMA)), 1), MAX_DURATION))
        walltime = math.ceil(duration * rng.uniform(low, high) / 60) * 60.0
        yield TraceRecord(
            f"synth-{n + 1:0{digits}d}",
            project,
            round(now, 3),
            gpus,
            duration,
            spec.gpu_type,
            walltime,
        )
