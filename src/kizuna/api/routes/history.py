"""Job history: the finished jobs as a canonical trace file, for `kizuna simulate`
(services/history.py, H1-H5)."""

from __future__ import annotations

import tempfile
from enum import StrEnum
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from kizuna.api.deps import Read
from kizuna.api.routes.common import At, Filter
from kizuna.services import history
from kizuna.traces.canonical import write_trace

router = APIRouter(prefix="/history", tags=["history"])


class TraceFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


MEDIA = {TraceFormat.CSV: "text/csv", TraceFormat.JSONL: "application/jsonl"}


@router.get(
    "/jobs",
    response_class=Response,
    responses={200: {"content": {m: {"schema": {"type": "string"}} for m in MEDIA.values()}}},
)
def jobs(
    unit: Read,
    format: TraceFormat = TraceFormat.CSV,
    since: At = None,
    until: At = None,
    project: Filter = None,
    organization: Filter = None,
) -> Response:
    """Finished jobs submitted in [since, until) as canonical trace rows, in submit order;
    jobs that never started are left out."""
    with unit.session() as session:
        records = history.export(session, unit.principal, since, until, project, organization)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"history.{format.value}"
        write_trace(records, path)
        body = path.read_bytes()
    return Response(body, media_type=MEDIA[format])
