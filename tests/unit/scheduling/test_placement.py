"""Topology-aware placement: a gang lands on as few NVLink domains and racks as possible, on
the tightest hole that holds it, so that large holes stay free for large gangs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from kizuna.kernel.ids import NodeId
from kizuna.kernel.units import Instant
from kizuna.scheduling import Allocation, Job, Node, RunningJob, Snapshot, make_policy, run_cycle
from kizuna.scheduling.placement import Topology, place
from kizuna.scheduling.testing import job, nodes, running


def name(n: int) -> NodeId:
    return NodeId(f"h100-{n:04d}")


def occupied(used: Mapping[int, int]) -> list[RunningJob]:
    """Filler jobs holding the first `used[n]` GPUs of node n for a long time."""
    return [
        running(job(f"fill{n}", gpus=k, walltime=1e6), 0.0, {name(n): range(k)})
        for n, k in used.items()
        if k
    ]


def admit(
    cluster: Sequence[Node], used: Mapping[int, int], pending: Sequence[Job]
) -> dict[str, Allocation]:
    """Allocations of the admitted jobs, quotas and budgets off, FIFO order."""
    snapshot = Snapshot(tuple(cluster), tuple(occupied(used)), tuple(pending))
    policy = make_policy("fifo", quotas=False, budgets=False)
    result = run_cycle(snapshot, policy, Instant(0.0))
    return {a.job: a.allocation for a in result.admissions}


def spread(allocation: Allocation) -> dict[NodeId, int]:
    return {node: len(indices) for node, indices in allocation.parts}


@pytest.mark.parametrize(
    ("used", "gpus", "expected"),
    [
        pytest.param({0: 4, 1: 4}, 8, {name(2): 8}, id="single-node-over-two-halves"),
        pytest.param({0: 6, 2: 0}, 2, {name(0): 2}, id="tightest-node-holds-small-gang"),
        pytest.param({0: 2, 1: 2, 2: 2}, 6, {name(0): 6}, id="first-of-equal-holes"),
    ],
)
def test_single_node_preferred_and_best_fit(
    used: dict[int, int], gpus: int, expected: dict[NodeId, int]
) -> None:
    got = admit(nodes(3), used, [job("j", gpus=gpus)])
    assert spread(got["j"]) == expected


def test_single_node_over_a_tighter_domain() -> None:
    """Domain 0 has 4+4 free, domain 1 has 6+8: a 6-GPU gang takes the 6-GPU node whole
    rather than splitting across the two halves of the tighter domain."""
    got = admit(nodes(4, per_domain=2), {0: 4, 1: 4, 2: 2}, [job("j", gpus=6)])
    assert spread(got["j"]) == {name(2): 6}


def test_one_domain_over_two() -> None:
    """Node 0 and node 2 are both free, but 2 and 3 share a domain: the gang goes there."""
    got = admit(nodes(4, per_domain=2), {1: 8}, [job("j", gpus=16)])
    assert spread(got["j"]) == {name(2): 8, name(3): 8}


def test_one_rack_over_two_when_domains_must_span() -> None:
    """Rack 0 holds 16+4 free, rack 1 holds 12+12: 24 GPUs fit in rack 1 alone."""
    cluster = nodes(8, per_domain=2, per_rack=2)
    got = admit(cluster, {2: 4, 3: 8, 4: 4, 5: 0, 6: 4, 7: 0}, [job("j", gpus=24)])
    rack_of = {n.id: n.rack for n in cluster}
    assert {rack_of[node] for node in got["j"].nodes} == {"h100-rack01"}
    assert got["j"].gpus == 24


def test_tightest_rack_that_holds_the_gang() -> None:
    """Both racks hold 24 GPUs in two domains; rack 1 (24 free) is a tighter fit than rack 0
    (32 free), so rack 0 stays whole for a larger gang."""
    cluster = nodes(8, per_domain=2, per_rack=2)
    got = admit(cluster, {6: 8}, [job("j", gpus=24)])
    assert spread(got["j"]) == {name(4): 8, name(5): 8, name(7): 8}


def test_best_fit_domain_leaves_the_large_hole_for_the_next_gang() -> None:
    """A 10-GPU gang takes the 10-GPU domain, so a 16-GPU one-domain gang still fits."""
    pending = [job("ten", gpus=10, submit=0), job("sixteen", gpus=16, one_domain=True, submit=1)]
    got = admit(nodes(4, per_domain=2), {3: 6}, pending)
    assert set(got) == {"ten", "sixteen"}
    assert spread(got["ten"]) == {name(2): 8, name(3): 2}
    assert spread(got["sixteen"]) == {name(0): 8, name(1): 8}


@pytest.mark.parametrize(
    ("gpus", "per_node", "count"),
    [
        pytest.param(16, 4, 4, id="4-nodes-x-4"),
        pytest.param(16, 8, 2, id="2-nodes-x-8"),
        pytest.param(3, 1, 3, id="3-nodes-x-1"),
    ],
)
def test_per_node_shape_uses_exactly_n_nodes(gpus: int, per_node: int, count: int) -> None:
    got = admit(nodes(4), {}, [job("j", gpus=gpus, per_node=per_node)])
    assert sorted(spread(got["j"]).values()) == [per_node] * count


def test_per_node_shape_takes_the_tightest_nodes() -> None:
    got = admit(nodes(4), {1: 4, 3: 4}, [job("j", gpus=8, per_node=4)])
    assert spread(got["j"]) == {name(1): 4, name(3): 4}


def test_gpus_of_a_node_are_never_given_twice() -> None:
    got = admit(nodes(1), {0: 3}, [job("j", gpus=5)])
    assert got["j"].parts == ((name(0), (3, 4, 5, 6, 7)),)


# -- the placement function itself -----------------------------------------------------------


def topology(sizes: Sequence[int], domains: Sequence[int], racks: Sequence[int]) -> Topology:
    """Nodes of `sizes` GPUs, node i in domain `domains[i]`, domain d in rack `racks[d]`."""
    domain_nodes = tuple(
        tuple(i for i, d in enumerate(domains) if d == k) for k in range(len(racks))
    )
    rack_domains = tuple(
        tuple(d for d, r in enumerate(racks) if r == k) for k in range(max(racks) + 1)
    )
    return Topology(tuple(sizes), tuple(domains), domain_nodes, rack_domains)


TWO_DOMAINS = topology([8, 8, 8, 8], [0, 0, 1, 1], [0, 0])


@pytest.mark.parametrize(
    ("usable", "gpus", "per_node", "one_domain"),
    [
        pytest.param([8, 0, 4, 0], 16, None, False, id="too-few-gpus"),
        pytest.param([4, 4, 4, 4], 8, 8, False, id="no-node-whole"),
        pytest.param([8, 0, 8, 0], 16, None, True, id="one-domain-split-across-two"),
        pytest.param([8, 4, 8, 0], 3 * 8, 8, False, id="too-few-whole-nodes"),
        pytest.param([8, 0, 8, 0], 16, 8, True, id="nodes-in-two-domains"),
    ],
)
def test_place_returns_none_when_impossible(
    usable: list[int], gpus: int, per_node: int | None, one_domain: bool
) -> None:
    dom = TWO_DOMAINS.domain_sums(usable)
    assert place(TWO_DOMAINS, usable, dom, gpus, per_node, one_domain) is None


@pytest.mark.parametrize(
    ("usable", "gpus", "per_node"),
    [
        pytest.param([8, 2, 8, 8], 12, None, id="any-split"),
        pytest.param([8, 2, 8, 8], 16, 8, id="whole-nodes"),
    ],
)
def test_one_domain_is_respected_when_it_fits(
    usable: list[int], gpus: int, per_node: int | None
) -> None:
    dom = TWO_DOMAINS.domain_sums(usable)
    parts = place(TWO_DOMAINS, usable, dom, gpus, per_node, one_domain=True)
    assert parts is not None
    assert {TWO_DOMAINS.domain_of[i] for i, _ in parts} == {1}
    assert sum(n for _, n in parts) == gpus


def test_without_one_domain_the_gang_may_span_domains() -> None:
    usable = [8, 0, 8, 0]
    parts = place(TWO_DOMAINS, usable, TWO_DOMAINS.domain_sums(usable), 16, None, False)
    assert parts is not None
    assert sorted(parts) == [(0, 8), (2, 8)]


def test_place_never_uses_more_than_a_node_offers() -> None:
    usable = [3, 5, 2, 7]
    parts = place(TWO_DOMAINS, usable, TWO_DOMAINS.domain_sums(usable), 17, None, False)
    assert parts is not None
    assert all(0 < n <= usable[i] for i, n in parts)
    assert sum(n for _, n in parts) == 17


def test_fewest_domains_come_before_one_rack() -> None:
    """Rack A has three domains of 6 free GPUs each; racks B and C have one domain of 8 free
    each. A 16-GPU gang takes the two 8-GPU domains across racks (two domains) rather than
    rack A (three domains): fewest NVLink domains first, then fewest racks."""
    topo = Topology(
        sizes=(6, 6, 6, 8, 8),
        domain_of=(0, 1, 2, 3, 4),
        domain_nodes=((0,), (1,), (2,), (3,), (4,)),
        rack_domains=((0, 1, 2), (3,), (4,)),
    )
    usable = [6, 6, 6, 8, 8]
    parts = place(topo, usable, topo.domain_sums(usable), 16, None, False)
    assert parts is not None
    assert sorted(i for i, _ in parts) == [3, 4]


def test_one_rack_among_choices_of_as_few_domains() -> None:
    """Two domains are needed either way: the pair inside one rack wins over a pair across."""
    topo = Topology(
        sizes=(8, 8, 8),
        domain_of=(0, 1, 2),
        domain_nodes=((0,), (1,), (2,)),
        rack_domains=((0,), (1, 2)),
    )
    usable = [8, 8, 8]
    parts = place(topo, usable, topo.domain_sums(usable), 16, None, False)
    assert parts is not None
    assert sorted(i for i, _ in parts) == [1, 2]
