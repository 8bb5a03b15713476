"""Cluster and awards files, and sizing a cluster for a trace (specs.py P1-P2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType
from kizuna.planning.specs import (
    busiest_tenants,
    cluster_for_load,
    load_awards,
    load_cluster,
    nodes_for_load,
    offered_gpus,
)
from kizuna.traces import TraceRecord

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "traces"
CLUSTER = """
node_groups:
  - {gpu_type: H100, nodes: 4}
  - {gpu_type: A100, nodes: 2, gpus_per_node: 4}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def job(id: str, project: str, submit: float, gpus: int, duration: float) -> TraceRecord:
    return TraceRecord(id, project, submit, gpus, duration)


def test_a_cluster_file_is_read_and_named_after_the_file(tmp_path: Path) -> None:
    cluster = load_cluster(write(tmp_path, "lab.yaml", CLUSTER))
    assert cluster.name == "lab"
    assert cluster.gpus() == {GpuType("H100"): 32, GpuType("A100"): 8}


def test_a_cluster_file_keeps_its_own_name(tmp_path: Path) -> None:
    cluster = load_cluster(write(tmp_path, "lab.yaml", "name: west\n" + CLUSTER))
    assert cluster.name == "west"


def test_cluster_problems_name_the_file_and_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "node_groups:\n  - {gpu_type: H100, nodes: -1}\n")
    with pytest.raises(InvalidRequest) as raised:
        load_cluster(path)
    assert raised.value.problems == [
        f"{path}: node_groups[0].nodes: must be an integer >= 0 (got -1)"
    ]


def test_broken_yaml_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "node_groups:\n  - {gpu_type: H100\n")
    with pytest.raises(InvalidRequest) as raised:
        load_cluster(path)
    assert str(raised.value).startswith(f"{path} is not valid YAML (line")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match=r"cannot read .*nowhere\.yaml"):
        load_cluster(tmp_path / "nowhere.yaml")


def test_an_awards_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "awards.yaml",
        "awards:\n  - {project: vision, tenants: [vc1, vc2], shares: 2, quotas: {H100: 24}}\n"
        "default: {shares: 1}\n",
    )
    awards = load_awards(path, ["vc1", "vc3"], {GpuType("H100"): 32})
    assert awards.project_of(["vc1", "vc2", "vc3"]) == {
        "vc1": "vision",
        "vc2": "vision",
        "vc3": "vc3",
    }
    assert awards.awards[0].quotas["H100"].nominal == 24


def test_awards_problems_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "awards.yaml", "awards:\n  - {project: a, shares: 0}\n")
    with pytest.raises(InvalidRequest) as raised:
        load_awards(path, [], {GpuType("H100"): 8})
    assert raised.value.problems == [f"{path}: awards[0].shares: must be a positive number (got 0)"]


def test_a_capacity_table_becomes_quotas_scaled_to_the_cluster(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cluster_gpu_number.csv",
        "date,vcA,vcB,vcC,total\n2020-04-01,8,8,8,24\n2020-04-02,96,32,0,128\n",
    )
    awards = load_awards(path, ["busy", "quiet", "rare"], {GpuType("V100"): 64})
    quotas = {a.project: a.quotas["V100"].nominal for a in awards.awards}
    assert quotas == {"vcA": 48, "vcB": 16}  # the last day, 3:1, adding up to the cluster
    assert awards.project_of(["busy", "quiet", "rare"]) == {
        "busy": "vcA",
        "quiet": "vcB",
        "rare": "rare",
    }


def test_the_helios_venus_table_covers_the_cluster() -> None:
    table = SHARED / "helios-venus" / "cluster_gpu_number.csv"
    if not table.exists():
        pytest.skip("../shared is absent")
    awards = load_awards(table, [], {GpuType("V100"): 512})
    assert sum(a.quotas["V100"].nominal for a in awards.awards) == 512


def test_tenants_are_ranked_by_gpu_work() -> None:
    records = [job("1", "a", 0, 1, 100), job("2", "b", 0, 4, 100), job("3", "a", 0, 1, 100)]
    assert busiest_tenants([*records, job("4", "c", 0, 2, 100)]) == ["b", "a", "c"]


def test_offered_load_is_work_over_the_span_of_submits() -> None:
    records = [job(str(k), "p", k * 360.0, 1, 3600.0) for k in range(10)]
    assert offered_gpus(records) == pytest.approx(36_000 / 3_240)
    # 11.1 GPUs busy at 80 % load need 13.9 GPUs: 2 nodes of 8
    assert nodes_for_load(records, 0.8, 8) == 2


def test_a_trace_submitted_at_once_spreads_over_its_longest_job() -> None:
    records = [job("1", "p", 0, 8, 3600), job("2", "p", 0, 8, 1800)]
    assert offered_gpus(records) == pytest.approx((8 * 3600 + 8 * 1800) / 3600)


def test_a_sized_cluster_fits_the_largest_gang() -> None:
    records = [job("1", "p", 0, 64, 10), job("2", "p", 86_400, 1, 10)]
    cluster = cluster_for_load(records, 0.8, "A100", 8)
    assert cluster.gpus() == {GpuType("A100"): 64}
    assert cluster.name == "8 x 8 A100 (for 80% load)"


@pytest.mark.parametrize("load", [0.0, 1.5])
def test_a_load_outside_0_to_1_is_refused(load: float) -> None:
    with pytest.raises(InvalidRequest, match="the load must be in"):
        nodes_for_load([job("1", "p", 0, 1, 10)], load)
