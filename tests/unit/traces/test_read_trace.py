"""read_trace: tells formats apart, passes options on, and refuses what it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces import FORMATS, BadRows, TraceRecord, read_trace, write_trace

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "traces"
FILES = {
    "philly.csv": (
        "philly",
        "timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-09 07:01:55,66.0,1,66.0,11cb48\n",
    ),
    "60_job.csv": (
        "tiresias",
        "job_id,num_gpu,submit_time,iterations,model_name,duration,interval\n0,1,0,606,vgg19,164,30\n",
    ),
    "cluster_log.csv": (
        "helios",
        "job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,"
        "queue\n1,u1,vcA,1,4,1,COMPLETED,2020-06-09 18:41:01,2020-06-09 18:41:01,"
        "2020-06-09 18:42:01,60,0\n",
    ),
    "jobs.csv": ("kizuna-csv", "id,project,submit,gpus,duration\nj1,p,0,1,60\n"),
    "jobs.jsonl": (
        "kizuna-jsonl",
        '{"id": "j1", "project": "p", "submit": 0, "gpus": 1, "duration": 60}\n',
    ),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_tells_the_format_from_the_name_and_header(tmp_path: Path, name: str) -> None:
    source, content = FILES[name]
    path = tmp_path / name
    path.write_text(content)
    trace = read_trace(path)
    assert trace.source == source
    assert len(trace.records) == 1


def test_a_trace_file_is_gavel_and_takes_gavel_options(tmp_path: Path) -> None:
    rates = tmp_path / "rates.json"
    rates.write_text(json.dumps({"a100": {"('A3C', 1)": {"null": 2.0}}}))
    path = tmp_path / "vc1.trace"
    path.write_text("A3C\tcd %s\t--steps\t1\t100\t5.0\t1\n")
    trace = read_trace(path, throughputs=rates, gpu_type="a100")
    assert trace.records == (TraceRecord("vc1-1", "vc1", 5.0, 1, 50.0),)


def test_pai_has_no_header_so_it_must_be_named(tmp_path: Path) -> None:
    path = tmp_path / "pai_task_table.csv"
    path.write_text("j1,worker,1.0,Terminated,10.0,70.0,600.0,29.3,100.0,V100\n")
    with pytest.raises(InvalidRequest) as raised:
        read_trace(path)
    assert "cannot tell the format" in raised.value.problems[0]
    assert "name 'pai'" in raised.value.problems[0]
    assert read_trace(path, "pai").records == (TraceRecord("j1", "pai", 0.0, 1, 60.0, "V100"),)


def test_an_unknown_format_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest) as raised:
        read_trace(tmp_path / "x.csv", "slurm")
    assert raised.value.problems == [
        "unknown trace format 'slurm'; known formats: " + ", ".join(FORMATS)
    ]


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match=r"cannot read .*missing\.csv: No such file"):
        read_trace(tmp_path / "missing.csv")


def test_a_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blob.csv"
    path.write_bytes(b"\xff\xfe\x00\x81 not text")
    with pytest.raises(InvalidRequest, match="is not UTF-8 text"):
        read_trace(path, "kizuna-csv")


def test_an_option_the_format_lacks_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(FILES["jobs.csv"][1])
    with pytest.raises(InvalidRequest) as raised:
        read_trace(path, gpu_type="v100")
    assert raised.value.problems == [
        "format 'kizuna-csv' has no option 'gpu_type'; its options: none"
    ]


def test_bad_rows_may_be_named_as_text(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("id,project,submit,gpus,duration\nj1,p,0,0,60\nj2,p,0,1,60\n")
    assert [r.id for r in read_trace(path, on_bad="skip").records] == ["j2"]
    with pytest.raises(InvalidRequest, match="bad rows can be: skip, reject"):
        read_trace(path, on_bad="ignore")


def test_a_written_trace_reads_back_through_read_trace(tmp_path: Path) -> None:
    records = (TraceRecord("a", "p", 0.5, 2, 10.0, "H100", 60.0, "low"),)
    for name in ("out.csv", "out.jsonl"):
        write_trace(records, tmp_path / name)
        assert read_trace(tmp_path / name, on_bad=BadRows.REJECT).records == records


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is absent")
def test_the_shared_traces_are_told_apart() -> None:
    assert read_trace(SHARED / "philly" / "philly.csv").source == "philly"
    assert read_trace(SHARED / "tiresias" / "60_job.csv").source == "tiresias"
    assert read_trace(SHARED / "gavel-msr" / "795a4c.trace").source == "gavel"
