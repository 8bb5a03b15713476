"""Traces: jobs read from public cluster traces or Kizuna's own files, or generated.

`read_trace` reads any format in `FORMATS` (telling it from the file when not named) into a
`Trace` of canonical records; `write_trace` writes Kizuna's canonical CSV or JSON Lines;
`synthesize` makes a Philly-shaped trace from a seed. Bad rows are reported by line, never
dropped silently (ADR 0015).
"""

from __future__ import annotations

import csv
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces.canonical import REQUIRED, read_csv, read_jsonl, write_trace
from kizuna.traces.gavel import read_gavel
from kizuna.traces.helios import read_capacity, read_helios
from kizuna.traces.model import FIELDS, BadRows, RowProblem, Trace, TraceRecord, opened
from kizuna.traces.pai import read_pai
from kizuna.traces.philly import HEADER as PHILLY_HEADER
from kizuna.traces.philly import read_philly
from kizuna.traces.synth import SynthSpec, synthesize, synthesize_to
from kizuna.traces.tiresias import read_tiresias

__all__ = [
    "FIELDS",
    "FORMATS",
    "BadRows",
    "RowProblem",
    "SynthSpec",
    "Trace",
    "TraceRecord",
    "read_capacity",
    "read_trace",
    "synthesize",
    "synthesize_to",
    "write_trace",
]

FORMATS: Mapping[str, Callable[..., Trace]] = {
    "kizuna-csv": read_csv,
    "kizuna-jsonl": read_jsonl,
    "philly": read_philly,
    "gavel": read_gavel,
    "tiresias": read_tiresias,
    "helios": read_helios,
    "pai": read_pai,
}
"""Format name -> reader: `reader(path, *, on_bad=..., **options) -> Trace`."""

HELIOS_HEADER: tuple[str, ...] = ("job_id", "user", "vc", "gpu_num")
TIRESIAS_HEADER: tuple[str, ...] = ("job_id", "num_gpu", "submit_time")


def read_trace(
    path: Path,
    format: str | None = None,
    *,
    on_bad: BadRows | str = BadRows.REJECT,
    **options: object,
) -> Trace:
    """The trace in `path`, read as `format` (None: told from the file's suffix and header).

    `options` go to the reader: `throughputs` and `gpu_type` for gavel, `job_table` for pai.
    Raises `InvalidRequest` for an unknown format or option, an unreadable file, a format
    that cannot be told, and bad rows under `BadRows.REJECT`.
    """
    name = format if format is not None else _detect(path)
    reader = FORMATS.get(name)
    if reader is None:
        raise InvalidRequest([f"unknown trace format {name!r}; known formats: {_known()}"])
    _check_options(name, reader, options)
    return reader(path, on_bad=_bad_rows(on_bad), **options)


def _detect(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "kizuna-jsonl"
    if suffix == ".trace":
        return "gavel"
    with opened(path) as file:
        first = file.readline()
    columns = tuple(cell.strip() for cell in next(csv.reader([first]), []))
    if columns and set(columns) <= set(FIELDS) and set(REQUIRED) <= set(columns):
        return "kizuna-csv"
    for name, header in (
        ("philly", PHILLY_HEADER),
        ("tiresias", TIRESIAS_HEADER),
        ("helios", HELIOS_HEADER),
    ):
        if columns[: len(header)] == header:
            return name
    raise InvalidRequest(
        [
            f"cannot tell the format of {path} from its name and first line "
            f"{first.strip()[:80]!r}; name one of: {_known()} "
            "(PAI tables have no header: name 'pai' for them)"
        ]
    )


def _check_options(name: str, reader: Callable[..., Trace], options: Mapping[str, object]) -> None:
    accepted = [
        option
        for option, parameter in inspect.signature(reader).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and option != "on_bad"
    ]
    unknown = [option for option in options if option not in accepted]
    if unknown:
        takes = ", ".join(accepted) if accepted else "none"
        raise InvalidRequest(
            [
                f"format {name!r} has no option {option!r}; its options: {takes}"
                for option in unknown
            ]
        )


def _bad_rows(on_bad: BadRows | str) -> BadRows:
    try:
        return BadRows(on_bad)
    except ValueError:
        choices = ", ".join(choice.value for choice in BadRows)
        raise InvalidRequest([f"bad rows can be: {choices} (got {on_bad!r})"]) from None


def _known() -> str:
    return ", ".join(FORMATS)
