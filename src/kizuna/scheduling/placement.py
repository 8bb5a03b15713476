"""Topology-aware, all-or-nothing placement of one gang (ADR 0007).

Preference, in order: fewest NVLink domains, then fewest racks, then best fit (the tightest
hole that holds the gang), so large holes stay free for large gangs. Works on plain lists of
usable GPU counts per node so the same code serves "now", "at the shadow time" and what-ifs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

Parts = list[tuple[int, int]]
"""A placement: (node index, GPU count) pairs."""


@dataclass(frozen=True)
class Topology:
    """The static layout of one GPU type's nodes: which node sits in which domain and rack."""

    sizes: tuple[int, ...]
    domain_of: tuple[int, ...]
    domain_nodes: tuple[tuple[int, ...], ...]
    rack_domains: tuple[tuple[int, ...], ...]

    def domain_sums(self, usable: Sequence[int]) -> list[int]:
        spans = self._spans
        if spans is not None:  # each domain's nodes side by side
            if len(spans) == len(usable):  # a node per domain: the sums are the nodes'
                return list(usable)
            return [sum(usable[a:b]) for a, b in spans]
        out = [0] * len(self.domain_nodes)
        for i, d in enumerate(self.domain_of):  # one pass over the nodes: domains are small
            out[d] += usable[i]
        return out

    @cached_property
    def _spans(self) -> tuple[tuple[int, int], ...] | None:
        """Each domain's nodes as (first, past the last) when they are consecutive."""
        spans = tuple((nodes[0], nodes[-1] + 1) for nodes in self.domain_nodes if nodes)
        if len(spans) != len(self.domain_nodes):
            return None
        consecutive = all(
            list(nodes) == list(range(a, b))
            for nodes, (a, b) in zip(self.domain_nodes, spans, strict=True)
        )
        return spans if consecutive else None

    @cached_property
    def node_domains(self) -> bool:
        """Is each domain one node, domain i being node i (servers whose GPUs share one
        NVLink switch, the common case)? Placement then counts nodes, not domains."""
        return all(nodes == (i,) for i, nodes in enumerate(self.domain_nodes))


def place(
    topo: Topology,
    usable: Sequence[int],
    domain_usable: Sequence[int] | None,
    gpus: int,
    gpus_per_node: int | None,
    one_domain: bool,
) -> Parts | None:
    """A placement of the whole gang on `usable` GPUs, or None if none exists.
    `domain_usable` (the GPUs per domain) is worked out when not given and needed."""
    if gpus_per_node:
        return _place_nodes(topo, usable, gpus // gpus_per_node, gpus_per_node, one_domain)
    return _place_gpus(topo, usable, domain_usable, gpus, one_domain)


# -- gangs of a total GPU count, split across nodes in any way ------------------------------


def _place_gpus(
    topo: Topology, usable: Sequence[int], dom: Sequence[int] | None, gpus: int, one_domain: bool
) -> Parts | None:
    node = _best_fit_node(usable, gpus)
    if node is not None:
        return [(node, gpus)]
    single = topo.node_domains
    if dom is None:
        dom = usable if single else topo.domain_sums(usable)
    # with a node per domain, no domain holds the gang when no node does
    fits = [] if single else [d for d, free in enumerate(dom) if free >= gpus]
    if fits:
        best = min(fits, key=lambda d: (dom[d], d))
        return _fill_domain(topo.domain_nodes[best], usable, gpus)
    if one_domain:
        return None
    domains = _fewest_domains(topo, dom, gpus)
    if domains is None:
        return None
    parts: Parts = []
    need = gpus
    for d in domains:
        take = min(dom[d], need)
        if single:
            parts.append((d, take))  # what `_fill_domain` gives for a domain of one node
        else:
            parts.extend(_fill_domain(topo.domain_nodes[d], usable, take))
        need -= take
    return parts


def _best_fit_node(usable: Sequence[int], gpus: int) -> int | None:
    """The node with the fewest usable GPUs that holds the gang (the first of those)."""
    fits = [free for free in usable if free >= gpus]
    return usable.index(min(fits)) if fits else None


def _fill_domain(nodes: Sequence[int], usable: Sequence[int], gpus: int) -> Parts:
    """Fewest nodes: whole nodes largest first, the remainder on the tightest node that holds it."""
    ranked = sorted((i for i in nodes if usable[i] > 0), key=lambda i: (-usable[i], i))
    parts: Parts = []
    need = gpus
    for pos, i in enumerate(ranked):
        if usable[i] >= need:
            last = min((j for j in ranked[pos:] if usable[j] >= need), key=lambda j: (usable[j], j))
            parts.append((last, need))
            return parts
        parts.append((i, usable[i]))
        need -= usable[i]
    raise AssertionError("domain holds fewer GPUs than its sum says")


def _fewest_domains(topo: Topology, weight: Sequence[int], need: int) -> list[int] | None:
    """Fewest domains whose weights reach `need` (largest first gives the fewest); among
    choices of that many domains, one inside a single rack if there is one, the tightest."""
    fewest = _largest_first(range(len(weight)), weight, need)
    if fewest is None:
        return None
    best: tuple[int, int] | None = None
    chosen = fewest
    for r, domains in enumerate(topo.rack_domains):
        if sum([weight[d] for d in domains]) < need:
            continue  # the rack cannot hold the gang at all
        picked = _largest_first(domains, weight, need)
        if picked is not None and len(picked) == len(fewest):
            key = (sum(weight[d] for d in picked) - need, r)
            if best is None or key < best:
                best, chosen = key, picked
    return chosen


def _largest_first(domains: Sequence[int], weight: Sequence[int], need: int) -> list[int] | None:
    picked: list[int] = []
    # heaviest first, ties in the given (ascending) order: a stable sort keeps it reversed
    for d in sorted(domains, key=weight.__getitem__, reverse=True):
        if need <= 0 or weight[d] <= 0:
            break
        picked.append(d)
        need -= weight[d]
    return picked if need <= 0 else None


# -- gangs of a fixed shape: N nodes x G GPUs ----------------------------------------------


def _place_nodes(
    topo: Topology, usable: Sequence[int], nodes: int, per_node: int, one_domain: bool
) -> Parts | None:
    if nodes >= 1 and topo.node_domains:
        return _place_on_node_domains(topo, usable, nodes, per_node, one_domain)
    eligible = [[i for i in dn if usable[i] >= per_node] for dn in topo.domain_nodes]
    counts = [len(e) for e in eligible]
    fits = [d for d, c in enumerate(counts) if c >= nodes]
    if fits:
        best = min(fits, key=lambda d: (sum(usable[i] for i in eligible[d]), d))
        return [(i, per_node) for i in _tightest(eligible[best], usable, nodes)]
    if one_domain:
        return None
    domains = _fewest_domains(topo, counts, nodes)
    if domains is None:
        return None
    parts: Parts = []
    need = nodes
    for d in domains:
        take = min(counts[d], need)
        parts.extend((i, per_node) for i in _tightest(eligible[d], usable, take))
        need -= take
    return parts


def _place_on_node_domains(
    topo: Topology, usable: Sequence[int], nodes: int, per_node: int, one_domain: bool
) -> Parts | None:
    """`_place_nodes` where each domain is one node (domain i is node i): a domain holds at
    most one of the gang's nodes, so only a gang of one node fits in one domain (on the
    tightest node that holds it), and a larger one takes one node in each of as many
    domains, which `_fewest_domains` picks as: the first nodes with `per_node` usable of
    the first rack that has enough of them, else the first such nodes of the cluster."""
    if nodes == 1:
        node = _best_fit_node(usable, per_node)
        return [(node, per_node)] if node is not None else None
    if one_domain:
        return None
    holds = [u >= per_node for u in usable]
    for domains in topo.rack_domains:
        picked = [d for d in domains if holds[d]]
        if len(picked) >= nodes:
            return [(d, per_node) for d in picked[:nodes]]
    picked = [d for d, ok in enumerate(holds) if ok]
    return [(d, per_node) for d in picked[:nodes]] if len(picked) >= nodes else None


def _tightest(nodes: Sequence[int], usable: Sequence[int], count: int) -> list[int]:
    return sorted(nodes, key=lambda i: (usable[i], i))[:count]
