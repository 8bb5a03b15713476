"""Free GPUs of one GPU type during a cycle: who holds what, and views for placement.

A cycle only ever takes GPUs (releases happen between cycles), so every view's free counts
only shrink while a cycle runs. That makes a failed placement final for the rest of the cycle:
`View.failed` remembers the smallest gang of each shape that did not fit, and any larger gang
of that shape is refused without a search (ADR 0008).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kizuna.kernel.errors import InconsistentSnapshot
from kizuna.kernel.ids import NodeId
from kizuna.scheduling.model import Allocation, Node, NodeState, Shape
from kizuna.scheduling.placement import Parts, Topology, place

ShapeKey = tuple[int, bool, frozenset[int]]
"""(GPUs per node or 0, one domain, excluded nodes): gangs of one shape, ordered by size."""


@dataclass
class View:
    """Usable GPU counts per node, with domain sums and a memo of failed gang sizes."""

    topo: Topology
    usable: list[int]
    domain_usable: list[int] = field(default_factory=list)
    failed: dict[ShapeKey, int] = field(default_factory=dict)
    failures: int = 0
    """Bumped whenever `failed` learns a smaller size."""
    version: int = 0
    """Bumped on every change, so derived figures can be cached."""
    holes: dict[Shape, tuple[int, int]] = field(default_factory=dict)

    free: int = 0
    """Usable GPUs on all nodes together."""

    def __post_init__(self) -> None:
        if not self.domain_usable:
            self.domain_usable = self.topo.domain_sums(self.usable)
        self.free = sum(self.domain_usable)

    def set(self, node: int, value: int) -> None:
        change = value - self.usable[node]
        self.domain_usable[self.topo.domain_of[node]] += change
        self.free += change
        self.usable[node] = value
        self.version += 1

    def find(
        self, gpus: int, per_node: int | None, one_domain: bool, exclude: frozenset[int]
    ) -> Parts | None:
        """Place a gang, or None; remembers failures so a larger gang of the shape fails fast."""
        key = (per_node or 0, one_domain, exclude)
        if gpus >= self.failed.get(key, 1 << 30):
            return None
        usable, dom = self.usable, self.domain_usable
        if exclude:
            usable = [0 if i in exclude else u for i, u in enumerate(usable)]
            dom = self.topo.domain_sums(usable)
        parts = (
            place(self.topo, usable, dom, gpus, per_node, one_domain) if sum(dom) >= gpus else None
        )
        if parts is None:
            self.failed[key] = min(gpus, self.failed.get(key, 1 << 30))
            self.failures += 1
        return parts

    def fits(
        self, gpus: int, per_node: int | None, one_domain: bool, exclude: frozenset[int]
    ) -> bool:
        """Would `find` place the gang? Answered without placing when the gang may span
        domains: then it fits exactly when enough GPUs (or nodes with `per_node` free) are
        usable (ADR 0007)."""
        if one_domain or exclude:
            return self.find(gpus, per_node, one_domain, exclude) is not None
        key = (per_node or 0, one_domain, exclude)
        if gpus >= self.failed.get(key, 1 << 30):
            return False
        if per_node:
            room = sum(1 for u in self.usable if u >= per_node) >= gpus // per_node
        else:
            room = self.free >= gpus
        if not room:
            self.failed[key] = gpus  # remembered as `find` would: a larger one fails too
            self.failures += 1
        return room

    def largest_hole(self, per_node: int | None, one_domain: bool) -> int:
        """The most GPUs a gang of this shape could get now: for messages, not for placement."""
        key = (per_node or 0, one_domain)
        cached = self.holes.get(key)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        hole = self._largest_hole(per_node, one_domain)
        self.holes[key] = (self.version, hole)
        return hole

    def _largest_hole(self, per_node: int | None, one_domain: bool) -> int:
        if per_node:
            return per_node * max(
                (
                    sum(1 for i in nodes if self.usable[i] >= per_node)
                    for nodes in self.topo.domain_nodes
                )
                if one_domain
                else [sum(1 for u in self.usable if u >= per_node)],
                default=0,
            )
        return max(self.domain_usable, default=0) if one_domain else self.free


@dataclass(frozen=True)
class Layout:
    """The nodes of one GPU type as placement sees them: order, topology, which take work."""

    nodes: tuple[Node, ...]
    index: Mapping[NodeId, int]
    topo: Topology
    schedulable: tuple[bool, ...]

    @classmethod
    def of(cls, nodes: Sequence[Node]) -> Layout:
        nodes = tuple(nodes)
        return cls(
            nodes,
            {n.id: i for i, n in enumerate(nodes)},
            _topology(nodes),
            tuple(n.state is NodeState.UP for n in nodes),
        )


class Pool:
    """All nodes of one GPU type: GPUs held per node, and the views a cycle places on.

    `now` is the view of GPUs free this instant. Once EASY backfill reserves a start for the
    highest blocked job, `late` is the view for jobs that would still run at that start: on
    each node it offers only what the reserved job will not need (ADR 0006).
    """

    def __init__(
        self, layout: Layout, held: list[set[int]] | None = None, now: View | None = None
    ) -> None:
        self.layout = layout
        self.nodes, self.index, self.topo = layout.nodes, layout.index, layout.topo
        self.schedulable = layout.schedulable
        self.held = held if held is not None else [set() for _ in self.nodes]
        self.forked = held is not None
        """Whether the sets of held GPUs came from a parent: each is copied on its first
        change (`owned` then names it)."""
        self.owned: set[int] = set()
        if now is None:
            usable = [
                n.gpus if up else 0 for n, up in zip(self.nodes, self.schedulable, strict=True)
            ]
            now = View(self.topo, usable)
        self.now = now
        self.late: View | None = None
        self.slack: list[int] = []

    def _own(self, i: int) -> set[int]:
        """Node `i`'s held GPUs, to change: copied first if still the parent's."""
        if self.forked and i not in self.owned:
            self.owned.add(i)
            self.held[i] = set(self.held[i])
        return self.held[i]

    def fork(self) -> Pool:
        """An independent copy of what is held, for one cycle to place on: node by node,
        the held GPUs are copied when the fork first takes some there."""
        now = self.now
        view = View(self.topo, list(now.usable), list(now.domain_usable))
        return Pool(self.layout, list(self.held), view)

    def release(self, node: NodeId, indices: Iterable[int]) -> None:
        """Forget GPUs a job held (it ended, or left the snapshot)."""
        i = self.index[node]
        self._own(i).difference_update(indices)
        if self.schedulable[i]:
            self.now.set(i, self.nodes[i].gpus - len(self.held[i]))

    def hold(self, node: NodeId, indices: Iterable[int], job: str = "?") -> None:
        """Record GPUs held by a running job (building the pool from a snapshot). A snapshot
        that gives a GPU to two jobs, or names a node or GPU that does not exist, is refused:
        every decision after it would rest on a false picture."""
        i = self.index.get(node)
        if i is None:
            raise InconsistentSnapshot(f"running job {job} holds GPUs on unknown node {node}")
        wanted = set(indices)
        if wanted and (min(wanted) < 0 or max(wanted) >= self.nodes[i].gpus):
            raise InconsistentSnapshot(
                f"running job {job} holds GPUs {sorted(wanted)} on node {node},"
                f" which has {self.nodes[i].gpus}"
            )
        if wanted & self.held[i]:
            raise InconsistentSnapshot(
                f"running job {job} holds GPUs {sorted(wanted & self.held[i])} of node {node},"
                " which another running job holds"
            )
        self._own(i).update(wanted)
        if self.schedulable[i]:
            self.now.set(i, self.nodes[i].gpus - len(self.held[i]))

    def reserve_late(self, slack: list[int]) -> None:
        """Start offering `late` placements limited by `slack` per node."""
        self.slack = slack
        if len(slack) != len(self.now.usable):
            raise ValueError("the slack must name every node of the pool")
        self.late = View(self.topo, list(map(min, self.now.usable, slack)))

    def shrink_slack(self, parts: Parts) -> None:
        """GPUs promised to a job that will still hold them at the reserved start (negative
        counts give back GPUs that a preemption frees before that start)."""
        if self.late is None:
            return
        for i, count in parts:
            self.slack[i] = max(0, self.slack[i] - count)
            self.late.set(i, min(self.now.usable[i], self.slack[i]))

    def take(self, parts: Parts, late: bool) -> Allocation:
        """Give the GPUs of `parts` to a job; `late` jobs also use up the reserved job's slack."""
        out = []
        for i, count in parts:
            node = self.nodes[i]
            held = self._own(i)
            chosen = tuple([g for g in range(node.gpus) if g not in held][:count])
            if len(chosen) != count:
                raise AssertionError(f"node {node.id} has fewer than {count} free GPUs")
            held.update(chosen)
            self.now.set(i, self.now.usable[i] - count)
            if self.late is not None:
                if late:
                    self.slack[i] -= count
                self.late.set(i, min(self.now.usable[i], self.slack[i]))
            out.append((node.id, chosen))
        return Allocation(tuple(out))

    def view_for(self, late: bool) -> View:
        return self.late if late and self.late is not None else self.now


def _topology(nodes: Sequence[Node]) -> Topology:
    domains: dict[str, int] = {}
    racks: dict[str, int] = {}
    domain_rack: list[int] = []
    domain_of = []
    for node in nodes:
        if node.domain not in domains:
            domains[node.domain] = len(domains)
            domain_rack.append(racks.setdefault(node.rack, len(racks)))
        domain_of.append(domains[node.domain])
    domain_nodes: list[list[int]] = [[] for _ in domains]
    for i, d in enumerate(domain_of):
        domain_nodes[d].append(i)
    rack_domains: list[list[int]] = [[] for _ in racks]
    for d, r in enumerate(domain_rack):
        rack_domains[r].append(d)
    return Topology(
        sizes=tuple(n.gpus for n in nodes),
        domain_of=tuple(domain_of),
        domain_nodes=tuple(map(tuple, domain_nodes)),
        rack_domains=tuple(map(tuple, rack_domains)),
    )
