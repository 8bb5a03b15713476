"""Nodes of the cluster, as operators register and drain them.

Node facts (name, GPU type, GPUs, NVLink domain, rack, state) are not tenant data: every
signed-in person may list them, as every Slurm user may run `sinfo`. Only a cluster operator or
a program admin changes them.
"""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kizuna.kernel.ids import GpuType, NodeId
from kizuna.scheduling.model import Node as CoreNode
from kizuna.scheduling.model import NodeState
from kizuna.scheduling.validation import ClusterShape
from kizuna.services import audit_log
from kizuna.services.context import Context, row_state
from kizuna.services.errors import Conflict, Forbidden, InvalidRequest, NotFound
from kizuna.services.ids import new_id
from kizuna.services.organizations import check_name
from kizuna.services.pages import Page, page
from kizuna.services.principal import Principal
from kizuna.store.tables import Cluster, Node

DEFAULT_CLUSTER = "default"
MAX_GPUS_PER_NODE = 1024


def default_cluster(ctx: Context) -> Cluster:
    cluster = ctx.session.scalar(select(Cluster).where(Cluster.name == DEFAULT_CLUSTER))
    if cluster is None:
        cluster = Cluster(id=new_id("cluster", ctx.now), name=DEFAULT_CLUSTER, created_at=ctx.now)
        ctx.session.add(cluster)
        ctx.session.flush()
        audit_log.record(ctx, "cluster.create", cluster)
    return cluster


def _require_operator(principal: Principal) -> None:
    if not principal.operates_cluster:
        raise Forbidden("only a cluster operator or a program admin manages nodes")


def create(
    ctx: Context, name: str, gpu_type: str, gpus: int, nvlink_domain: str, rack: str
) -> Node:
    _require_operator(ctx.principal)
    check_name(name, "node")
    if not 1 <= gpus <= MAX_GPUS_PER_NODE:
        raise InvalidRequest([f"a node has 1 to {MAX_GPUS_PER_NODE} GPUs (got {gpus})"])
    if not gpu_type.strip():
        raise InvalidRequest(["a node needs a GPU type"])
    cluster = default_cluster(ctx)
    if ctx.session.scalar(select(Node.id).where(Node.cluster_id == cluster.id, Node.name == name)):
        raise Conflict(f"node name {name!r} is taken")
    node = Node(
        id=new_id("node", ctx.now),
        cluster_id=cluster.id,
        name=name,
        gpu_type=gpu_type,
        gpus=gpus,
        nvlink_domain=nvlink_domain,
        rack=rack,
        state=NodeState.UP.value,
        created_at=ctx.now,
    )
    ctx.session.add(node)
    ctx.session.flush()
    audit_log.record(ctx, "node.create", node)
    return node


def get(session: Session, ref: str) -> Node:
    column = Node.id if ref.startswith("nod_") else Node.name
    node = session.scalar(select(Node).where(column == ref))
    if node is None:
        raise NotFound("node", ref)
    return node


def listing(
    session: Session, gpu_type: str | None, state: str | None, cursor: str | None, limit: int
) -> Page[Node]:
    statement = select(Node)
    if gpu_type is not None:
        statement = statement.where(Node.gpu_type == gpu_type)
    if state is not None:
        statement = statement.where(Node.state == state)
    return page(session, statement, Node.id, cursor, limit)


def set_state(ctx: Context, ref: str, state: NodeState) -> Node:
    _require_operator(ctx.principal)
    node = get(ctx.session, ref)
    before = row_state(node)
    node.state = state.value
    audit_log.record(ctx, "node.update", node, before=before)
    return node


def core_nodes(session: Session) -> tuple[CoreNode, ...]:
    """Every node as the scheduling core sees it."""
    return tuple(
        CoreNode(
            NodeId(n.name), GpuType(n.gpu_type), n.gpus, n.nvlink_domain, n.rack, NodeState(n.state)
        )
        for n in session.scalars(select(Node).order_by(Node.name))
    )


class ShapeCache:
    """The cluster's shape for validating submissions, read again only when a node was added
    (nodes are never removed and their GPUs, types and domains never change; their state,
    which can, is not part of the shape: ADR 0005 refuses only what can never run)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = -1
        self._shape = ClusterShape.of(())

    def shape(self, session: Session) -> ClusterShape:
        count = session.scalar(select(func.count()).select_from(Node)) or 0
        with self._lock:
            if count == self._count:
                return self._shape
        shape = ClusterShape.of(core_nodes(session))
        with self._lock:
            self._count, self._shape = count, shape
        return shape
