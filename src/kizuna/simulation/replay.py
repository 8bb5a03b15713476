"""Replay a workload through the scheduling core, one discrete event at a time (ADR 0014).

The loop, as cited below:
 E1 move the simulated clock to the next event's instant and charge fair-share usage for
    the GPUs held since the previous instant; the scheduler sees usage as of the start of
    the current `usage_period` (as Slurm's PriorityCalcPeriod), so between two such instants
    the projects it sees are the very same objects and its queue stays sorted (ADR 0013);
 E2 apply every event due then, in (time, priority, sequence) order: ends and preemption
    stops free their GPUs first, then nodes change, then arrivals join the queue. A stopped
    job is requeued with the work it had checkpointed; a removed node stops its jobs at once;
 E3 if an event changed something (not only wake-ups for runs that already ended) and
    jobs are pending, build a `Snapshot` and run a cycle through a `Scheduler` (exactly
    what `run_cycle` gives): the very code the live service runs, never told that time is
    simulated;
 E4 apply its decisions: an admitted job starts now and ends at start + min(work left +
    restart overhead if it ran before, walltime); a preempted job keeps its GPUs until now +
    grace, then stops;
 E5 record a timeline sample: GPUs busy and in service per type, jobs and GPUs waiting.

A stopped job is requeued with its first submit time (it keeps its place in line) and its
`attained` service grown by the GPU time it held; the job it made room for still goes first,
as the cycle considers jobs within nominal quota before borrowing ones (quota rule Q5).
The scheduler sees only walltimes, never true durations. The same inputs give the same
result, bit for bit: every order is fixed by the event queue and by sorted ids.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType, JobId, NodeId, ProjectId
from kizuna.kernel.units import HOUR, MINUTE, GpuSeconds, Instant, Seconds
from kizuna.scheduling import (
    Admission,
    CycleResult,
    PendingChanges,
    Policy,
    Preemption,
    Scheduler,
)
from kizuna.scheduling.fair_share import decay
from kizuna.scheduling.model import (
    Job,
    Node,
    NodeState,
    Project,
    RunningJob,
    Snapshot,
    UsageRecord,
)
from kizuna.simulation.clock import SimClock
from kizuna.simulation.cluster import NodeChange
from kizuna.simulation.events import NORMAL, URGENT, EventQueue
from kizuna.simulation.metrics import JobHistory, Metrics, Outcome, Run, summarize
from kizuna.simulation.pending import PendingJobs
from kizuna.simulation.timeline import Timeline
from kizuna.simulation.workload import TraceJob, Workload

CycleHook = Callable[[Instant, Snapshot, CycleResult], None]
"""Called after every cycle with the snapshot it saw and what it decided (before E4)."""
ProgressHook = Callable[[int, int], None]
"""Called after every instant with (jobs finished, jobs in the workload)."""

CAPACITY = 1
"""Event priority of node changes: after releases (URGENT), before arrivals (NORMAL + 1)."""
ARRIVAL = NORMAL + 1


@dataclass(frozen=True)
class ReplayOptions:
    """How jobs checkpoint and restart, and how the scheduler sees fair-share usage."""

    checkpoint_interval: Seconds = Seconds(30 * MINUTE)
    """Jobs save their work this often; a preemption loses what ran since the last save."""
    restart_overhead: Seconds = Seconds(60.0)
    """Runtime a restarted job spends before doing new work (reloading its checkpoint)."""
    half_life: Seconds = Seconds(7 * 24 * HOUR)
    """Fair-share usage half-life; the same default as the fair-share policy's."""
    usage_period: Seconds = Seconds(5 * MINUTE)
    """How often the usage the scheduler sees is brought up to date (E1); 0: every event."""

    def problems(self) -> list[str]:
        checks = [
            (self.checkpoint_interval > 0, "the checkpoint interval must be positive"),
            (self.restart_overhead >= 0, "the restart overhead cannot be negative"),
            (self.half_life > 0, "the fair-share half-life must be positive"),
            (self.usage_period >= 0, "the usage period cannot be negative"),
        ]
        return [
            f"{message} (got {value:g})"
            for (ok, message), value in zip(
                checks,
                (
                    self.checkpoint_interval,
                    self.restart_overhead,
                    self.half_life,
                    self.usage_period,
                ),
                strict=True,
            )
            if not ok
        ]


@dataclass(frozen=True)
class ReplayResult:
    """What happened to every job under one policy, and the metrics that sum it up."""

    policy: str
    histories: tuple[JobHistory, ...]
    """One per job, in the workload's order."""
    metrics: Metrics
    cycles: int
    """How many times `run_cycle` was called."""
    timeline: Timeline
    refused: int = 0
    """Jobs of the trace no cluster state could run (never replayed)."""
    walked: int = 0
    """Cycles the scheduler walked; the others it answered from the walk of a cycle that
    decided nothing (ADR 0026)."""


def replay(
    workload: Workload,
    policy: Policy,
    options: ReplayOptions = ReplayOptions(),
    *,
    on_progress: ProgressHook | None = None,
    on_cycle: CycleHook | None = None,
) -> ReplayResult:
    """Run `workload` under `policy` until no event is left. Deterministic: the same
    arguments always give the same result."""
    problems = options.problems()
    if problems:
        raise InvalidRequest(problems)
    with _fewer_collections():
        loop = _Replay(workload, policy, options, on_cycle)
        total = len(workload.jobs)
        while (at := loop.queue.next_time()) is not None:
            loop.step(at)
            if on_progress is not None:
                on_progress(loop.finished, total)
        return loop.result()


YOUNG_COLLECTION_AFTER = 50_000
"""Allocations between two collections of young objects while a replay runs (CPython's
default is 700). A replay makes millions of small objects that live until the next event or
to its end, and almost none in reference cycles: with the default, collecting them took
~4 % of the whole Philly replay, for nothing to free (peak memory is the same)."""


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """The garbage collector's young generation collected less often while the block runs
    (the thresholds are the process's: set back on leaving)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], YOUNG_COLLECTION_AFTER), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


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
    restarted: bool
    """True when this run began by reloading a checkpoint (its first seconds redo nothing)."""


NO_USAGE = (0.0, Instant(0.0))


class _Replay:
    """The state of one replay; each method is one step of the loop."""

    def __init__(
        self,
        workload: Workload,
        policy: Policy,
        options: ReplayOptions,
        on_cycle: CycleHook | None,
    ) -> None:
        self.workload = workload
        self.policy = policy
        self.options = options
        self.scheduler = Scheduler(policy)
        """The live loop's own cycle runner: the same decisions as `run_cycle`, kept warm."""
        self.on_cycle = on_cycle
        self.trace: dict[JobId, TraceJob] = _index(workload)
        self.queue: EventQueue[_Arrival | _Release | NodeChange] = EventQueue()
        for t in workload.jobs:
            self.queue.push(t.job.submit_time, _Arrival(t.job.id), ARRIVAL)
        for change in workload.changes:
            self.queue.push(Instant(change.at), change, CAPACITY)
        first = min((t.job.submit_time for t in workload.jobs), default=Instant(0.0))
        self.clock = SimClock(first)
        self.charged_at = first
        self.node_map: dict[NodeId, Node] = {n.id: n for n in workload.nodes}
        self.nodes = workload.nodes
        self.pending = PendingJobs()
        self.pending_gpus = 0
        self.arrived: list[Job] = []
        self.departed: list[JobId] = []
        self.came: dict[int, RunningJob] = {}
        self.gone: list[RunningJob] = []
        """How the pending jobs changed since the last cycle (the scheduler's queue)."""
        self.active: dict[JobId, _Active] = {}
        self.running: dict[JobId, RunningJob] = {}
        self.shown: tuple[RunningJob, ...] | None = None
        """`running` as the last snapshot showed it; None once it changed."""
        """What the scheduler sees of `active`, in the same order."""
        self.left = {jid: float(t.duration) for jid, t in self.trace.items()}
        self.runs: dict[JobId, list[Run]] = {jid: [] for jid in self.trace}
        self.usage = {
            pid: (p.usage.gpu_seconds, p.usage.as_of) for pid, p in workload.projects.items()
        }
        """Each project's fair-share usage as (GPU-seconds, as of): a `UsageRecord`'s fields,
        made into one only when the scheduler is shown them (E1)."""
        self.seen_period: float | None = None
        self.projects: dict[ProjectId, Project] = dict(workload.projects)
        types = {n.gpu_type: None for n in workload.nodes}
        types.update({c.node.gpu_type: None for c in workload.changes if c.node is not None})
        self.timeline = Timeline(tuple(types))
        self.busy: dict[GpuType, int] = dict.fromkeys(types, 0)
        self.held: dict[ProjectId, int] = dict.fromkeys(sorted(workload.projects), 0)
        """GPUs each project's running jobs hold (charged to its fair-share usage, E1)."""
        self.capacity = _capacity(self.nodes)
        self.started = 0
        self.finished = 0
        self.cycles = 0

    def step(self, at: Instant) -> None:
        self.clock.advance_to(at)  # E1
        self._charge(at)
        changed = [self._apply(payload) for payload in self.queue.pop_due(at)]  # E2
        if not any(changed):
            return  # only stale wake-ups: for the live loop nothing happened
        if self.pending:
            self._cycle(at)  # E3
        self.timeline.add(  # E5
            at, self.busy, self.capacity, len(self.pending), self.pending_gpus
        )

    def result(self) -> ReplayResult:
        histories = tuple(
            JobHistory(t.job, tuple(self.runs[t.job.id]), t.duration) for t in self.trace.values()
        )
        shares = {str(pid): p.shares for pid, p in self.workload.projects.items()}
        return ReplayResult(
            self.policy.name,
            histories,
            summarize(histories, self.timeline, shares),
            self.cycles,
            self.timeline,
            len(self.workload.refused),
            self.scheduler.walks,
        )

    # -- E1: fair-share usage ---------------------------------------------------------------

    def _charge(self, now: Instant) -> None:
        elapsed = now - self.charged_at
        if elapsed > 0:
            usage, half_life = self.usage, self.options.half_life
            weights: dict[float, float] = {}
            for pid, gpus in self.held.items():
                if not gpus:
                    continue
                held, at = usage.get(pid, NO_USAGE)
                weight = weights.get(at)
                if weight is None:  # most projects were last charged at the same instant
                    weight = weights[at] = decay(max(0.0, now - at), half_life)
                usage[pid] = (held * weight + gpus * elapsed, now)  # as `charge` does
            self.charged_at = now
        period = self.options.usage_period
        current = math.floor(now / period) if period > 0 else now
        if current != self.seen_period:
            self.seen_period = current
            shown, projects = self.projects, {}
            for pid, p in self.workload.projects.items():
                record, before = self.usage[pid], shown[pid]
                if (before.usage.gpu_seconds, before.usage.as_of) == record:
                    projects[pid] = before  # not charged since it was last shown
                else:
                    projects[pid] = p.with_usage(UsageRecord(*record))
            self.projects = projects

    # -- E2: events -------------------------------------------------------------------------

    def _apply(self, payload: _Arrival | _Release | NodeChange) -> bool:
        """Carry out one event; False when it was stale and changed nothing."""
        if isinstance(payload, _Arrival):
            self._enqueue(self.trace[payload.job].job)
            return True
        if isinstance(payload, NodeChange):
            self._change(payload)
            return True
        active = self.active.get(payload.job)
        if active is None or active.run != payload.run:
            return False  # that run already ended some other way
        self._release(active, preempted=payload.preempted)
        return True

    def _release(self, active: _Active, *, preempted: bool) -> None:
        job = active.running.job
        del self.active[job.id]
        del self.running[job.id]
        self.shown = None
        self._went(active.running)
        self.busy[job.gpu_type] -= job.gpus
        self.held[job.project] -= job.gpus
        if preempted:
            self._stop(active)
        else:
            self._end(active)

    def _went(self, running: RunningJob) -> None:
        """A running job's object leaves the snapshot: one the scheduler never saw is
        simply forgotten."""
        if self.came.pop(id(running), None) is None:
            self.gone.append(running)

    def _end(self, active: _Active) -> None:
        running, now = active.running, self.clock.now()
        outcome = Outcome.COMPLETED if active.completes else Outcome.TIMEOUT
        ran = now - running.start
        lost = Seconds(min(ran, self.options.restart_overhead) if active.restarted else 0.0)
        self.runs[running.job.id].append(Run(running.start, now, running.allocation, outcome, lost))
        self.finished += 1

    def _stop(self, active: _Active) -> None:
        """Requeue a job with the work it checkpointed; the rest of this run is lost."""
        running, now = active.running, self.clock.now()
        job, ran = running.job, now - running.start
        overhead = self.options.restart_overhead if active.restarted else 0.0
        useful = max(0.0, ran - overhead)
        interval = self.options.checkpoint_interval
        kept = min(math.floor(useful / interval) * interval, self.left[job.id])
        self.left[job.id] -= kept
        self.runs[job.id].append(
            Run(running.start, now, running.allocation, Outcome.PREEMPTED, Seconds(ran - kept))
        )
        attained = job.attained + job.gpus * ran
        self._enqueue(replace(job, attained=GpuSeconds(attained)))

    def _enqueue(self, job: Job) -> None:
        self.pending.add(job)
        self.pending_gpus += job.gpus
        self.arrived.append(job)

    def _change(self, change: NodeChange) -> None:
        old = self.node_map.pop(change.id, None)
        if change.node is not None:
            self.node_map[change.id] = change.node
        else:
            hit = [a for a in self.active.values() if change.id in a.running.allocation.nodes]
            for active in sorted(hit, key=lambda a: a.running.job.id):
                self._release(active, preempted=True)
        self.nodes = tuple(self.node_map.values())
        self.capacity = _capacity(self.nodes)
        if old is None and change.node is None:
            raise InvalidRequest([f"node {change.id} is removed but was never added"])

    # -- E3 and E4: the cycle and its decisions ---------------------------------------------

    def _cycle(self, now: Instant) -> None:
        snapshot = Snapshot(
            self.nodes,
            self._shown(),
            self.pending.view(),
            self.projects,
        )
        changes = PendingChanges(self.arrived, self.departed, list(self.came.values()), self.gone)
        result = self.scheduler.cycle(snapshot, now, changes)
        self.arrived, self.departed, self.came, self.gone = [], [], {}, []
        self.cycles += 1
        if self.on_cycle is not None:
            self.on_cycle(now, snapshot, result)
        for admission in result.admissions:  # E4
            self._start(admission, now)
        for preemption in result.preemptions:
            self._preempt(preemption, now)

    def _shown(self) -> tuple[RunningJob, ...]:
        """The running jobs for a snapshot: the last snapshot's tuple while none changed."""
        if self.shown is None:
            self.shown = tuple(self.running.values())
        return self.shown

    def _start(self, admission: Admission, now: Instant) -> None:
        job = self.pending.pop(admission.job)
        self.pending_gpus -= job.gpus
        self.departed.append(job.id)
        self.busy[job.gpu_type] += job.gpus
        self.held[job.project] = self.held.get(job.project, 0) + job.gpus
        restarted = bool(self.runs[job.id])
        left = self.left[job.id] + (self.options.restart_overhead if restarted else 0.0)
        end = Instant(now + min(left, job.walltime))
        self.started += 1
        running = RunningJob(job, now, admission.allocation)
        self.came[id(running)] = running
        self.active[job.id] = _Active(running, self.started, end, left <= job.walltime, restarted)
        self.running[job.id] = running
        self.shown = None
        self.queue.push(end, _Release(job.id, self.started, False), URGENT)

    def _preempt(self, preemption: Preemption, now: Instant) -> None:
        """The job keeps its GPUs through its grace period; if its own end comes first
        (work done or walltime), that end stands and no stop is scheduled."""
        active = self.active[preemption.job]
        stop = Instant(now + preemption.grace)
        self._went(active.running)
        active.running = replace(active.running, stopping_at=stop, stopping_for=preemption.for_job)
        self.running[preemption.job] = active.running
        self.shown = None
        self.came[id(active.running)] = active.running
        if stop < active.end:
            self.queue.push(stop, _Release(preemption.job, active.run, True), URGENT)


def _capacity(nodes: tuple[Node, ...]) -> dict[GpuType, int]:
    """GPUs in service per type: nodes up or draining (a drained node still runs its jobs)."""
    out: dict[GpuType, int] = {}
    for node in nodes:
        if node.state is not NodeState.DOWN:
            out[node.gpu_type] = out.get(node.gpu_type, 0) + node.gpus
    return out


def _index(workload: Workload) -> dict[JobId, TraceJob]:
    trace: dict[JobId, TraceJob] = {}
    for t in workload.jobs:
        if t.job.id in trace:
            raise InvalidRequest([f"job id {t.job.id} appears twice in the workload"])
        trace[t.job.id] = t
    return trace
