"""The shadow search finds the earliest start the plain definition gives (ADR 0006).

`find_shadow` takes shortcuts: running sums of released GPUs for gangs that may split any
way, cut points worked out only as far as the search goes, domain sums from slices when a
domain's nodes sit side by side. The oracle here takes none: it tries every release instant
in time order, adds what each node has got back by then (nodes that take no work get
nothing), sums domains node by node, and places the gang. Both must give the same start and
the same placement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.kernel.units import Instant
from kizuna.scheduling.backfill import Release, Shadow, find_shadow
from kizuna.scheduling.capacity import Layout, Pool
from kizuna.scheduling.model import Job, NodeState
from kizuna.scheduling.placement import Parts, Topology, place
from kizuna.scheduling.testing import job, nodes
from kizuna.scheduling.type_state import NOTHING

NOW = Instant(1_000.0)
Draw = st.DrawFn


@st.composite
def searches(draw: Draw) -> tuple[Pool, list[Release], Job]:
    """A pool of one GPU type (nodes in any order, some draining), GPUs held by running
    jobs that give them back at drawn instants (several at once now and then), and a gang."""
    count = draw(st.integers(1, 10))
    per_domain = draw(st.integers(1, 4))
    made = list(nodes(count, gpus=draw(st.sampled_from([4, 8])), per_domain=per_domain))
    order = draw(st.permutations(range(count)))
    made = [made[i] for i in order]  # domains side by side or interleaved
    draining = draw(st.sets(st.integers(0, count - 1), max_size=2))
    made = [
        replace(n, state=NodeState.DRAINING) if i in draining else n for i, n in enumerate(made)
    ]
    pool = Pool(Layout.of(made))
    releases: list[Release] = []
    instants = st.sampled_from([1_100.0, 1_500.0, 2_000.0, 2_000.0, 3_600.0, 7_200.0])
    for i, node in enumerate(made):
        held = draw(st.integers(0, node.gpus))
        if not held:
            continue
        pool.hold(node.id, range(held), f"r{i}")
        first = draw(st.integers(1, held))  # one or two jobs on the node
        for k, part in enumerate(p for p in (first, held - first) if p):
            releases.append((Instant(draw(instants)), i, part, f"r{i}-{k}"))
    releases.sort()
    size = made[0].gpus
    per_node = draw(st.sampled_from([None, None, size // 2, size]))
    gpus = per_node * draw(st.integers(1, 3)) if per_node else draw(st.integers(1, 3 * size))
    gang = job("head", gpus=gpus, per_node=per_node, one_domain=draw(st.booleans()))
    return pool, releases, gang


def _domain_sums(topo: Topology, usable: Sequence[int]) -> list[int]:
    return [sum(usable[i] for i in members) for members in topo.domain_nodes]


def _earliest(pool: Pool, releases: list[Release], gang: Job) -> tuple[Instant, Parts] | None:
    """The oracle: each candidate start in time order, placed from scratch."""
    starts = [NOW, *sorted({at for at, _, _, _ in releases})]
    for start in starts:
        usable = list(pool.now.usable)
        for at, i, n, _ in releases:
            if at <= start and pool.schedulable[i]:
                usable[i] += n
        dom = _domain_sums(pool.topo, usable)
        parts = place(pool.topo, usable, dom, gang.gpus, gang.gpus_per_node, gang.one_domain)
        if parts is not None:
            return Instant(max(NOW, start)), parts
    return None


@settings(max_examples=400, deadline=None)
@given(searches())
def test_the_shadow_is_the_earliest_start_that_places_the_gang(
    search: tuple[Pool, list[Release], Job],
) -> None:
    pool, releases, gang = search
    found: Shadow | None = find_shadow(pool, releases, gang, NOW, lambda at: NOTHING)
    expected = _earliest(pool, releases, gang)
    if expected is None:
        assert found is None
        return
    assert found is not None
    assert (found.start, found.parts) == expected


@settings(max_examples=200, deadline=None)
@given(searches())
def test_domain_sums_add_each_domains_nodes(search: tuple[Pool, list[Release], Job]) -> None:
    pool, _, _ = search
    usable = list(pool.now.usable)
    assert pool.topo.domain_sums(usable) == _domain_sums(pool.topo, usable)
