"""The metering ledger in the store (ADR 0023): holds on admission, one usage record per run
segment, balances derived from both, usage reports and burn rates.

The rules L1-L4 are `kizuna.ledger.rules`; here they meet the tables. Every function runs in
the caller's transaction: a hold commits with its run, a usage record with the run's end.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kizuna.kernel.ids import GpuType, ProjectId
from kizuna.kernel.units import GpuSeconds
from kizuna.ledger.rules import (
    MS_PER_SECOND,
    Balance,
    Funds,
    burn_rate,
    charge_ms,
    hold_ms,
    pick,
    runs_out,
)
from kizuna.services import projects as project_service
from kizuna.services.errors import InvalidRequest
from kizuna.services.pages import visible_only
from kizuna.services.principal import Principal
from kizuna.store.tables import Award, Job, Organization, Run, UsageRecord

BURN_WINDOW = timedelta(days=7)
LATEST = datetime.max.replace(tzinfo=UTC).timestamp()
"""A runs-out instant past this is no date (a big award burning slowly): reported as None."""


def _active(statement: Any, at: datetime) -> Any:
    return statement.where(Award.starts_at <= at, Award.ends_at > at)


def _charged(session: Session, award_ids: Iterable[str]) -> dict[str, int]:
    ids = list(award_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(UsageRecord.award_id, func.sum(UsageRecord.gpu_ms))
        .where(UsageRecord.award_id.in_(ids))
        .group_by(UsageRecord.award_id)
    )
    return {award: int(total or 0) for award, total in rows}


def _open_runs(session: Session, award_ids: Iterable[str]) -> list[Run]:
    ids = list(award_ids)
    if not ids:
        return []
    return list(session.scalars(select(Run).where(Run.award_id.in_(ids), Run.ended_at.is_(None))))


def balances_of(session: Session, awards: Sequence[Award]) -> dict[str, Balance]:
    """L3 for each award: granted, charged (usage records), held (open runs)."""
    charged = _charged(session, (a.id for a in awards))
    held: dict[str, int] = defaultdict(int)
    for run in _open_runs(session, (a.id for a in awards)):
        held[run.award_id] += run.hold_ms
    return {
        a.id: Balance(a.gpu_seconds * MS_PER_SECOND, charged.get(a.id, 0), held[a.id])
        for a in awards
    }


def funds(session: Session, project_id: str, gpu_type: str, at: datetime) -> list[Funds]:
    """The awards of a project and GPU type active at `at`, with their balances."""
    awards = list(
        session.scalars(
            _active(select(Award), at).where(
                Award.project_id == project_id, Award.gpu_type == gpu_type
            )
        )
    )
    found = balances_of(session, awards)
    return [Funds(a.id, a.ends_at.timestamp(), found[a.id]) for a in awards]


def hold(session: Session, job: Job, at: datetime, allocation: dict[str, Any]) -> Run | None:
    """L1: the job's next run segment, holding GPUs x walltime on the award that covers it
    and ends first; None when no active award covers it alone (the run is not admitted)."""
    need = hold_ms(job.gpus, job.walltime)
    chosen = pick(funds(session, job.project_id, job.gpu_type, at), need)
    if chosen is None:
        return None
    job.segments += 1
    run = Run(
        job_id=job.id,
        segment=job.segments,
        organization_id=job.organization_id,
        project_id=job.project_id,
        award_id=chosen.award,
        gpu_type=job.gpu_type,
        gpus=job.gpus,
        allocation=allocation,
        state="admitted",
        hold_ms=need,
        admitted_at=at,
        started_at=None,
        stop_kind=None,
        stop_signalled_at=None,
        stop_deadline=None,
        for_job=None,
        ended_at=None,
        outcome=None,
        exit_codes=None,
    )
    session.add(run)
    session.flush()
    return run


def settle(
    session: Session,
    run: Run,
    walltime: int,
    ended: datetime,
    outcome: str,
    exit_codes: Sequence[int | None] = (),
) -> UsageRecord | None:
    """L2 and L4: end `run` and write its usage record; nothing when it already ended."""
    if run.ended_at is not None:
        return None
    started = run.started_at or ended
    ended = max(ended, started)
    run.ended_at, run.outcome, run.state = ended, outcome, "ended"
    run.exit_codes = list(exit_codes)
    record = UsageRecord(
        run_id=run.id,
        job_id=run.job_id,
        segment=run.segment,
        award_id=run.award_id,
        project_id=run.project_id,
        organization_id=run.organization_id,
        gpu_type=run.gpu_type,
        gpus=run.gpus,
        started_at=started,
        ended_at=ended,
        gpu_ms=charge_ms(run.gpus, started.timestamp(), ended.timestamp(), walltime),
    )
    session.add(record)
    session.flush()
    return record


def budgets(
    session: Session, project_ids: Iterable[str], at: datetime
) -> dict[ProjectId, dict[GpuType, GpuSeconds]]:
    """What the scheduling core is told each project may still spend per GPU type (ADR
    0010): its active awards' grants less their usage records, less what its open runs have
    used so far (the core itself counts what they may still use until their walltime)."""
    ids = list(project_ids)
    out: dict[ProjectId, dict[GpuType, GpuSeconds]] = {ProjectId(p): {} for p in ids}
    if not ids:
        return out
    awards = list(session.scalars(_active(select(Award), at).where(Award.project_id.in_(ids))))
    charged = _charged(session, (a.id for a in awards))
    left: dict[tuple[str, str], float] = defaultdict(float)
    for a in awards:
        left[(a.project_id, a.gpu_type)] += a.gpu_seconds - charged.get(a.id, 0) / MS_PER_SECOND
    walltimes = {
        job_id: walltime
        for job_id, walltime in session.execute(
            select(Job.id, Job.walltime)
            .join(Run, Run.job_id == Job.id)
            .where(Run.project_id.in_(ids), Run.ended_at.is_(None))
        )
    }
    for run in session.scalars(select(Run).where(Run.project_id.in_(ids), Run.ended_at.is_(None))):
        since = run.started_at or run.admitted_at
        used = run.gpus * min(max(0.0, (at - since).total_seconds()), walltimes[run.job_id])
        left[(run.project_id, run.gpu_type)] -= used
    for (project, gpu_type), value in left.items():
        out[ProjectId(project)][GpuType(gpu_type)] = GpuSeconds(max(0.0, value))
    return out


# -- reports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AwardBalance:
    award: Award
    project: str
    """`org/name`."""
    balance: Balance
    burn_ms_per_s: float
    runs_out_at: datetime | None


def balances(
    session: Session,
    principal: Principal,
    now: datetime,
    project: str | None = None,
    organization: str | None = None,
    include_ended: bool = False,
) -> list[AwardBalance]:
    """Every visible award's balance, its burn rate over the last 7 days (open runs counted
    up to now) and the day it runs out at that rate."""
    statement = visible_only(select(Award), Award.organization_id, principal)
    columns = (Award.project_id, Award.organization_id)
    statement = project_service.narrowed(
        session, principal, statement, columns, project, organization
    )
    if not include_ended:
        statement = statement.where(Award.ends_at > now)
    awards = list(session.scalars(statement.order_by(Award.id)))
    found = balances_of(session, awards)
    names = project_service.names(session, {a.project_id for a in awards})
    spans = _spans(session, [a.id for a in awards], now - BURN_WINDOW, now)
    out = []
    for a in awards:
        rate = burn_rate(spans.get(a.id, ()), now.timestamp(), BURN_WINDOW.total_seconds())
        end = runs_out(found[a.id].available_ms, rate, now.timestamp())
        out.append(
            AwardBalance(
                a,
                names[a.project_id],
                found[a.id],
                rate,
                None if end is None or end >= LATEST else datetime.fromtimestamp(end, UTC),
            )
        )
    return out


def _spans(
    session: Session, award_ids: list[str], since: datetime, now: datetime
) -> dict[str, list[tuple[float, float, int]]]:
    """(start, end, GPU-ms) of the usage and open runs of each award touching [since, now]."""
    out: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    if not award_ids:
        return out
    for r in session.scalars(
        select(UsageRecord).where(
            UsageRecord.award_id.in_(award_ids), UsageRecord.ended_at >= since
        )
    ):
        out[r.award_id].append((r.started_at.timestamp(), r.ended_at.timestamp(), r.gpu_ms))
    for run in _open_runs(session, award_ids):
        if run.started_at is None:
            continue
        start = run.started_at.timestamp()
        used = charge_ms(run.gpus, start, now.timestamp(), run.hold_ms // max(1, run.gpus) // 1000)
        out[run.award_id].append((start, now.timestamp(), used))
    return out


GROUPS = ("organization", "project", "gpu_type", "job", "award")
PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class UsageLine:
    """One line of a usage report: the group's values, the period's start, the totals."""

    group: dict[str, str]
    period: str | None
    runs: int
    gpu_ms: int


def usage(
    session: Session,
    principal: Principal,
    by: Sequence[str],
    period: str | None,
    since: datetime | None,
    until: datetime | None,
    project: str | None = None,
    organization: str | None = None,
) -> list[UsageLine]:
    """sreport-like totals of usage records ended in [since, until), grouped by `by` and,
    with `period`, by the UTC day, ISO week or month each run ended in."""
    problems = [f"unknown group {g!r}; known: {', '.join(GROUPS)}" for g in by if g not in GROUPS]
    if period is not None and period not in PERIODS:
        problems.append(f"unknown period {period!r}; known: {', '.join(PERIODS)}")
    if since is not None and until is not None and until <= since:
        problems.append("until must be after since")
    if problems:
        raise InvalidRequest(problems)
    statement = visible_only(select(UsageRecord), UsageRecord.organization_id, principal)
    columns = (UsageRecord.project_id, UsageRecord.organization_id)
    statement = project_service.narrowed(
        session, principal, statement, columns, project, organization
    )
    if since is not None:
        statement = statement.where(UsageRecord.ended_at >= since)
    if until is not None:
        statement = statement.where(UsageRecord.ended_at < until)
    records = list(session.scalars(statement.order_by(UsageRecord.id)))
    names = project_service.names(session, {r.project_id for r in records})
    org_names = {
        oid: name
        for oid, name in session.execute(
            select(Organization.id, Organization.name).where(
                Organization.id.in_({r.organization_id for r in records})
            )
        )
    }
    totals: dict[tuple[tuple[str, ...], str | None], list[int]] = {}
    for r in records:
        values = {
            "organization": org_names[r.organization_id],
            "project": names[r.project_id],
            "gpu_type": r.gpu_type,
            "job": str(r.job_id),
            "award": r.award_id,
        }
        key = (tuple(values[g] for g in by), _period(r.ended_at, period))
        line = totals.setdefault(key, [0, 0])
        line[0] += 1
        line[1] += r.gpu_ms
    return [
        UsageLine(dict(zip(by, group, strict=True)), when, runs, gpu_ms)
        for (group, when), (runs, gpu_ms) in sorted(
            totals.items(), key=lambda i: (i[0][1] or "", i[0][0])
        )
    ]


def _period(at: datetime, period: str | None) -> str | None:
    if period is None:
        return None
    at = at.astimezone(UTC)
    if period == "day":
        return at.date().isoformat()
    if period == "week":
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{at.year}-{at.month:02d}"
