"""Sentences for waiting jobs: what the job needs, what there is, and when it may start."""

from __future__ import annotations

from functools import lru_cache

from kizuna.kernel.units import Instant, format_clock, format_duration
from kizuna.scheduling.decisions import Reason, ReasonCode
from kizuna.scheduling.model import Job


def request(job: Job) -> str:
    """'16 H100', '2 nodes x 8 H100', with ' in one NVLink domain' when required."""
    t = job.gpu_type
    text = f"{job.nodes} nodes x {job.gpus_per_node} {t}" if job.nodes else f"{job.gpus} {t}"
    return text + (" in one NVLink domain" if job.one_domain else "")


@lru_cache(maxsize=256)
def when(start: Instant, now: Instant) -> str:
    """'~14:20 UTC (in 2h 10m)'; every job behind one head in a cycle shares it, so it is
    remembered."""
    return f"~{format_clock(start)} UTC (in {format_duration(start - now)})"


def resources(job: Job, free: int, now: Instant, start: Instant | None) -> Reason:
    """For the highest blocked job of its type."""
    text = f"needs {request(job)}, {free} free"
    if start is not None:
        text += f"; earliest start {when(start, now)}"
    return Reason(ReasonCode.RESOURCES, text, start)


def behind(job: Job, head: Job, start: Instant, now: Instant) -> Reason:
    """For a blocked job after the highest one: it waits its turn."""
    return Reason(
        ReasonCode.RESOURCES,
        f"needs {request(job)}; waits behind higher-priority {job.gpu_type} jobs:"
        f" job {head.id} is promised the next start, {when(start, now)}",
    )


def priority(job: Job, head: Job, start: Instant, now: Instant) -> Reason:
    return Reason(
        ReasonCode.PRIORITY,
        f"waits its turn behind job {head.id}, which holds the line for {job.gpu_type}"
        f" until {when(start, now)} (backfill is off)",
    )


def backfill(job: Job, head: Job, start: Instant, now: Instant) -> Reason:
    return Reason(
        ReasonCode.BACKFILL,
        f"fits now but would delay job {head.id}, reserved to start {when(start, now)};"
        f" a walltime of at most {format_duration(start - now)} would let it backfill",
    )


def kept(job: Job, head: Job, start: Instant, now: Instant, what: str) -> Reason:
    """For a job that fits now but would take what the shadow job needs at its start."""
    return Reason(
        ReasonCode.BACKFILL,
        f"fits now, but {what} is kept for job {head.id}, promised to start {when(start, now)}",
    )


def reserved(job: Job, start: Instant | None, now: Instant) -> Reason:
    text = (
        f"the free {job.gpu_type} are held by another project's reservation;"
        " a walltime that ends before the reservation opens would let it run"
    )
    if start is not None:
        text += f"; earliest start {when(start, now)}"
    return Reason(ReasonCode.RESERVED, text, start)


def capacity(job: Job, problems: list[str]) -> Reason:
    return Reason(ReasonCode.CAPACITY, "; ".join(problems) + " (nodes are down or draining)")


def reclaiming(job: Job, victims: int, start: Instant, now: Instant) -> Reason:
    what = (
        f"{victims} borrowing job{'s' * (victims != 1)} preempted" if victims else "preempted jobs"
    )
    return Reason(
        ReasonCode.RECLAIMING,
        f"within its nominal quota: {what} to give back {request(job)};"
        f" starts when they stop, {when(start, now)}",
        start,
    )
