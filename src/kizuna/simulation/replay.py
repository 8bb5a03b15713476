"""Replay a workload through the scheduling core, one discrete event at a time (ADR 0002).

The loop, as cited below:
 E1 move the simulated clock to the next event's instant and charge fair-share usage for
    the GPUs held since the previous instant;
 E2 apply every event due then: arrivals join the queue, ends free their GPUs, preemption
    stops free theirs and requeue the job with the work it had checkpointed;
 E3 if jobs are pending, build a `Snapshot` and run a cycle through a `Scheduler` (exactly
    what `run_cycle` gives): the very code the live service runs, never told that time is
    simulated;
 E4 apply its decisions: an admitted job starts now and ends at start + min(work left,
    walltime); a preempted job keeps its GPUs until now + grace, then stops.

A stopped job is requeued with its first submit time (it keeps its place in line) and its
`attained` service grown by the GPU time it held; the job it made room for still goes first,
as the cycle considers jobs within nominal quota before borrowing ones (quota rule Q5).
The scheduler sees only walltimes, never true durations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import JobId, ProjectId
from kizuna.kernel.units import HOUR, MINUTE, GpuSeconds, Instant, Seconds
from kizuna.scheduling import Admission, CycleResult, Policy, Preemption, Scheduler
from kizuna.scheduling.fair_share import charge
from kizuna.scheduling.model import Job, Project, RunningJob, Snapshot, UsageRecord
from kizuna.simulation.clock import SimClock
from kizuna.simulation.events import NORMAL, URGENT, EventQueue
from kizuna.simulation.metrics import JobHistory, Metrics, Outcome, Run, summarize
from kizuna.simulation.workload import TraceJob, Workload

CycleHook = Callable[[Instant, Snapshot, CycleResult], None]
"""Called after every cycle with the snapshot it saw and what it decided (before E4)."""
ProgressHook = Callable[[int, int], None]
"""Called after every instant with (jobs finished, jobs in the workload)."""

DEFAULT_CHECKPOINT_INTERVAL = Seconds(30 * MINUTE)
DEFAULT_HALF_LIFE = Seconds(7 * 24 * HOUR)
"""Fair-share usage half-life; the same default as the fair-share policy's."""


@dataclass(frozen=True)
class ReplayResult:
    """What happened to every job under one policy, and the metrics that sum it up."""

    policy: str
    histories: tuple[JobHistory, ...]
    """One per job, in the workload's order."""
    metrics: Metrics
    cycles: int
    """How many times `run_cycle` was called."""


def replay(
    workload: Workload,
    policy: Policy,
    *,
    checkpoint_interval: Seconds = DEFAULT_CHECKPOINT_INTERVAL,
    half_life: Seconds = DEFAULT_HALF_LIFE,
    on_progress: ProgressHook | None = None,
    on_cycle: CycleHook | None = None,
) -> ReplayResult:
    """Run `workload` under `policy` until no event is left. Deterministic: the same
    arguments always give the same result. Jobs save their work every `checkpoint_interval`
    of runtime; a preemption loses what ran since the last save."""
    if checkpoint_interval <= 0:
        raise InvalidRequest([f"checkpoint interval must be positive (got {checkpoint_interval})"])
    loop = _Replay(workload, policy, checkpoint_interval, half_life, on_cycle)
    total = len(workload.jobs)
    while (event := loop.queue.peek()) is not None:
        loop.step(event.time)
        if on_progress is not None:
            on_progress(loop.finished, total)
    return loop.result()


@dataclass(frozen=True, slots=True)
class _Arrival:
    job: JobId


@dataclass(frozen=True, slots=True)
class _Release:
    """The end of run number `run` of a job: by itself, or as a preemption's stop."""

    job: JobId
    run: int
    preempted: bool


@dataclass(slots=True)
class _Active:
    """A job on GPUs: what the scheduler sees, and when the job will really end."""

    running: RunningJob
    run: int
    end: Instant
    completes: bool
    """True when its work is done by `end`; False when the walltime kills it first."""


class _Replay:
    """The state of one replay; each method is one step of the loop."""

    def __init__(
        self,
        workload: Workload,
        policy: Policy,
        checkpoint_interval: Seconds,
        half_life: Seconds,
        on_cycle: CycleHook | None,
    ) -> None:
        self.workload = workload
        self.policy = policy
        self.scheduler = Scheduler(policy)
        """The live loop's own cycle runner: the same decisions as `run_cycle`, kept warm."""
        self.checkpoint_interval = checkpoint_interval
        self.half_life = half_life
        self.on_cycle = on_cycle
        self.trace: dict[JobId, TraceJob] = _index(workload)
        self.queue: EventQueue[_Arrival | _Release] = EventQueue()
        for t in workload.jobs:
            self.queue.push(t.job.submit_time, _Arrival(t.job.id), NORMAL)
        first = min((t.job.submit_time for t in workload.jobs), default=Instant(0.0))
        self.clock = SimClock(first)
        self.charged_at = first
        self.pending: dict[JobId, Job] = {}
        self.active: dict[JobId, _Active] = {}
        self.left = {jid: float(t.duration) for jid, t in self.trace.items()}
        self.runs: dict[JobId, list[Run]] = {jid: [] for jid in self.trace}
        self.usage = {pid: p.usage for pid, p in workload.projects.items()}
        self.started = 0
        self.finished = 0
        self.cycles = 0

    def step(self, at: Instant) -> None:
        self.clock.advance_to(at)  # E1
        self._charge(at)
        for event in self.queue.pop_due(at):  # E2
            self._apply(event.payload)
        if self.pending:
            self._cycle(at)  # E3

    def result(self) -> ReplayResult:
        histories = tuple(
            JobHistory(t.job, tuple(self.runs[t.job.id])) for t in self.trace.values()
        )
        capacity = sum(n.gpus for n in self.workload.nodes)
        return ReplayResult(
            self.policy.name, histories, summarize(histories, capacity), self.cycles
        )

    # -- E1: fair-share usage ---------------------------------------------------------------

    def _charge(self, now: Instant) -> None:
        elapsed = now - self.charged_at
        if elapsed <= 0:
            return
        held: dict[ProjectId, int] = {}
        for a in self.active.values():
            job = a.running.job
            held[job.project] = held.get(job.project, 0) + job.gpus
        for pid, gpus in held.items():
            record = self.usage.get(pid, UsageRecord())
            self.usage[pid] = charge(record, gpus * elapsed, now, self.half_life)
        self.charged_at = now

    # -- E2: events -------------------------------------------------------------------------

    def _apply(self, payload: _Arrival | _Release) -> None:
        if isinstance(payload, _Arrival):
            self.pending[payload.job] = self.trace[payload.job].job
            return
        active = self.active.get(payload.job)
        if active is None or active.run != payload.run:
            return  # a stale event: that run already ended some other way
        del self.active[payload.job]
        if payload.preempted:
            self._stop(active)
        else:
            self._end(active)

    def _end(self, active: _Active) -> None:
        running, now = active.running, self.clock.now()
        outcome = Outcome.COMPLETED if active.completes else Outcome.TIMEOUT
        self.runs[running.job.id].append(Run(running.start, now, running.allocation, outcome))
        self.finished += 1

    def _stop(self, active: _Active) -> None:
        running, now = active.running, self.clock.now()
        job, ran = running.job, now - running.start
        kept = math.floor(ran / self.checkpoint_interval) * self.checkpoint_interval
        self.left[job.id] -= kept
        lost = Seconds(ran - kept)
        self.runs[job.id].append(
            Run(running.start, now, running.allocation, Outcome.PREEMPTED, lost)
        )
        attained = job.attained + job.gpus * ran
        self.pending[job.id] = replace(job, attained=GpuSeconds(attained))

    # -- E3 and E4: the cycle and its decisions ---------------------------------------------

    def _cycle(self, now: Instant) -> None:
        snapshot = Snapshot(
            self.workload.nodes,
            tuple(a.running for a in self.active.values()),
            tuple(self.pending.values()),
            self._projects(),
        )
        result = self.scheduler.cycle(snapshot, now)
        self.cycles += 1
        if self.on_cycle is not None:
            self.on_cycle(now, snapshot, result)
        for admission in result.admissions:  # E4
            self._start(admission, now)
        for preemption in result.preemptions:
            self._preempt(preemption, now)

    def _projects(self) -> dict[ProjectId, Project]:
        return {
            pid: replace(p, usage=self.usage.get(pid, p.usage))
            for pid, p in self.workload.projects.items()
        }

    def _start(self, admission: Admission, now: Instant) -> None:
        job = self.pending.pop(admission.job)
        left = self.left[job.id]
        end = Instant(now + min(left, job.walltime))
        self.started += 1
        running = RunningJob(job, now, admission.allocation)
        self.active[job.id] = _Active(running, self.started, end, left <= job.walltime)
        self.queue.push(end, _Release(job.id, self.started, False), URGENT)

    def _preempt(self, preemption: Preemption, now: Instant) -> None:
        """The job keeps its GPUs through its grace period; if its own end comes first
        (work done or walltime), that end stands and no stop is scheduled."""
        active = self.active[preemption.job]
        stop = Instant(now + preemption.grace)
        active.running = replace(active.running, stopping_at=stop, stopping_for=preemption.for_job)
        if stop < active.end:
            self.queue.push(stop, _Release(preemption.job, active.run, True), URGENT)


def _index(workload: Workload) -> dict[JobId, TraceJob]:
    trace: dict[JobId, TraceJob] = {}
    for t in workload.jobs:
        if t.job.id in trace:
            raise InvalidRequest([f"job id {t.job.id} appears twice in the workload"])
        trace[t.job.id] = t
    return trace
