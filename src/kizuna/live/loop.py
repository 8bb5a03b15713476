"""One tick of the live loop (ADR 0022): observe runs, run a cycle, launch what it admitted.

T0. Inventory: a backend that knows its nodes (B8, the Ray backend) is asked for them every
    `INVENTORY_EVERY` seconds and the store's nodes follow (inventory.py I1-I4): new ones
    join, dead ones go down (their runs are then stopped in T1), returning ones come up.
T1. Observe: each started run's status from the backend. A run that ended is settled (one
    usage record, ledger L2) and its job moves on: succeeded or failed by its exit codes;
    after a stop, by why it was stopped: preempted -> requeued (pending again, its history
    kept), cancelled, timed out; a run the backend lost, or one on a node that went down
    (killed at once) -> requeued, or failed if the job asked not to be (`Job.requeue`, as
    `sbatch --no-requeue`). A stop asked for
    (preemption, cancellation) or due (walltime less grace, as `sbatch --signal=SIG@grace`)
    sends the job's checkpoint signal once, the kill following at the deadline.
T2. Cycle: in one write transaction, the store's snapshot (picture.py) goes through the
    scheduling core's `Scheduler` (exactly `run_cycle`); admissions become runs holding their
    GPU-hours on an award (ledger L1), preemptions become stops (their signals sent in the
    same tick), and every pending job's reason, when it changed, is stored for `why`. Jobs
    that arrived since the last cycle (up to `ONE_BY_ONE`) are decided one arrival at a time,
    each cycle seeing those before it, as the simulator decides them at their own instants.
T3. Launch: each admitted run is submitted to the backend with the key `job-<id>-<segment>`
    (idempotent, B1), then marked started with the instant the backend started it.

Every step commits what it did before the next looks: killed at any point, the next tick
(in this process or a new one) redoes what was left, and the backend's idempotent keys and
the ledger's one-record-per-run make the redo harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kizuna.execution.backend import (
    Backend,
    HasInventory,
    Launch,
    Rank,
    RunState,
    RunStatus,
)
from kizuna.kernel.ids import JobId
from kizuna.kernel.units import Instant
from kizuna.live.inventory import Inventory
from kizuna.live.picture import Picture, allocation_json, allocation_of, stop_deadline
from kizuna.scheduling import Scheduler, make_policy
from kizuna.services import ledger
from kizuna.services.kinds import JobState
from kizuna.store.engine import reading, writing
from kizuna.store.tables import Job, JobEvent, Node, Run

log = logging.getLogger("kizuna.loop")
ACTOR = "kizuna:loop"
RECHECK = 2.0
INVENTORY_EVERY = 2.0
"""Seconds between two looks at a backend's nodes (B8), when it keeps an inventory."""
ONE_BY_ONE = 8
"""Up to this many jobs that arrived since the last cycle are decided one arrival at a
time, in submit order, as the simulator's events decide them (T2); more go in one cycle."""
"""Seconds after which a cycle runs even if nothing happened (time alone changes reasons)."""


def run_key(job_id: int, segment: int) -> str:
    return f"job-{job_id}-{segment}"


@dataclass
class TickReport:
    ended: int = 0
    signalled: int = 0
    admitted: int = 0
    preempted: int = 0
    started: int = 0
    cycled: bool = False


@dataclass
class Loop:
    sessions: sessionmaker[Session]
    backend: Backend
    home: Path
    clock: Callable[[], datetime]
    policy: str = "fair-share"
    env: Mapping[str, str] = field(default_factory=dict)
    scheduler: Scheduler = field(init=False)
    picture: Picture = field(default_factory=Picture)
    _last_cycle: float = float("-inf")
    _seen: tuple[int, int] | None = None
    _wanted: bool = True
    _cycled_up_to: int = 0
    """The newest job id a cycle has seen: later ones arrived since."""
    inventory: Inventory = field(default_factory=Inventory)
    _last_inventory: float = float("-inf")

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(make_policy(self.policy))

    def want_cycle(self) -> None:
        """Something changed (a submission, a cancellation, a node): cycle at the next tick."""
        self._wanted = True

    def tick(self) -> TickReport:
        report = TickReport()
        self._take_inventory()
        self._observe(report)
        if self._should_cycle(report):
            self._cycle(report)
            if report.preempted:
                self._observe(report)  # the checkpoint signals go out now, not a tick later
        self._launch(report)
        return report

    # -- T1 ---------------------------------------------------------------------------------

    def _take_inventory(self) -> None:
        """B8: a backend that knows its nodes keeps the store's in step (inventory.py)."""
        now = self.clock()
        if not isinstance(self.backend, HasInventory):
            return
        if now.timestamp() - self._last_inventory < INVENTORY_EVERY:
            return
        self._last_inventory = now.timestamp()
        try:
            facts = self.backend.nodes()
        except Exception:  # the backend's own errors (a lost connection): try next time
            log.exception("cannot read the backend's nodes")
            return
        with writing(self.sessions) as session:
            changes = self.inventory.reconcile(session, facts, now)
        if changes:
            log.info("nodes: %s", "; ".join(changes))
            self._wanted = True

    def _observe(self, report: TickReport) -> None:
        with reading(self.sessions) as session:
            started = [
                (run, job)
                for run, job in session.execute(
                    select(Run, Job)
                    .join(Job, Job.id == Run.job_id)
                    .where(Run.ended_at.is_(None), Run.state != "admitted")
                    .order_by(Run.id)
                )
            ]
        if not started:
            return
        now = self.clock()
        ended: list[tuple[int, RunStatus]] = []
        stops: list[tuple[int, str, datetime]] = []
        down = self._down_nodes()
        for run, job in started:
            seen = self._watch(run, job, now, down)
            if isinstance(seen, RunStatus):
                ended.append((run.id, seen))
            elif seen is not None:
                stops.append((run.id, *seen))
        if not ended and not stops:
            return
        with writing(self.sessions) as session:
            now = self.clock()
            for run_id, kind, deadline in stops:
                stopping = session.get(Run, run_id)
                if stopping is None or stopping.ended_at is not None:
                    continue
                if stopping.stop_kind is None:
                    stopping.stop_kind = kind
                stopping.stop_signalled_at, stopping.stop_deadline = now, deadline
                stopping.state = "stopping"
                owner = session.get(Job, stopping.job_id)
                assert owner is not None
                if kind == "timed-out":
                    message = f"walltime reached: {owner.signal} sent"
                    _event(session, owner, now, "timing-out", message)
                elif kind == "node-down":
                    _event(session, owner, now, "node-down", "a node of its run went down")
                report.signalled += 1
            for run_id, status in ended:
                if self._end(session, run_id, status, now):
                    report.ended += 1
                if status.state is RunState.LOST:  # its node may be gone: look again now
                    self._last_inventory = float("-inf")

    def _watch(
        self, run: Run, job: Job, now: datetime, down: set[str]
    ) -> RunStatus | tuple[str, datetime] | None:
        """One started run: its status if it ended; the stop kind and deadline if a stop
        is due now (the signal is sent here); None otherwise."""
        key = run_key(job.id, run.segment)
        try:
            status = self.backend.status(key)
        except KeyError:
            status = RunStatus(key, RunState.LOST, ())
        if status.state is not RunState.RUNNING:
            return status
        kind = run.stop_kind
        if kind is None and down & {str(n) for n in allocation_of(run.allocation).nodes}:
            kind = "node-down"
        if kind is None and _walltime_due(run, job, now):
            kind = "timed-out"
        if kind is not None and run.stop_signalled_at is None:
            deadline = run.stop_deadline or stop_deadline(run, job, now)
            if kind == "timed-out":
                deadline = _walltime_end(run, job)
            elif kind == "node-down":
                deadline = now  # nothing to save it on: the GPUs are gone
            grace = max(0.0, (deadline - now).total_seconds())
            self.backend.cancel(key, grace, job.signal)
            return kind, deadline
        if run.stop_deadline is not None and now >= run.stop_deadline:
            self.backend.cancel(key, 0.0, job.signal)  # the grace is over: kill
        return None

    def _end(self, session: Session, run_id: int, status: RunStatus, now: datetime) -> bool:
        run = session.get(Run, run_id)
        if run is None or run.ended_at is not None:
            return False
        job = session.get(Job, run.job_id)
        assert job is not None
        at = _instant(status.ended_at) if status.ended_at is not None else now
        outcome, state = _outcome(run.stop_kind, status)
        codes = list(status.exit_codes)
        ledger.settle(session, run, job.walltime, at, outcome, codes)
        self._move(session, job, state, at, status, run)
        return True

    def _move(
        self, session: Session, job: Job, state: JobState, at: datetime, status: RunStatus, run: Run
    ) -> None:
        codes = [c for c in status.exit_codes if c is not None]
        code = next((c for c in codes if c != 0), 0 if codes else None)
        detail = f"run {run.segment} ended" + (f", exit code {code}" if code is not None else "")
        if state is JobState.PENDING:
            why = {"lost": "lost by its backend", "node-down": "stopped: its node went down"}.get(
                run.outcome or "", "preempted"
            )
            if job.requeue or run.outcome == "preempted":  # a preemption always requeues
                job.state = JobState.PENDING.value
                _event(session, job, at, "requeued", f"run {run.segment} {why}; back in the queue")
                return
            state = JobState.FAILED
            detail = f"run {run.segment} {why}; the job asked not to be requeued"
        job.state, job.ended_at, job.exit_code = state.value, at, code
        job.reason_code = job.reason_message = None
        job.reason_start = None
        _event(session, job, at, state.value, detail)

    # -- T2 ---------------------------------------------------------------------------------

    def _down_nodes(self) -> set[str]:
        with reading(self.sessions) as session:
            return set(session.scalars(select(Node.name).where(Node.state == "down")))

    def _should_cycle(self, report: TickReport) -> bool:
        now = self.clock().timestamp()
        with reading(self.sessions) as session:
            seen = session.execute(
                select(func.count(), func.max(Job.id)).where(Job.state == JobState.PENDING.value)
            ).one()
        pending, newest = int(seen[0]), int(seen[1] or 0)
        changed = (pending, newest) != self._seen or self._wanted or report.ended > 0
        if not pending:
            self._seen, self._wanted = (pending, newest), False
            return False
        return changed or now - self._last_cycle >= RECHECK

    def _cycle(self, report: TickReport) -> None:
        with writing(self.sessions) as session:
            now = self.clock()
            locking = session.get_bind().dialect.name == "postgresql"
            pending_q = select(Job).where(Job.state == JobState.PENDING.value).order_by(Job.id)
            open_q = select(Run, Job).join(Job, Job.id == Run.job_id).where(Run.ended_at.is_(None))
            if locking:
                pending_q, open_q = pending_q.with_for_update(), open_q.with_for_update()
            pending = list(session.scalars(pending_q))
            open_runs = [(run, job) for run, job in session.execute(open_q.order_by(Run.id))]
            self._seen, self._wanted = (
                (len(pending), max((j.id for j in pending), default=0)),
                False,
            )
            self._last_cycle = now.timestamp()
            report.cycled = True
            if not pending:
                return
            arrived = [j.id for j in pending if j.id > self._cycled_up_to]
            cutoffs = arrived if 1 < len(arrived) <= ONE_BY_ONE else [pending[-1].id]
            for step, cutoff in enumerate(cutoffs):
                if step:  # the previous step's admissions and stops are in this snapshot
                    session.flush()
                    open_runs = [(r, j) for r, j in session.execute(open_q.order_by(Run.id))]
                waiting = [
                    j for j in pending if j.id <= cutoff and j.state == JobState.PENDING.value
                ]
                if waiting:
                    self._decide(session, waiting, open_runs, now, report)
            self._cycled_up_to = pending[-1].id

    def _decide(
        self,
        session: Session,
        pending: list[Job],
        open_runs: list[tuple[Run, Job]],
        now: datetime,
        report: TickReport,
    ) -> None:
        """One cycle of the scheduling core on the store's snapshot, its decisions stored."""
        snapshot = self.picture.snapshot(session, pending, open_runs, now)
        result = self.scheduler.cycle(snapshot, Instant(now.timestamp()))
        by_id = {j.id: j for j in pending}
        admitted: set[int] = set()
        for admission in result.admissions:
            job = by_id[int(admission.job)]
            run = ledger.hold(session, job, now, allocation_json(admission.allocation))
            if run is None:
                _reason(job, "budget", "no single active award covers GPUs x walltime", None)
                continue
            admitted.add(job.id)
            job.state = JobState.ADMITTED.value
            job.reason_code = job.reason_message = None
            job.reason_start = None
            how = " (borrowing)" if admission.borrowing else ""
            how += " (backfilled)" if admission.backfilled else ""
            where = ", ".join(
                f"{n}[{','.join(map(str, ix))}]" for n, ix in admission.allocation.parts
            )
            _event(session, job, now, "admitted", f"run {run.segment} on {where}{how}")
            report.admitted += 1
        runs = {job.id: run for run, job in open_runs}
        for preemption in result.preemptions:
            run = runs.get(int(preemption.job))
            if run is None or run.stop_kind is not None:
                continue
            victim = session.get(Job, run.job_id)
            assert victim is not None
            run.stop_kind, run.for_job = "preempted", int(preemption.for_job)
            run.stop_deadline = stop_deadline(run, victim, now)
            victim.state = JobState.PREEMPTING.value
            _event(session, victim, now, "preempting", preemption.reason)
            report.preempted += 1
        for job in pending:
            if job.id in admitted:
                continue
            reason = result.reasons.get(JobId(str(job.id)))
            if reason is not None:
                start = _instant(reason.earliest_start) if reason.earliest_start else None
                _reason(job, reason.code.value, reason.message, start)
        self.picture.forget(sorted(admitted))

    # -- T3 ---------------------------------------------------------------------------------

    def _launch(self, report: TickReport) -> None:
        with reading(self.sessions) as session:
            waiting = [
                (run, job)
                for run, job in session.execute(
                    select(Run, Job)
                    .join(Job, Job.id == Run.job_id)
                    .where(Run.ended_at.is_(None), Run.state == "admitted")
                    .order_by(Run.id)
                )
            ]
        if not waiting:
            return
        ended: list[tuple[int, RunStatus]] = []
        launched: list[tuple[Run, RunStatus]] = []
        for run, job in waiting:  # every backend call first, then one transaction for all
            key = run_key(job.id, run.segment)
            if run.stop_kind is not None:  # cancelled before it started: nothing ran
                ended.append((run.id, RunStatus(key, RunState.STOPPED, ())))
                continue
            try:
                status = self.backend.submit(self._launch_of(run, job, key))
            except OSError as error:
                log.warning("cannot start %s: %s", key, error)
                ended.append((run.id, RunStatus(key, RunState.FAILED, ())))
                continue
            if status.state is not RunState.RUNNING and status.started_at is None:
                ended.append((run.id, status))  # never started (a gang its backend could
                self._last_inventory = float("-inf")  # not place): look at the nodes again
                continue
            launched.append((run, status))
        with writing(self.sessions) as session:
            now = self.clock()
            for run_id, status in ended:
                self._end(session, run_id, status, now)
            for run, status in launched:
                stored = session.get(Run, run.id)
                if stored is None or stored.state != "admitted":
                    continue
                job_now = session.get(Job, run.job_id)
                assert job_now is not None
                started = _instant(status.started_at) if status.started_at else now
                stored.state, stored.started_at = "running", started
                if job_now.state == JobState.ADMITTED.value:
                    job_now.state = JobState.RUNNING.value
                job_now.started_at = job_now.started_at or started
                ranks = len(self._ranks(run))
                _event(session, job_now, started, "started", f"run {run.segment}: {ranks} ranks")
                report.started += 1

    def _launch_of(self, run: Run, job: Job, key: str) -> Launch:
        env = {
            **self.env,
            "KIZUNA_JOB_ID": str(job.id),
            "KIZUNA_RUN": str(run.segment),
            "KIZUNA_JOB_NAME": job.name,
        }
        workdir = Path(job.workdir) if job.workdir else None
        return Launch(
            key, tuple(job.command), self._ranks(run), self.checkpoints(job.id), env, workdir
        )

    def checkpoints(self, job_id: int) -> Path:
        """The job's stable checkpoint folder, the same for every run."""
        return self.home / "checkpoints" / f"job-{job_id}"

    @staticmethod
    def _ranks(run: Run) -> tuple[Rank, ...]:
        """One rank per GPU, as `torchrun --nproc-per-node=<GPUs on the node>`."""
        allocation = allocation_of(run.allocation)
        return tuple(Rank(str(node), (i,)) for node, indices in allocation.parts for i in indices)


def _instant(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _walltime_end(run: Run, job: Job) -> datetime:
    started = run.started_at or run.admitted_at
    return started + timedelta(seconds=job.walltime)


def _walltime_due(run: Run, job: Job, now: datetime) -> bool:
    return now >= _walltime_end(run, job) - timedelta(seconds=min(job.grace, job.walltime))


def _outcome(stop_kind: str | None, status: RunStatus) -> tuple[str, JobState]:
    """The run's outcome and the job's next state (T1); a lost or node-down run's PENDING
    becomes FAILED in `_move` when the job asked not to be requeued."""
    if status.state is RunState.LOST:
        return "lost", JobState.PENDING
    if status.state is RunState.SUCCEEDED:
        return "succeeded", JobState.SUCCEEDED
    if stop_kind in ("preempted", "node-down"):
        return stop_kind, JobState.PENDING
    if stop_kind == "cancelled":
        return "cancelled", JobState.CANCELLED
    if stop_kind == "timed-out":
        return "timed-out", JobState.TIMED_OUT
    return "failed", JobState.FAILED


def _reason(job: Job, code: str, message: str, start: datetime | None) -> None:
    if (job.reason_code, job.reason_message, job.reason_start) != (code, message, start):
        job.reason_code, job.reason_message, job.reason_start = code, message, start


def _event(session: Session, job: Job, at: datetime, kind: str, message: str) -> None:
    session.add(JobEvent(job_id=job.id, at=at, kind=kind, message=message, actor=ACTOR))
