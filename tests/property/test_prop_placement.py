"""Placement on clusters whose NVLink domains are single nodes takes a shorter path
(`Topology.node_domains`, ADR 0007): it must choose exactly what the general one chooses.

The general path is the same `place` with the shortcut switched off, so the preferences
themselves (tightest node, fewest domains, one rack) stay pinned by test_placement.py; this
file pins only that the shortcut changes nothing, for any usable counts and gang."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.scheduling.capacity import Layout
from kizuna.scheduling.placement import Parts, Topology, place
from kizuna.scheduling.testing import nodes

Draw = st.DrawFn


@st.composite
def layouts(draw: Draw) -> tuple[Topology, list[int]]:
    """Up to 24 single-node domains, 1-4 to a rack, with drawn usable GPUs per node."""
    gpus = draw(st.sampled_from([4, 8]))
    made = nodes(
        draw(st.integers(1, 24)), gpus=gpus, per_domain=1, per_rack=draw(st.integers(1, 4))
    )
    usable = draw(st.lists(st.integers(0, gpus), min_size=len(made), max_size=len(made)))
    return Layout.of(made).topo, usable


def _general(topo: Topology) -> Topology:
    """The same layout, placed by the general path (the shortcut off)."""
    general = Topology(topo.sizes, topo.domain_of, topo.domain_nodes, topo.rack_domains)
    vars(general)["node_domains"] = False  # the cached answer, set before first use
    return general


def _best_fit(usable: Sequence[int], gpus: int) -> int | None:
    """The plain definition: the first node of the fewest usable GPUs that holds `gpus`."""
    best: int | None = None
    for i, free in enumerate(usable):
        if free >= gpus and (best is None or free < usable[best]):
            best = i
    return best


@settings(max_examples=400, deadline=None)
@given(
    layouts(),
    st.integers(1, 40),
    st.sampled_from([None, None, 1, 2, 4, 8]),
    st.booleans(),
)
def test_single_node_domains_place_as_the_general_path(
    layout: tuple[Topology, list[int]], count: int, per_node: int | None, one_domain: bool
) -> None:
    topo, usable = layout
    assert topo.node_domains
    gpus = per_node * (1 + count % 5) if per_node else count
    fast: Parts | None = place(topo, usable, None, gpus, per_node, one_domain)
    plain = place(_general(topo), usable, None, gpus, per_node, one_domain)
    assert fast == plain
    if fast is not None and per_node is None and _best_fit(usable, gpus) is not None:
        assert fast == [(_best_fit(usable, gpus), gpus)]  # one node when one holds it


def test_domains_of_several_nodes_take_the_general_path() -> None:
    assert not Layout.of(nodes(4, per_domain=2)).topo.node_domains
    assert Layout.of(nodes(4, per_domain=1)).topo.node_domains
