"""Validation: a job that can never run is refused at once, with every reason in plain words."""

from __future__ import annotations

import pytest

from kizuna.scheduling import ClusterShape, Job, validate_job
from kizuna.scheduling.model import NodeState
from kizuna.scheduling.testing import job, nodes

# 4 H100 nodes of 8 in two NVLink domains of 2 nodes, plus 2 A100 nodes of 4 GPUs,
# each A100 node a domain of its own.
CLUSTER = ClusterShape.of(nodes(4, per_domain=2) + nodes(2, gpu_type="A100", gpus=4, per_domain=1))


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(job("j", gpus=0), ["a job needs at least one GPU (asked for 0)"], id="zero"),
        pytest.param(job("j", gpus=-2), ["a job needs at least one GPU (asked for -2)"], id="neg"),
        pytest.param(
            job("j", walltime=0.0), ["walltime must be positive (got 0 s)"], id="zero-walltime"
        ),
        pytest.param(
            job("j", grace=-1.0),
            ["grace period and minimum runtime cannot be negative"],
            id="negative-grace",
        ),
        pytest.param(
            job("j", min_runtime=-1.0),
            ["grace period and minimum runtime cannot be negative"],
            id="negative-min-runtime",
        ),
        pytest.param(
            job("j", gpus=12, per_node=8),
            [
                "12 GPUs cannot be split into nodes of 8 GPUs;"
                " GPUs must be a multiple of GPUs per node"
            ],
            id="not-a-multiple",
        ),
        pytest.param(
            job("j", gpus=0, walltime=-5.0),
            ["a job needs at least one GPU (asked for 0)", "walltime must be positive (got -5 s)"],
            id="every-problem-listed",
        ),
        pytest.param(
            job("j", gpu_type="B200"),
            ["unknown GPU type 'B200'; this cluster has: A100, H100"],
            id="unknown-type-lists-known",
        ),
        pytest.param(
            job("j", gpus=40), ["requests 40 H100 but the cluster has only 32 H100"], id="too-many"
        ),
        pytest.param(
            job("j", gpus=12, gpu_type="A100"),
            ["requests 12 A100 but the cluster has only 8 A100"],
            id="too-many-of-the-small-type",
        ),
        pytest.param(
            job("j", gpus=16, per_node=16),
            ["requests 16 H100 per node; the largest H100 node has 8"],
            id="per-node-too-large",
        ),
        pytest.param(
            job("j", gpus=8, per_node=4, gpu_type="A100", one_domain=True),
            ["requests 2 nodes x 4 A100 in one NVLink domain; none is that large"],
            id="nodes-in-one-domain",
        ),
        pytest.param(
            job("j", gpus=24, one_domain=True),
            ["requests 24 H100 in one NVLink domain; the largest has 16"],
            id="gpus-in-one-domain",
        ),
    ],
)
def test_problems_in_plain_words(request_: Job, expected: list[str]) -> None:
    assert validate_job(request_, CLUSTER) == expected


def test_too_few_nodes_for_the_shape() -> None:
    cluster = ClusterShape.of(nodes(2) + nodes(2, gpus=4, prefix="small"))
    problems = validate_job(job("j", gpus=24, per_node=8), cluster)
    assert problems == ["requests 3 nodes with 8 H100; the cluster has 2"]


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(job("j", gpus=32), id="whole-cluster"),
        pytest.param(job("j", gpus=32, per_node=8), id="every-node"),
        pytest.param(job("j", gpus=16, one_domain=True), id="largest-domain"),
        pytest.param(job("j", gpus=16, per_node=8, one_domain=True), id="nodes-in-a-domain"),
        pytest.param(job("j", gpus=8, gpu_type="A100"), id="other-type"),
    ],
)
def test_requests_the_cluster_can_hold_are_valid(request_: Job) -> None:
    assert validate_job(request_, CLUSTER) == []


def test_down_nodes_count_towards_permanent_capacity() -> None:
    """Validation judges what the cluster owns, not what is up: a repair makes it runnable."""
    cluster = ClusterShape.of(nodes(1) + nodes(1, prefix="down", state=NodeState.DOWN))
    assert validate_job(job("j", gpus=16), cluster) == []


def test_empty_cluster_says_it_has_no_types() -> None:
    assert validate_job(job("j"), ClusterShape.of([])) == [
        "unknown GPU type 'H100'; this cluster has: none"
    ]
