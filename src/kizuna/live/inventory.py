"""Keeps the store's nodes in step with a backend that knows its machines (B8, ADR 0025).

I1. A node the backend has, alive, and the store lacks is registered, as an operator would
    (`node.create` in the audit log, actor `system`, request id `kizuna:inventory`).
I2. A node the backend says is dead, or no longer lists, goes `down`; the loop then stops
    the runs on it at once (T1 node-down) and requeues or fails their jobs as each asks.
I3. A node that is `down` and alive again goes `up`. A draining node stays draining while it
    is alive (an operator's choice), and goes `down` when it dies.
I4. A known node's GPUs, GPU type and topology are never changed (the cluster's shape only
    grows, nodes.ShapeCache): a backend that reports other figures is logged, not followed.
Nodes the store has and the backend never listed (registered by hand) are left alone:
inventory manages only the nodes it has seen, remembered in `Inventory.seen`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kizuna.execution.backend import NodeFact
from kizuna.scheduling.model import NodeState
from kizuna.services import nodes as node_service
from kizuna.services.context import Context
from kizuna.services.errors import InvalidRequest
from kizuna.services.principal import Principal, Role
from kizuna.store.tables import Node

log = logging.getLogger("kizuna.inventory")
REQUEST = "kizuna:inventory"
"""The request id of the audit entries the inventory writes (their actor is `system`)."""
SYSTEM = Principal(person_id="", email="", roles={"": Role.CLUSTER_OPERATOR}, system="system")


@dataclass
class Inventory:
    seen: set[str] = field(default_factory=set)
    """Names of the nodes the backend has listed since this service started."""
    _warned: set[str] = field(default_factory=set)

    def reconcile(self, session: Session, facts: list[NodeFact], now: datetime) -> list[str]:
        """Applies I1-I4; returns what changed, one line each (empty: nothing)."""
        ctx = Context(session, SYSTEM, now, request_id=REQUEST)
        stored = {n.name: n for n in session.scalars(select(Node))}
        listed = {f.name: f for f in facts}
        changes: list[str] = []
        for fact in facts:
            node = stored.get(fact.name)
            if fact.alive:
                self.seen.add(fact.name)
            if node is None:
                if fact.alive:
                    changes += self._register(ctx, fact)
                continue
            if fact.alive:
                self._compare(node, fact)
                if node.state == NodeState.DOWN.value:
                    node_service.set_state(ctx, node.id, NodeState.UP)
                    changes.append(f"{fact.name} is up")
            elif node.state != NodeState.DOWN.value and fact.name in self.seen:
                node_service.set_state(ctx, node.id, NodeState.DOWN)
                changes.append(f"{fact.name} is down")
        for name in sorted(self.seen - set(listed)):  # I2: gone from the backend's list
            node = stored.get(name)
            if node is not None and node.state != NodeState.DOWN.value:
                node_service.set_state(ctx, node.id, NodeState.DOWN)
                changes.append(f"{name} is gone")
        return changes

    def _register(self, ctx: Context, fact: NodeFact) -> list[str]:
        try:
            node_service.create(
                ctx, fact.name, fact.gpu_type, fact.gpus, fact.nvlink_domain, fact.rack
            )
        except InvalidRequest as error:
            if fact.name not in self._warned:
                log.warning("cannot register node %s: %s", fact.name, error)
                self._warned.add(fact.name)
            return []
        return [f"{fact.name} joined: {fact.gpus} x {fact.gpu_type}"]

    def _compare(self, node: Node, fact: NodeFact) -> None:
        mine = (node.gpu_type, node.gpus, node.nvlink_domain, node.rack)
        theirs = (fact.gpu_type, fact.gpus, fact.nvlink_domain, fact.rack)
        if mine != theirs and node.name not in self._warned:
            log.warning(
                "node %s: the backend reports %s, the store keeps %s", node.name, theirs, mine
            )
            self._warned.add(node.name)
