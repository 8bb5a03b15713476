"""Refuse at once what can never run, so no job waits forever (ADR 0005)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kizuna.kernel.ids import GpuType
from kizuna.scheduling.model import Job, Node


@dataclass(frozen=True)
class TypeShape:
    """What the cluster has of one GPU type, counting every node it owns (up or not)."""

    gpus: int
    node_sizes: tuple[int, ...]
    """GPUs per node, largest first."""
    largest_domain: int
    """GPUs in the largest NVLink domain."""

    def nodes_with(self, gpus_per_node: int) -> int:
        return sum(1 for size in self.node_sizes if size >= gpus_per_node)

    def largest_domain_nodes(self, gpus_per_node: int, nodes: Iterable[Node]) -> int:
        counts = Counter(n.domain for n in nodes if n.gpus >= gpus_per_node)
        return max(counts.values(), default=0)


@dataclass(frozen=True)
class ClusterShape:
    """The cluster's permanent capacity per GPU type, as validation needs it."""

    types: Mapping[GpuType, TypeShape]
    nodes_by_type: Mapping[GpuType, tuple[Node, ...]]
    verdicts: dict[tuple[GpuType, int, int | None, bool], list[str]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """`validate_job`'s answers for jobs with sane times, per kind of request (never changed
    by their readers): a `Scheduler` keeps the cluster's shape while its nodes stay."""

    @classmethod
    def of(cls, nodes: Iterable[Node]) -> ClusterShape:
        by_type: dict[GpuType, list[Node]] = defaultdict(list)
        for node in nodes:
            by_type[node.gpu_type].append(node)
        types = {t: _type_shape(ns) for t, ns in by_type.items()}
        return cls(types, {t: tuple(ns) for t, ns in by_type.items()})


def _type_shape(nodes: list[Node]) -> TypeShape:
    domains: Counter[str] = Counter()
    for node in nodes:
        domains[node.domain] += node.gpus
    sizes = tuple(sorted((n.gpus for n in nodes), reverse=True))
    return TypeShape(sum(sizes), sizes, max(domains.values(), default=0))


def validate_job(job: Job, cluster: ClusterShape) -> list[str]:
    """Every reason `job` can never run on `cluster`; empty when it can."""
    problems = _request_problems(job)
    if problems:
        return problems
    shape = cluster.types.get(job.gpu_type)
    if shape is None:
        known = ", ".join(sorted(cluster.types)) or "none"
        return [f"unknown GPU type {job.gpu_type!r}; this cluster has: {known}"]
    return _fit_problems(job, shape, cluster.nodes_by_type[job.gpu_type])


def _request_problems(job: Job) -> list[str]:
    problems = []
    if job.gpus <= 0:
        problems.append(f"a job needs at least one GPU (asked for {job.gpus})")
    if job.walltime <= 0:
        problems.append(f"walltime must be positive (got {job.walltime:g} s)")
    if job.grace < 0 or job.min_runtime < 0:
        problems.append("grace period and minimum runtime cannot be negative")
    per_node = job.gpus_per_node
    if per_node is not None and (per_node <= 0 or job.gpus % per_node):
        problems.append(
            f"{job.gpus} GPUs cannot be split into nodes of {per_node} GPUs;"
            " GPUs must be a multiple of GPUs per node"
        )
    return problems


def _fit_problems(job: Job, shape: TypeShape, nodes: tuple[Node, ...]) -> list[str]:
    t, per_node = job.gpu_type, job.gpus_per_node
    if job.gpus > shape.gpus:
        return [f"requests {job.gpus} {t} but the cluster has only {shape.gpus} {t}"]
    if per_node is not None:
        wanted = job.gpus // per_node
        if per_node > shape.node_sizes[0]:
            return [
                f"requests {per_node} {t} per node; the largest {t} node has {shape.node_sizes[0]}"
            ]
        if shape.nodes_with(per_node) < wanted:
            have = shape.nodes_with(per_node)
            return [f"requests {wanted} nodes with {per_node} {t}; the cluster has {have}"]
        if job.one_domain and shape.largest_domain_nodes(per_node, nodes) < wanted:
            return [
                f"requests {wanted} nodes x {per_node} {t} in one NVLink domain; none is that large"
            ]
    if job.one_domain and job.gpus > shape.largest_domain:
        return [
            f"requests {job.gpus} {t} in one NVLink domain; the largest has {shape.largest_domain}"
        ]
    return []
