"""The files a planner writes: cluster and awards specs, and a cluster sized for a trace.

Cluster and awards specs are YAML (docs/simulation.md); an awards file ending in `.csv` is a
Helios capacity table (GPUs per virtual cluster by day), whose last day becomes the quotas.
Every problem is reported with the file's path in front of it.

Sizing a cluster for a trace:
 P1 The offered load of a trace is its GPU work (GPUs x duration, summed) over the span of
    its submits; a trace submitted all at once is spread over the span from its first submit
    to its last possible end instead.
 P2 A cluster for load `L` has the fewest nodes whose GPUs x L cover the offered load, and
    at least enough nodes for the trace's largest gang, so no job is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import yaml

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType
from kizuna.simulation.awards import AwardsSpec
from kizuna.simulation.cluster import ClusterSpec
from kizuna.traces import read_capacity
from kizuna.traces.model import TraceRecord

T = TypeVar("T")


def load_cluster(path: Path) -> ClusterSpec:
    """The cluster spec in the YAML file `path`; its name defaults to the file's stem."""
    data = _yaml(path)
    if isinstance(data, dict) and "name" not in data:
        data = {**data, "name": path.stem}
    return _named(path, lambda: ClusterSpec.from_mapping(data))


def load_awards(
    path: Path,
    tenants: Sequence[str],
    cluster_gpus: Mapping[GpuType, int],
    day: str | None = None,
) -> AwardsSpec:
    """The awards spec in `path`: YAML, or a Helios capacity table (`.csv`) whose virtual
    clusters on `day` (default: the table's last) become projects joined by `tenants`
    (busiest first), with quotas of the cluster's first GPU type scaled to `cluster_gpus`."""
    if path.suffix.lower() != ".csv":
        if day is not None:
            raise InvalidRequest([f"{path}: a day applies only to a capacity table (.csv)"])
        data = _yaml(path)
        return _named(path, lambda: AwardsSpec.from_mapping(data))
    capacity = _named(path, lambda: read_capacity(path, day))
    if not capacity:
        when = day or "the table's last day"
        raise InvalidRequest([f"{path}: no virtual cluster owns GPUs on {when}"])
    gpu_type = next(iter(cluster_gpus))
    spec = AwardsSpec.from_capacity(capacity, gpu_type, tenants)
    return spec.scale_to({gpu_type: cluster_gpus[gpu_type]})


def busiest_tenants(records: Iterable[TraceRecord]) -> list[str]:
    """The trace's tenants, the one asking for the most GPU work first (ties by name)."""
    work: dict[str, float] = {}
    for r in records:
        work[r.project] = work.get(r.project, 0.0) + r.gpus * r.duration
    return sorted(work, key=lambda tenant: (-work[tenant], tenant))


def offered_gpus(records: Sequence[TraceRecord]) -> float:
    """The GPUs the trace keeps busy on average (P1); 0 for an empty trace."""
    if not records:
        return 0.0
    work = math.fsum(r.gpus * r.duration for r in records)
    first = min(r.submit for r in records)
    span = max(r.submit for r in records) - first
    if span <= 0:
        span = max(r.submit + r.duration for r in records) - first
    return work / span if span > 0 else 0.0


def nodes_for_load(records: Sequence[TraceRecord], load: float, gpus_per_node: int = 8) -> int:
    """How many nodes of `gpus_per_node` GPUs run the trace at `load` (P2)."""
    if not 0 < load <= 1:
        raise InvalidRequest([f"the load must be in (0, 1] (got {load:g})"])
    if gpus_per_node < 1:
        raise InvalidRequest([f"nodes need at least one GPU (got {gpus_per_node})"])
    largest = max((r.gpus for r in records), default=1)
    for_load = math.ceil(offered_gpus(records) / load / gpus_per_node)
    return max(1, for_load, math.ceil(largest / gpus_per_node))


def cluster_for_load(
    records: Sequence[TraceRecord], load: float, gpu_type: str, gpus_per_node: int = 8
) -> ClusterSpec:
    """A uniform cluster that runs the trace at `load` (P2), named after that load."""
    nodes = nodes_for_load(records, load, gpus_per_node)
    name = f"{nodes} x {gpus_per_node} {gpu_type} (for {load:.0%} load)"
    return ClusterSpec.uniform(nodes, gpu_type, gpus_per_node, name=name)


def _yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidRequest([f"cannot read {path}: {error.strerror or error}"]) from None
    except UnicodeDecodeError as error:
        raise InvalidRequest([f"{path} is not UTF-8 text: {error.reason}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise InvalidRequest([f"{path} is not valid YAML{line}: {_first_line(error)}"]) from None


def _named(path: Path, read: Callable[[], T]) -> T:
    try:
        return read()
    except InvalidRequest as error:
        raise InvalidRequest([_prefixed(path, p) for p in error.problems]) from None


def _prefixed(path: Path, problem: str) -> str:
    return problem if problem.startswith(str(path)) else f"{path}: {problem}"


def _first_line(error: yaml.YAMLError) -> str:
    problem = getattr(error, "problem", None)
    return str(problem) if problem else str(error).splitlines()[0]
