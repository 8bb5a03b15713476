"""A cluster to plan for: node groups, and the capacity changes a plan foresees.

A spec is written in YAML (see docs/simulation.md) and read into these values by
`ClusterSpec.from_mapping`, which names every problem it finds by its path in the document
("node_groups[1].gpus_per_node: ..."). Node names, NVLink domains and racks are derived,
so one spec always gives the same nodes:

 C1 node n (from 0) of group g is "g-nnnn"; `nodes_per_domain` consecutive nodes share an
    NVLink domain and `domains_per_rack` consecutive domains a rack;
 C2 nodes added later continue the numbering of their group;
 C3 `remove` takes the group's most recently added nodes that are still there; `drain` the
    most recently added nodes that are up. A drained node finishes what it runs and takes
    nothing new; with `for`, it comes back up after that long (a maintenance window).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType, NodeId
from kizuna.kernel.units import parse_duration
from kizuna.scheduling.model import Node, NodeState


class ChangeKind(StrEnum):
    ADD = "add"
    DRAIN = "drain"
    REMOVE = "remove"
    """Nodes leave at once; jobs on them stop and are requeued from their last checkpoint."""


@dataclass(frozen=True, slots=True)
class NodeGroup:
    """`nodes` identical servers of one GPU type."""

    name: str
    gpu_type: GpuType
    nodes: int
    gpus_per_node: int = 8
    nodes_per_domain: int = 1
    """Nodes per NVLink domain (1: every node is a domain of its own)."""
    domains_per_rack: int = 4

    def node(self, n: int) -> Node:
        """Node number `n` of the group (C1)."""
        domain = n // self.nodes_per_domain
        return Node(
            NodeId(f"{self.name}-{n:04d}"),
            self.gpu_type,
            self.gpus_per_node,
            nvlink_domain=f"{self.name}-nvl{domain:03d}",
            rack=f"{self.name}-rack{domain // self.domains_per_rack:02d}",
        )


@dataclass(frozen=True, slots=True)
class CapacityChange:
    """At `at` seconds after the trace's origin, `nodes` nodes of `group` are added, drained
    or removed (C2, C3)."""

    at: float
    kind: ChangeKind
    group: str
    nodes: int
    duration: float | None = None
    """For a drain: how long until the nodes come back up; None: they stay drained."""


@dataclass(frozen=True, slots=True)
class NodeChange:
    """A node as it is from `at` on; `node` None means it left the cluster."""

    at: float
    id: NodeId
    node: Node | None


@dataclass(frozen=True)
class ClusterSpec:
    """Node groups (in order: the first group's GPU type is the default type) and changes."""

    groups: tuple[NodeGroup, ...]
    changes: tuple[CapacityChange, ...] = ()
    name: str = "cluster"

    @property
    def default_gpu_type(self) -> GpuType:
        """The type given to trace jobs that name none."""
        return self.groups[0].gpu_type

    def nodes(self) -> tuple[Node, ...]:
        """The nodes at the start, group by group."""
        return tuple(g.node(n) for g in self.groups for n in range(g.nodes))

    def node_changes(self) -> tuple[NodeChange, ...]:
        """Every change of a node's presence or state the spec's changes make, in time order
        (C2, C3). Changes that find too few nodes take what there is."""
        present: dict[str, list[Node]] = {
            g.name: [g.node(n) for n in range(g.nodes)] for g in self.groups
        }
        added = {g.name: g.nodes for g in self.groups}
        out: list[NodeChange] = []
        steps = sorted(
            [(c.at, 0, i, c) for i, c in enumerate(self.changes)]
            + [
                (c.at + c.duration, 1, i, c)
                for i, c in enumerate(self.changes)
                if c.kind is ChangeKind.DRAIN and c.duration is not None
            ],
            key=lambda s: s[:3],
        )
        drained: dict[int, list[NodeId]] = {}
        for at, undo, i, change in steps:
            group, nodes = self.group(change.group), present[change.group]
            if undo:
                back = set(drained.pop(i, []))
                for k, node in enumerate(nodes):
                    if node.id in back and node.state is NodeState.DRAINING:
                        nodes[k] = replace(node, state=NodeState.UP)
                        out.append(NodeChange(at, node.id, nodes[k]))
            elif change.kind is ChangeKind.ADD:
                for n in range(added[group.name], added[group.name] + change.nodes):
                    nodes.append(group.node(n))
                    out.append(NodeChange(at, nodes[-1].id, nodes[-1]))
                added[group.name] += change.nodes
            elif change.kind is ChangeKind.REMOVE:
                for node in nodes[max(0, len(nodes) - change.nodes) :]:
                    out.append(NodeChange(at, node.id, None))
                del nodes[max(0, len(nodes) - change.nodes) :]
            else:
                up = [k for k, node in enumerate(nodes) if node.state is NodeState.UP]
                for k in up[max(0, len(up) - change.nodes) :]:
                    nodes[k] = replace(nodes[k], state=NodeState.DRAINING)
                    out.append(NodeChange(at, nodes[k].id, nodes[k]))
                    drained.setdefault(i, []).append(nodes[k].id)
        return tuple(out)

    def gpus(self) -> dict[GpuType, int]:
        """GPUs per type at the start."""
        out: dict[GpuType, int] = {}
        for g in self.groups:
            out[g.gpu_type] = out.get(g.gpu_type, 0) + g.nodes * g.gpus_per_node
        return out

    def group(self, name: str) -> NodeGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise InvalidRequest([f"no node group is named {name!r}"])

    def scaled(self, factor: float) -> ClusterSpec:
        """The same cluster with every group's node count (and every change) times `factor`,
        rounded, at least one node per group: the cluster sizes of a sweep."""
        if not 0 < factor < math.inf:
            raise InvalidRequest([f"a scale factor must be positive (got {factor:g})"])
        groups = tuple(replace(g, nodes=max(1, round(g.nodes * factor))) for g in self.groups)
        changes = tuple(replace(c, nodes=max(1, round(c.nodes * factor))) for c in self.changes)
        label = f"{self.name} x{factor:g}"
        return ClusterSpec(groups, changes, label)

    @classmethod
    def uniform(
        cls,
        nodes: int,
        gpu_type: str = "V100",
        gpus_per_node: int = 8,
        nodes_per_domain: int = 1,
        domains_per_rack: int = 4,
        name: str = "",
    ) -> ClusterSpec:
        """One group of `nodes` identical servers."""
        group = NodeGroup(
            gpu_type.lower(),
            GpuType(gpu_type),
            nodes,
            gpus_per_node,
            nodes_per_domain,
            domains_per_rack,
        )
        spec = cls((group,), name=name or f"{nodes} x {gpus_per_node} {gpu_type}")
        problems = _group_problems(group, "cluster")
        if problems:
            raise InvalidRequest(problems)
        return spec

    @classmethod
    def from_mapping(cls, data: object) -> ClusterSpec:
        """Read a spec from a parsed YAML or JSON document; every problem is listed."""
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise InvalidRequest(["a cluster spec must be a mapping with `node_groups`"])
        _unknown_keys(data, {"name", "node_groups", "changes"}, "", problems)
        raw_groups = data.get("node_groups")
        if not isinstance(raw_groups, Sequence) or isinstance(raw_groups, str) or not raw_groups:
            problems.append("node_groups: a cluster spec needs a list of node groups")
            raise InvalidRequest(problems)
        groups = [_group(g, f"node_groups[{i}]", problems) for i, g in enumerate(raw_groups)]
        names = [g.name for g in groups if g is not None]
        known = (set(names) | {_group_name(g) for g in raw_groups}) - {""}
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"node_groups: the name {name!r} is used twice")
        raw_changes = data.get("changes", []) or []
        if not isinstance(raw_changes, Sequence) or isinstance(raw_changes, str):
            problems.append("changes: must be a list")
            raw_changes = []
        changes = [_change(c, f"changes[{i}]", known, problems) for i, c in enumerate(raw_changes)]
        name = data.get("name", "cluster")
        if not isinstance(name, str) or not name:
            problems.append("name: must be a non-empty string")
        if problems:
            raise InvalidRequest(problems)
        ordered = sorted((c for c in changes if c is not None), key=lambda c: c.at)
        return cls(
            tuple(g for g in groups if g is not None), tuple(ordered), str(name) or "cluster"
        )


def _group_name(data: object) -> str:
    """The name a node group is known by, as far as it can be read."""
    if isinstance(data, Mapping):
        name, gpu_type = data.get("name"), data.get("gpu_type")
        if isinstance(name, str):
            return name
        if isinstance(gpu_type, str):
            return gpu_type.lower()
    return ""


def _unknown_keys(data: Mapping[Any, Any], known: set[str], at: str, problems: list[str]) -> None:
    for key in data:
        if key not in known:
            where = f"{at}." if at else ""
            problems.append(f"{where}{key}: unknown field (known: {', '.join(sorted(known))})")


def _group(data: object, at: str, problems: list[str]) -> NodeGroup | None:
    if not isinstance(data, Mapping):
        problems.append(f"{at}: a node group must be a mapping")
        return None
    known = {"name", "gpu_type", "nodes", "gpus_per_node", "nodes_per_domain", "domains_per_rack"}
    _unknown_keys(data, known, at, problems)
    gpu_type = data.get("gpu_type")
    if not isinstance(gpu_type, str) or not gpu_type:
        problems.append(f"{at}.gpu_type: required, a name such as H100")
        return None
    name = data.get("name", gpu_type.lower())
    if not isinstance(name, str) or not name:
        problems.append(f"{at}.name: must be a non-empty string")
        return None
    counts = {}
    for key, default, least in (
        ("nodes", None, 0),
        ("gpus_per_node", 8, 1),
        ("nodes_per_domain", 1, 1),
        ("domains_per_rack", 4, 1),
    ):
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            problems.append(f"{at}.{key}: must be an integer >= {least} (got {value!r})")
            return None
        counts[key] = value
    group = NodeGroup(name, GpuType(gpu_type), **counts)
    problems.extend(_group_problems(group, at))
    return group


def _group_problems(group: NodeGroup, at: str) -> list[str]:
    checks = [
        (group.nodes >= 0, f"{at}.nodes: cannot be negative"),
        (group.gpus_per_node >= 1, f"{at}.gpus_per_node: must be at least 1"),
        (group.nodes_per_domain >= 1, f"{at}.nodes_per_domain: must be at least 1"),
        (group.domains_per_rack >= 1, f"{at}.domains_per_rack: must be at least 1"),
    ]
    return [message for ok, message in checks if not ok]


def _change(data: object, at: str, groups: set[str], problems: list[str]) -> CapacityChange | None:
    if not isinstance(data, Mapping):
        problems.append(f"{at}: a change must be a mapping with at, one of add/drain/remove")
        return None
    kinds = [k for k in ChangeKind if k.value in data]
    _unknown_keys(data, {"at", "for", "group", *ChangeKind}, at, problems)
    if len(kinds) != 1:
        problems.append(f"{at}: give exactly one of add, drain, remove (a number of nodes)")
        return None
    kind = kinds[0]
    nodes = data[kind.value]
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
        problems.append(f"{at}.{kind.value}: must be a number of nodes >= 1 (got {nodes!r})")
        return None
    when = _duration(data.get("at"), f"{at}.at", problems)
    group = data.get("group", next(iter(sorted(groups))) if len(groups) == 1 else None)
    if group not in groups:
        problems.append(
            f"{at}.group: must name a node group ({', '.join(sorted(groups))}); got {group!r}"
        )
        return None
    span = _duration(data["for"], f"{at}.for", problems) if "for" in data else None
    if "for" in data and kind is not ChangeKind.DRAIN:
        problems.append(f"{at}.for: only a drain has a duration")
    if when is None or ("for" in data and span is None):
        return None
    return CapacityChange(when, kind, str(group), nodes, span)


def _duration(value: object, at: str, problems: list[str]) -> float | None:
    if value is None:
        problems.append(f"{at}: required, a time such as 30d, 12h or 3600 (seconds)")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        problems.append(f"{at}: must be a time such as 30d, 12h or 3600 (seconds)")
        return None
    try:
        return float(parse_duration(value))
    except ValueError as e:
        problems.append(f"{at}: {e}")
        return None
