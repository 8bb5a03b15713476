"""Cluster specs: reading them (every mistake named by its path), the nodes they give (C1)
and how planned capacity changes add, drain and remove nodes (C2, C3)."""

from __future__ import annotations

from typing import Any

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType, NodeId
from kizuna.scheduling.model import Node, NodeState
from kizuna.simulation.cluster import (
    CapacityChange,
    ChangeKind,
    ClusterSpec,
    NodeChange,
    NodeGroup,
)

DAY = 86400.0
UP, DRAINING = NodeState.UP, NodeState.DRAINING

GROUP_FIELDS = "domains_per_rack, gpu_type, gpus_per_node, name, nodes, nodes_per_domain"
NOT_A_TIME = "must be a time such as 30d, 12h or 3600 (seconds)"


def problems_of(data: object) -> list[str]:
    with pytest.raises(InvalidRequest) as caught:
        ClusterSpec.from_mapping(data)
    return caught.value.problems


def spec(*changes: dict[str, Any], nodes: int = 4) -> ClusterSpec:
    """One group "h" of `nodes` 8-GPU H100 nodes, with the given changes."""
    return ClusterSpec.from_mapping(
        {"node_groups": [{"name": "h", "gpu_type": "H100", "nodes": nodes}], "changes": changes}
    )


def story(cluster: ClusterSpec) -> list[tuple[float, str, str]]:
    """Each node change as (at, node id, state or "removed")."""
    return [
        (c.at, c.id, c.node.state.value if c.node else "removed") for c in cluster.node_changes()
    ]


# -- reading a spec ------------------------------------------------------------------------


def test_defaults_of_a_minimal_spec() -> None:
    cluster = ClusterSpec.from_mapping({"node_groups": [{"gpu_type": "H100", "nodes": 2}]})
    assert cluster.name == "cluster"
    assert cluster.changes == ()
    assert cluster.groups == (
        NodeGroup(
            "h100",  # the name defaults to the GPU type in lower case
            GpuType("H100"),
            2,
            gpus_per_node=8,
            nodes_per_domain=1,
            domains_per_rack=4,
        ),
    )
    assert cluster.default_gpu_type == "H100"


def test_reads_every_field_and_orders_changes_by_time() -> None:
    cluster = ClusterSpec.from_mapping(
        {
            "name": "month-six",
            "node_groups": [
                {"name": "big", "gpu_type": "H100", "nodes": 4, "gpus_per_node": 4},
                {
                    "name": "old",
                    "gpu_type": "A100",
                    "nodes": 2,
                    "nodes_per_domain": 2,
                    "domains_per_rack": 3,
                },
            ],
            "changes": [
                {"at": "2d", "drain": 1, "for": "12h", "group": "old"},
                {"at": 3600, "add": 2, "group": "big"},
                {"at": "1-00:00:00", "remove": 1, "group": "old"},
            ],
        }
    )
    assert cluster.name == "month-six"
    assert cluster.default_gpu_type == "H100"  # the first group's type
    assert cluster.groups[1] == NodeGroup("old", GpuType("A100"), 2, 8, 2, 3)
    assert cluster.changes == (
        CapacityChange(3600.0, ChangeKind.ADD, "big", 2),
        CapacityChange(DAY, ChangeKind.REMOVE, "old", 1),
        CapacityChange(2 * DAY, ChangeKind.DRAIN, "old", 1, 12 * 3600.0),
    )


def test_a_change_of_a_one_group_cluster_may_omit_the_group() -> None:
    cluster = ClusterSpec.from_mapping(
        {"node_groups": [{"gpu_type": "H100", "nodes": 1}], "changes": [{"at": 0, "add": 1}]}
    )
    assert cluster.changes == (CapacityChange(0.0, ChangeKind.ADD, "h100", 1),)


def test_null_changes_are_none() -> None:
    cluster = ClusterSpec.from_mapping(
        {"node_groups": [{"gpu_type": "H100", "nodes": 1}], "changes": None}
    )
    assert cluster.changes == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param([], "a cluster spec must be a mapping with `node_groups`", id="not-a-mapping"),
        pytest.param(
            {}, "node_groups: a cluster spec needs a list of node groups", id="no-node-groups"
        ),
        pytest.param(
            {"node_groups": []},
            "node_groups: a cluster spec needs a list of node groups",
            id="empty-node-groups",
        ),
        pytest.param(
            {"node_groups": "h100"},
            "node_groups: a cluster spec needs a list of node groups",
            id="node-groups-a-string",
        ),
    ],
)
def test_refuses_a_spec_without_node_groups(data: object, message: str) -> None:
    assert problems_of(data) == [message]


H100 = {"gpu_type": "H100", "nodes": 1}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {"node_groups": [H100], "nodes": 3},
            "nodes: unknown field (known: changes, name, node_groups)",
            id="unknown-top-field",
        ),
        pytest.param(
            {"node_groups": [H100], "name": ""},
            "name: must be a non-empty string",
            id="empty-name",
        ),
        pytest.param(
            {"node_groups": [H100], "name": 7},
            "name: must be a non-empty string",
            id="name-not-text",
        ),
        pytest.param(
            {"node_groups": ["h100"]},
            "node_groups[0]: a node group must be a mapping",
            id="group-not-a-mapping",
        ),
        pytest.param(
            {"node_groups": [{**H100, "gpus": 8}]},
            f"node_groups[0].gpus: unknown field (known: {GROUP_FIELDS})",
            id="unknown-group-field",
        ),
        pytest.param(
            {"node_groups": [{"nodes": 1}]},
            "node_groups[0].gpu_type: required, a name such as H100",
            id="no-gpu-type",
        ),
        pytest.param(
            {"node_groups": [{"gpu_type": "", "nodes": 1}]},
            "node_groups[0].gpu_type: required, a name such as H100",
            id="empty-gpu-type",
        ),
        pytest.param(
            {"node_groups": [{**H100, "name": ""}]},
            "node_groups[0].name: must be a non-empty string",
            id="empty-group-name",
        ),
        pytest.param(
            {"node_groups": [{"gpu_type": "H100"}]},
            "node_groups[0].nodes: must be an integer >= 0 (got None)",
            id="no-node-count",
        ),
        pytest.param(
            {"node_groups": [{"gpu_type": "H100", "nodes": -1}]},
            "node_groups[0].nodes: must be an integer >= 0 (got -1)",
            id="negative-nodes",
        ),
        pytest.param(
            {"node_groups": [{"gpu_type": "H100", "nodes": True}]},
            "node_groups[0].nodes: must be an integer >= 0 (got True)",
            id="bool-nodes",
        ),
        pytest.param(
            {"node_groups": [{"gpu_type": "H100", "nodes": 1.5}]},
            "node_groups[0].nodes: must be an integer >= 0 (got 1.5)",
            id="fractional-nodes",
        ),
        pytest.param(
            {"node_groups": [{**H100, "gpus_per_node": 0}]},
            "node_groups[0].gpus_per_node: must be an integer >= 1 (got 0)",
            id="no-gpus-per-node",
        ),
        pytest.param(
            {"node_groups": [{**H100, "nodes_per_domain": 0}]},
            "node_groups[0].nodes_per_domain: must be an integer >= 1 (got 0)",
            id="no-nodes-per-domain",
        ),
        pytest.param(
            {"node_groups": [{**H100, "domains_per_rack": "4"}]},
            "node_groups[0].domains_per_rack: must be an integer >= 1 (got '4')",
            id="domains-per-rack-text",
        ),
        pytest.param(
            {"node_groups": [H100, {"gpu_type": "H100", "nodes": 2}]},
            "node_groups: the name 'h100' is used twice",
            id="duplicate-group-name",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": "add 1"},
            "changes: must be a list",
            id="changes-a-string",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": {"at": 0, "add": 1}},
            "changes: must be a list",
            id="changes-a-mapping",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [3]},
            "changes[0]: a change must be a mapping with at, one of add/drain/remove",
            id="change-not-a-mapping",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"at": 0}]},
            "changes[0]: give exactly one of add, drain, remove (a number of nodes)",
            id="no-kind",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"at": 0, "add": 1, "remove": 1}]},
            "changes[0]: give exactly one of add, drain, remove (a number of nodes)",
            id="two-kinds",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"at": 0, "add": 0}]},
            "changes[0].add: must be a number of nodes >= 1 (got 0)",
            id="add-zero",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"at": 0, "drain": "1"}]},
            "changes[0].drain: must be a number of nodes >= 1 (got '1')",
            id="drain-text",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"add": 1}]},
            "changes[0].at: required, a time such as 30d, 12h or 3600 (seconds)",
            id="no-at",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"at": [1], "add": 1}]},
            f"changes[0].at: {NOT_A_TIME}",
            id="at-a-list",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"at": True, "add": 1}]},
            f"changes[0].at: {NOT_A_TIME}",
            id="at-a-bool",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"at": "soon", "add": 1}]},
            "changes[0].at: 'soon' is not a duration: write seconds (3600), units (90m, 12h, "
            "1d12h) or Slurm's D-HH:MM:SS",
            id="at-not-a-duration",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"at": -5, "add": 1}]},
            "changes[0].at: a duration must be finite and not negative (got -5)",
            id="at-negative",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"at": 0, "add": 1, "group": "a100"}]},
            "changes[0].group: must name a node group (h100); got 'a100'",
            id="unknown-group",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"at": 0, "add": 1, "for": "1h"}]},
            "changes[0].for: only a drain has a duration",
            id="for-on-an-add",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"at": 0, "drain": 1, "for": "later"}]},
            "changes[0].for: 'later' is not a duration: write seconds (3600), units (90m, "
            "12h, 1d12h) or Slurm's D-HH:MM:SS",
            id="for-not-a-duration",
        ),
        pytest.param(
            {"node_groups": [H100], "changes": [{"at": 0, "drain": 1, "until": "1h"}]},
            "changes[0].until: unknown field (known: add, at, drain, for, group, remove)",
            id="unknown-change-field",
        ),
    ],
)
def test_names_each_mistake_by_its_path(data: object, message: str) -> None:
    assert problems_of(data) == [message]


def test_a_change_of_a_many_group_cluster_must_name_its_group() -> None:
    data = {
        "node_groups": [H100, {"gpu_type": "A100", "nodes": 1}],
        "changes": [{"at": 0, "add": 1}],
    }
    assert problems_of(data) == ["changes[0].group: must name a node group (a100, h100); got None"]


def test_lists_every_problem_at_once() -> None:
    """As docs/simulation.md shows: one run of the reader names all mistakes, in order."""
    data = {
        "name": "",
        "colour": "blue",
        "node_groups": [{"gpu_type": "H100", "nodes": -1}, 7],
        "changes": [{"at": "soon", "add": 1, "group": "h100"}, {"at": 0, "drain": 0}],
    }
    assert problems_of(data) == [
        "colour: unknown field (known: changes, name, node_groups)",
        "node_groups[0].nodes: must be an integer >= 0 (got -1)",
        "node_groups[1]: a node group must be a mapping",
        "changes[0].at: 'soon' is not a duration: write seconds (3600), units (90m, 12h, "
        "1d12h) or Slurm's D-HH:MM:SS",
        "changes[1].drain: must be a number of nodes >= 1 (got 0)",
        "name: must be a non-empty string",
    ]


def test_a_change_may_name_a_group_that_has_its_own_mistake() -> None:
    """A group refused for a bad count still exists by name: its changes are not also
    reported as naming an unknown group."""
    data = {
        "node_groups": [{"name": "h", "gpu_type": "H100", "nodes": -1}],
        "changes": [{"at": 0, "add": 1, "group": "h"}],
    }
    assert problems_of(data) == ["node_groups[0].nodes: must be an integer >= 0 (got -1)"]


# -- the nodes (C1) --------------------------------------------------------------------------


def test_node_names_domains_and_racks() -> None:
    """C1: node n of group g is g-nnnn; with 2 nodes per domain and 2 domains per rack,
    nodes 0-1 are domain 0, 2-3 domain 1 (both rack 0), 4 is domain 2 in rack 1."""
    group = NodeGroup("g", GpuType("H100"), 5, 4, nodes_per_domain=2, domains_per_rack=2)
    cluster = ClusterSpec((group,))
    assert [(n.id, n.nvlink_domain, n.rack) for n in cluster.nodes()] == [
        ("g-0000", "g-nvl000", "g-rack00"),
        ("g-0001", "g-nvl000", "g-rack00"),
        ("g-0002", "g-nvl001", "g-rack00"),
        ("g-0003", "g-nvl001", "g-rack00"),
        ("g-0004", "g-nvl002", "g-rack01"),
    ]
    assert all(n.gpus == 4 and n.gpu_type == "H100" and n.state is UP for n in cluster.nodes())


def test_nodes_come_group_by_group() -> None:
    cluster = ClusterSpec.from_mapping(
        {
            "node_groups": [
                {"gpu_type": "H100", "nodes": 2},
                {"gpu_type": "A100", "nodes": 1, "gpus_per_node": 4},
            ]
        }
    )
    assert [(n.id, n.gpu_type, n.gpus) for n in cluster.nodes()] == [
        ("h100-0000", "H100", 8),
        ("h100-0001", "H100", 8),
        ("a100-0000", "A100", 4),
    ]


def test_node_numbers_have_four_digits_and_grow_past_them() -> None:
    group = NodeGroup("g", GpuType("H100"), 1)
    assert (group.node(7).id, group.node(12345).id) == ("g-0007", "g-12345")


# -- capacity changes (C2, C3) ----------------------------------------------------------------


def test_no_changes_no_node_changes() -> None:
    assert spec().node_changes() == ()


def test_added_nodes_continue_the_numbering_and_are_up() -> None:
    """C2: 4 nodes h-0000..h-0003; adding 2 gives h-0004, h-0005."""
    h100 = GpuType("H100")
    assert spec({"at": 10, "add": 2}).node_changes() == (
        NodeChange(10.0, NodeId("h-0004"), Node(NodeId("h-0004"), h100, 8, "h-nvl004", "h-rack01")),
        NodeChange(10.0, NodeId("h-0005"), Node(NodeId("h-0005"), h100, 8, "h-nvl005", "h-rack01")),
    )


def test_numbering_continues_past_removed_nodes() -> None:
    """C2: numbers are never reused: after h-0003 leaves, the next node added is h-0004."""
    cluster = spec({"at": 10, "remove": 1}, {"at": 20, "add": 1})
    assert story(cluster) == [(10.0, "h-0003", "removed"), (20.0, "h-0004", "up")]


def test_remove_takes_the_most_recently_added_nodes() -> None:
    """C3: after adding h-0004 at 10, removing 2 at 20 takes h-0004 then h-0003."""
    cluster = spec({"at": 10, "add": 1}, {"at": 20, "remove": 2})
    assert story(cluster) == [
        (10.0, "h-0004", "up"),
        (20.0, "h-0003", "removed"),
        (20.0, "h-0004", "removed"),
    ]


def test_removing_more_nodes_than_there_are_takes_them_all() -> None:
    cluster = spec({"at": 5, "remove": 10}, {"at": 6, "remove": 1}, nodes=2)
    assert story(cluster) == [(5.0, "h-0000", "removed"), (5.0, "h-0001", "removed")]


def test_a_drain_without_for_stays_drained() -> None:
    cluster = spec({"at": 10, "drain": 2})
    assert story(cluster) == [(10.0, "h-0002", "draining"), (10.0, "h-0003", "draining")]
    assert all(c.node is not None and c.node.gpus == 8 for c in cluster.node_changes())


def test_a_drain_with_for_comes_back_up_after_it() -> None:
    """A maintenance window: drained at 1d for 12h, back up at 1.5d."""
    cluster = spec({"at": "1d", "drain": 1, "for": "12h"})
    assert story(cluster) == [(DAY, "h-0003", "draining"), (1.5 * DAY, "h-0003", "up")]


def test_drain_takes_the_most_recently_added_nodes_that_are_up() -> None:
    """h-0004 is added at 10 and drained at 20 (it is the newest up node); a second drain at
    30 skips it, being no longer up, and takes h-0003."""
    cluster = spec({"at": 10, "add": 1}, {"at": 20, "drain": 1}, {"at": 30, "drain": 1})
    assert story(cluster) == [
        (10.0, "h-0004", "up"),
        (20.0, "h-0004", "draining"),
        (30.0, "h-0003", "draining"),
    ]


def test_overlapping_drains_each_bring_back_their_own_nodes() -> None:
    """Drain A takes h-0003 over [0, 100); drain B, starting while A lasts, takes the newest
    node still up, h-0002, over [50, 200). Each returns only its own node."""
    cluster = spec({"at": 0, "drain": 1, "for": 100}, {"at": 50, "drain": 1, "for": 150})
    assert story(cluster) == [
        (0.0, "h-0003", "draining"),
        (50.0, "h-0002", "draining"),
        (100.0, "h-0003", "up"),
        (200.0, "h-0002", "up"),
    ]


def test_draining_more_nodes_than_are_up_takes_those_up() -> None:
    cluster = spec({"at": 0, "drain": 1}, {"at": 10, "drain": 5}, nodes=2)
    assert story(cluster) == [
        (0.0, "h-0001", "draining"),
        (10.0, "h-0000", "draining"),
    ]


def test_a_drained_node_removed_before_its_window_ends_does_not_come_back() -> None:
    cluster = spec({"at": 0, "drain": 1, "for": 100}, {"at": 50, "remove": 1})
    assert story(cluster) == [(0.0, "h-0003", "draining"), (50.0, "h-0003", "removed")]


def test_changes_apply_per_group() -> None:
    cluster = ClusterSpec.from_mapping(
        {
            "node_groups": [
                {"gpu_type": "H100", "nodes": 2},
                {"gpu_type": "A100", "nodes": 2},
            ],
            "changes": [
                {"at": 5, "add": 1, "group": "a100"},
                {"at": 9, "remove": 1, "group": "h100"},
            ],
        }
    )
    assert story(cluster) == [(5.0, "a100-0002", "up"), (9.0, "h100-0001", "removed")]


# -- sizes: gpus, scaled, uniform -------------------------------------------------------------


def test_gpus_per_type_at_the_start_add_up_groups_of_one_type() -> None:
    """2 x 8 + 3 x 4 H100 = 28; 1 x 8 A100; changes do not count."""
    cluster = ClusterSpec.from_mapping(
        {
            "node_groups": [
                {"name": "a", "gpu_type": "H100", "nodes": 2},
                {"name": "b", "gpu_type": "A100", "nodes": 1},
                {"name": "c", "gpu_type": "H100", "nodes": 3, "gpus_per_node": 4},
            ],
            "changes": [{"at": 0, "add": 5, "group": "a"}],
        }
    )
    assert cluster.gpus() == {"H100": 28, "A100": 8}


def test_group_by_name() -> None:
    cluster = spec()
    assert cluster.group("h").nodes == 4
    with pytest.raises(InvalidRequest, match="no node group is named 'x'"):
        cluster.group("x")


def test_scaled_multiplies_groups_and_changes_rounding_to_at_least_one() -> None:
    """x0.3: 10 nodes -> 3; 2 nodes -> 0.6 -> 1; a change of 4 -> 1.2 -> 1; a change of 1 ->
    0.3, kept at 1. Times, kinds and drain windows stay."""
    cluster = ClusterSpec(
        (NodeGroup("a", GpuType("H100"), 10), NodeGroup("b", GpuType("A100"), 2)),
        (
            CapacityChange(10.0, ChangeKind.ADD, "a", 4),
            CapacityChange(20.0, ChangeKind.DRAIN, "b", 1, 60.0),
        ),
        "base",
    )
    smaller = cluster.scaled(0.3)
    assert [g.nodes for g in smaller.groups] == [3, 1]
    assert smaller.changes == (
        CapacityChange(10.0, ChangeKind.ADD, "a", 1),
        CapacityChange(20.0, ChangeKind.DRAIN, "b", 1, 60.0),
    )
    assert smaller.name == "base x0.3"
    assert cluster.scaled(2).gpus() == {"H100": 160, "A100": 32}
    assert cluster.scaled(2).name == "base x2"


@pytest.mark.parametrize(
    ("factor", "shown"), [(0.0, "0"), (-1.0, "-1"), (float("inf"), "inf"), (float("nan"), "nan")]
)
def test_scaled_refuses_a_factor_that_is_not_positive_and_finite(factor: float, shown: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        spec().scaled(factor)
    assert caught.value.problems == [f"a scale factor must be positive (got {shown})"]


def test_uniform_is_one_group() -> None:
    cluster = ClusterSpec.uniform(4)
    assert cluster.name == "4 x 8 V100"
    assert cluster.groups == (NodeGroup("v100", GpuType("V100"), 4, 8, 1, 4),)
    assert cluster.gpus() == {"V100": 32}
    assert [n.id for n in cluster.nodes()] == ["v100-0000", "v100-0001", "v100-0002", "v100-0003"]


def test_uniform_with_every_option() -> None:
    cluster = ClusterSpec.uniform(3, "H100", 4, nodes_per_domain=2, domains_per_rack=1, name="x")
    assert cluster.name == "x"
    assert [(n.id, n.gpus, n.nvlink_domain, n.rack) for n in cluster.nodes()] == [
        ("h100-0000", 4, "h100-nvl000", "h100-rack00"),
        ("h100-0001", 4, "h100-nvl000", "h100-rack00"),
        ("h100-0002", 4, "h100-nvl001", "h100-rack01"),
    ]


def test_uniform_refuses_impossible_groups() -> None:
    with pytest.raises(InvalidRequest) as caught:
        ClusterSpec.uniform(-1, gpus_per_node=0, nodes_per_domain=0, domains_per_rack=0)
    assert caught.value.problems == [
        "cluster.nodes: cannot be negative",
        "cluster.gpus_per_node: must be at least 1",
        "cluster.nodes_per_domain: must be at least 1",
        "cluster.domains_per_rack: must be at least 1",
    ]
