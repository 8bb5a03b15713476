"""What a cycle decides: admissions, preemptions, and a reason for every job left pending."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from kizuna.kernel.ids import GpuType, JobId
from kizuna.kernel.units import Instant, Seconds
from kizuna.scheduling.model import Allocation


class ReasonCode(StrEnum):
    """Why a job waits. Stable codes for scripts; `Reason.message` is for people (ADR 0004)."""

    INVALID = "invalid"
    """The request can never run on this cluster as written."""
    CAPACITY = "capacity"
    """More GPUs than the cluster has up right now (nodes down or draining)."""
    NO_QUOTA = "no-quota"
    """The project holds no quota for this GPU type."""
    QUOTA = "quota"
    """The project's quota (nominal plus borrowing limit) is in use."""
    COHORT = "cohort"
    """The job would borrow, and the cohort has no idle quota left to lend."""
    BUDGET = "budget"
    """The award's remaining GPU-hours cannot cover walltime x GPUs."""
    RESOURCES = "resources"
    """Enough quota, not enough free GPUs in the shape the gang needs."""
    RECLAIMING = "reclaiming"
    """Within its nominal quota; borrowed GPUs are being reclaimed for it."""
    PRIORITY = "priority"
    """Behind jobs of higher priority that hold the line (no backfill, or no hole fits)."""
    BACKFILL = "backfill"
    """Would fit now, but would delay the reserved start of a higher job."""
    RESERVED = "reserved"
    """The free GPUs are held by a reservation of another project."""


class Reason(NamedTuple):
    """Why one job waits: a code for scripts, a sentence for people, a start estimate if known.

    A named tuple rather than a dataclass: a cycle creates one per waiting job (ADR 0008).
    """

    code: ReasonCode
    message: str
    earliest_start: Instant | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """Start `job` on `allocation` now."""

    job: JobId
    allocation: Allocation
    borrowing: bool = False
    """True when the job runs on quota borrowed from its cohort, so it may be reclaimed."""
    backfilled: bool = False
    """True when the job started ahead of a blocked higher job without delaying it."""


@dataclass(frozen=True, slots=True)
class Preemption:
    """Send `job` its checkpoint signal; it must release its GPUs within `grace`."""

    job: JobId
    for_job: JobId
    grace: Seconds
    reason: str


@dataclass(frozen=True, slots=True)
class ShadowReservation:
    """EASY backfill's promise to the highest blocked job of a GPU type (ADR 0006)."""

    job: JobId
    gpu_type: GpuType
    start: Instant
    """The earliest instant the job can start if no one jumps ahead ("shadow time")."""


@dataclass(frozen=True)
class CycleResult:
    """Everything one `run_cycle` decided."""

    admissions: tuple[Admission, ...]
    preemptions: tuple[Preemption, ...]
    reasons: Mapping[JobId, Reason]
    """A reason for every pending job that was not admitted."""
    shadows: tuple[ShadowReservation, ...] = ()
    order: Sequence[JobId] = ()
    """The pending jobs in the order the cycle considered them (the queue, by position)."""

    def admitted(self) -> frozenset[JobId]:
        return frozenset(a.job for a in self.admissions)

    def preempted(self) -> frozenset[JobId]:
        return frozenset(p.job for p in self.preemptions)
