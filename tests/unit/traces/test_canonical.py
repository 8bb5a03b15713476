"""Kizuna's canonical CSV and JSON Lines: round trips, defaults, and bad rows by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces import BadRows, RowProblem, Trace, TraceRecord, write_trace
from kizuna.traces.canonical import read_csv, read_jsonl

HEADER = "id,project,submit,gpus,gpu_type,duration,walltime,priority\n"

RECORDS = (
    TraceRecord("a", "vc01", 0.0, 1, 66.0),
    TraceRecord("b,with comma", "vc 02", 0.1 + 0.2, 8, 1e-7, "H100", 3600.0, "high"),
    TraceRecord('c "quoted"', "vc01", 12.5, 64, 254_758.0, "A100", None, "low"),
    TraceRecord("d", "vc03", 12.5, 2, 0.0, None, 120.0, "normal"),
)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_writing_then_reading_gives_the_same_records(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"trace{suffix}"
    assert write_trace(Trace(RECORDS, "synth"), path) == len(RECORDS)
    read = read_csv if suffix == ".csv" else read_jsonl
    trace = read(path)
    assert trace.records == RECORDS
    assert trace.source == f"kizuna-{suffix[1:]}"
    assert trace.problems == ()


def test_writes_records_from_a_generator(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    assert write_trace((r for r in RECORDS), path) == 4
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER.strip()
    assert lines[1] == "a,vc01,0.0,1,,66.0,,normal"


def test_writes_jsonl_with_every_key(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    write_trace(RECORDS[:1], path)
    assert json.loads(path.read_text()) == {
        "id": "a",
        "project": "vc01",
        "submit": 0.0,
        "gpus": 1,
        "gpu_type": None,
        "duration": 66.0,
        "walltime": None,
        "priority": "normal",
    }


def test_refuses_to_write_an_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match=r"name it \.csv or \.jsonl"):
        write_trace(RECORDS, tmp_path / "trace.txt")


def test_empty_cells_and_left_out_columns_take_their_defaults(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("gpus,id,duration,project,submit,gpu_type\n2,x,30,p,5, \n")
    assert read_csv(path).records == (TraceRecord("x", "p", 5.0, 2, 30.0, None, None, "normal"),)


def test_records_come_in_submit_order_and_ties_keep_file_order(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "late,p,9,1,,1,,\nfirst,p,3,1,,1,,\nsecond,p,3,1,,1,,\n")
    assert [r.id for r in read_csv(path).records] == ["first", "second", "late"]


BAD_CSV = HEADER + (
    "a,p1,0,1,,10,,normal\n"
    "b,p1,5,0,,10,,normal\n"
    "c,p1,x,1,,10,,normal\n"
    "d,p1,5,1,,-3,,normal\n"
    "e,p1,-1,1,,10,,normal\n"
    "f,p1,5,1,,10,,urgent\n"
    "g,,5,1,,10,,normal\n"
    "h,p1,5,1,A100,10\n"
    "\n"
    "a,p1,6,1,,10,,normal\n"
    "i,p1,7,1.5,,10,,normal\n"
    "j,p1,8,2,H100,20,0,high\n"
    "k,p1,9,2,H100,,60,high\n"
    "l,p1,9,2,H100,20,60,high,extra\n"
    "m,p1,9,2,H100,20,60,high\n"
)

BAD_CSV_PROBLEMS = [
    RowProblem(3, "gpus must be at least 1, got 0"),
    RowProblem(4, "submit is not a number: 'x'"),
    RowProblem(5, "duration cannot be negative, got -3"),
    RowProblem(6, "submit cannot be negative, got -1"),
    RowProblem(7, "priority must be one of low, normal, high, got 'urgent'"),
    RowProblem(8, "missing project"),
    RowProblem(9, "expected 8 columns, found 6"),
    RowProblem(11, "id 'a' is already used on line 2"),
    RowProblem(12, "gpus is not a whole number: '1.5'"),
    RowProblem(13, "walltime must be positive, got 0"),
    RowProblem(14, "missing duration"),
    RowProblem(15, "expected 8 columns, found 9"),
]


def test_skip_keeps_the_good_rows_and_reports_each_bad_one_by_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(BAD_CSV)
    trace = read_csv(path, on_bad=BadRows.SKIP)
    assert [r.id for r in trace.records] == ["a", "m"]
    assert list(trace.problems) == BAD_CSV_PROBLEMS


def test_reject_lists_every_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(BAD_CSV)
    with pytest.raises(InvalidRequest) as raised:
        read_csv(path)
    assert raised.value.problems == [f"{path}: {p}" for p in BAD_CSV_PROBLEMS]


def test_reject_lists_twenty_bad_rows_then_counts_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "".join(f"j{n},p,0,0,,1,,\n" for n in range(25)))
    with pytest.raises(InvalidRequest) as raised:
        read_csv(path)
    assert len(raised.value.problems) == 21
    assert raised.value.problems[0] == f"{path}: line 2: gpus must be at least 1, got 0"
    assert raised.value.problems[-1] == "... and 5 more bad rows"


def test_a_file_cut_mid_row_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "a,p,0,1,,10,,normal\nb,p,4,1")
    trace = read_csv(path, on_bad=BadRows.SKIP)
    assert [r.id for r in trace.records] == ["a"]
    assert trace.problems == (RowProblem(3, "the file ends mid-row: expected 8 columns, found 4"),)


def test_a_file_cut_inside_a_quoted_field_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HEADER + 'a,p,0,1,,10,,normal\n"b,p,4')
    trace = read_csv(path, on_bad=BadRows.SKIP)
    assert trace.problems == (
        RowProblem(3, "cannot be read as CSV: the file ends inside a quoted field"),
    )


def test_a_last_row_without_line_break_is_read_when_whole(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "a,p,0,1,,10,,normal")
    assert len(read_csv(path).records) == 1


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("id,project,submit,gpus\n", "the header lacks duration"),
        (HEADER.strip() + ",colour\n", "unknown column(s) colour"),
        ("id,id,project,submit,gpus,duration\n", "the header repeats a column"),
        ("", "is empty; expected a header"),
    ],
)
def test_a_bad_header_refuses_the_file(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(header)
    with pytest.raises(InvalidRequest) as raised:
        read_csv(path, on_bad=BadRows.SKIP)
    assert message in raised.value.problems[0]


def test_an_empty_trace_is_a_trace(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HEADER)
    assert read_csv(path).records == ()


def test_jsonl_optional_keys_may_be_absent_or_null(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"id": "a", "project": "p", "submit": 1, "gpus": 2, "duration": 30}\n'
        "\n"
        '{"id": "b", "project": "p", "submit": 2, "gpus": 1, "duration": 5, "gpu_type": null,'
        ' "walltime": 60, "priority": null}\n'
    )
    assert read_jsonl(path).records == (
        TraceRecord("a", "p", 1.0, 2, 30.0),
        TraceRecord("b", "p", 2.0, 1, 5.0, None, 60.0),
    )


def test_jsonl_bad_rows_are_reported_by_line(tmp_path: Path) -> None:
    good = '{"id": "ok", "project": "p", "submit": 0, "gpus": 1, "duration": 5}'
    path = tmp_path / "t.jsonl"
    path.write_text(
        "\n".join(
            [
                good,
                "[1, 2]",
                '{"id": "x", "project": "p", "submit": 0, "gpus": 1}',
                '{"id": "x", "project": "p", "submit": 0, "gpus": 1, "duration": 5, "gpu": 2}',
                '{"id": "x", "project": "p", "submit": "soon", "gpus": 1, "duration": 5}',
                '{"id": "x", "project": "p", "submit": 0, "gpus": 1.5, "duration": 5}',
                '{"id": "x", "project": "p", "submit": 0, "gpus": 1, "duration": 5, '
                '"priority": "top"}',
                '{"id": "x", "project": "p", "submit": 0, "gpus": 1, "duration": NaN}',
                '{"id": "y", "project": "p", "sub',
            ]
        )
    )
    trace = read_jsonl(path, on_bad=BadRows.SKIP)
    assert [r.id for r in trace.records] == ["ok"]
    assert list(trace.problems) == [
        RowProblem(2, "expected a JSON object, got list"),
        RowProblem(3, "missing duration"),
        RowProblem(4, "unknown key(s) gpu"),
        RowProblem(5, 'submit must be a number, got "soon"'),
        RowProblem(6, "gpus must be a whole number, got 1.5"),
        RowProblem(7, "priority must be one of low, normal, high, got 'top'"),
        RowProblem(8, "duration must be a number, got NaN"),
        RowProblem(
            9, "the file ends mid-row: not valid JSON: Unterminated string starting at (column 29)"
        ),
    ]
