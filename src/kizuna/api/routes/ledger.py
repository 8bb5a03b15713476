"""The ledger (ADR 0023): award balances with burn rates, and sreport-like usage reports.

M1. Amounts are exact integers of GPU-milliseconds (`*_gpu_ms`) and, for people, GPU-hours
    rounded to 3 decimals; a sum is taken of the integers, never of the rounded hours.
M2. Only what the caller sees is counted (R1): a project or organization it may not see is a
    404, as one that does not exist.
M3. `/usage` answers JSON, or CSV (one column per group, then period, runs, gpu_hours,
    gpu_ms) with `Accept: text/csv` or `format=csv`.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from kizuna.api.deps import Read
from kizuna.api.routes.common import At, Filter
from kizuna.api.schemas import BalancePublic, Items, UsageLinePublic
from kizuna.ledger.rules import SECONDS_PER_DAY
from kizuna.services import ledger
from kizuna.services.ledger import AwardBalance, UsageLine

router = APIRouter(tags=["ledger"])
MS_PER_HOUR = 3_600_000
CSV = "text/csv"


def gpu_hours(ms: float) -> float:
    """M1."""
    return round(ms / MS_PER_HOUR, 3)


def balance_public(found: AwardBalance) -> BalancePublic:
    award, balance = found.award, found.balance
    organization = found.project.partition("/")[0]  # the project is named `org/name`
    return BalancePublic(
        award_id=award.id,
        project=found.project,
        project_id=award.project_id,
        organization=organization,
        organization_id=award.organization_id,
        gpu_type=award.gpu_type,
        starts_at=award.starts_at,
        ends_at=award.ends_at,
        granted_gpu_hours=gpu_hours(balance.granted_ms),
        charged_gpu_hours=gpu_hours(balance.charged_ms),
        held_gpu_hours=gpu_hours(balance.held_ms),
        available_gpu_hours=gpu_hours(balance.available_ms),
        granted_gpu_ms=balance.granted_ms,
        charged_gpu_ms=balance.charged_ms,
        held_gpu_ms=balance.held_ms,
        available_gpu_ms=balance.available_ms,
        burn_gpu_hours_per_day=gpu_hours(found.burn_ms_per_s * SECONDS_PER_DAY),
        runs_out_at=found.runs_out_at,
    )


@router.get("/balances", response_model=Items[BalancePublic])
def balances(
    unit: Read,
    project: Filter = None,
    organization: Filter = None,
    include_ended: Annotated[bool, Query(description="Also awards that have ended")] = False,
) -> Items[BalancePublic]:
    """Each visible award's balance (M1, M2), its burn rate over the last 7 days and the
    instant it runs out at that rate."""
    with unit.session() as session:
        found = ledger.balances(
            session, unit.principal, unit.now(), project, organization, include_ended
        )
        items = [balance_public(b) for b in found]
    return Items[BalancePublic](items=items)


def usage_public(line: UsageLine) -> UsageLinePublic:
    return UsageLinePublic(
        group=line.group,
        period=line.period,
        runs=line.runs,
        gpu_hours=gpu_hours(line.gpu_ms),
        gpu_ms=line.gpu_ms,
    )


def usage_csv(groups: list[str], lines: list[UsageLinePublic]) -> str:
    """M3."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*groups, "period", "runs", "gpu_hours", "gpu_ms"])
    for line in lines:
        values = [line.group[g] for g in groups]
        writer.writerow([*values, line.period or "", line.runs, line.gpu_hours, line.gpu_ms])
    return out.getvalue()


@router.get(
    "/usage",
    response_model=Items[UsageLinePublic],
    responses={200: {"content": {CSV: {"schema": {"type": "string"}}}}},
)
def usage(
    unit: Read,
    by: Annotated[
        list[str] | None,
        Query(
            max_length=5,
            description="Group by organization, project, gpu_type, job or award (repeatable;"
            " default: project)",
        ),
    ] = None,
    period: Annotated[str | None, Query(max_length=10, description="day, week or month")] = None,
    since: At = None,
    until: At = None,
    project: Filter = None,
    organization: Filter = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="csv: as CSV")] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Usage records ended in [since, until) (M2), summed by group and period."""
    groups = list(dict.fromkeys(by or ["project"]))
    with unit.session() as session:
        found = ledger.usage(
            session, unit.principal, groups, period, since, until, project, organization
        )
    lines = [usage_public(line) for line in found]
    if format == "csv" or (format is None and CSV in (accept or "")):
        return Response(usage_csv(groups, lines), media_type=f"{CSV}; charset=utf-8")
    body = Items[UsageLinePublic](items=lines).model_dump_json()
    return Response(body, media_type="application/json")
