"""The inventory keeps the store's nodes in step with a backend's (live/inventory.py I1-I4):
nodes join with their labels, dead or vanished ones go down, returning ones come up, a
drained node stays drained while alive, hand-registered nodes are left alone, and a
backend's different figures for a known node are not followed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kizuna.execution.backend import NodeFact
from kizuna.live.inventory import REQUEST, Inventory
from kizuna.store.engine import make_engine, session_factory, writing
from kizuna.store.migrate import upgrade
from kizuna.store.tables import AuditEntry, Cluster, Node

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def fact(name: str, alive: bool = True, gpus: int = 8) -> NodeFact:
    return NodeFact(name, "H100", gpus, f"{name}-nvl", "rack-1", alive)


def states(sessions: sessionmaker[Session]) -> dict[str, str]:
    with writing(sessions) as session:
        return {n.name: n.state for n in session.scalars(select(Node))}


def apply(
    sessions: sessionmaker[Session], inventory: Inventory, facts: list[NodeFact]
) -> list[str]:
    with writing(sessions) as session:
        return inventory.reconcile(session, facts, NOW)


def test_nodes_join_go_down_and_come_back(sessions: sessionmaker[Session]) -> None:
    inventory = Inventory()
    changes = apply(sessions, inventory, [fact("a"), fact("b"), fact("dead", alive=False)])
    assert changes == ["a joined: 8 x H100", "b joined: 8 x H100"]  # a dead stranger: no
    with writing(sessions) as session:
        a = session.scalar(select(Node).where(Node.name == "a"))
        assert a is not None
        assert (a.gpu_type, a.gpus, a.nvlink_domain, a.rack, a.state) == (
            "H100",
            8,
            "a-nvl",
            "rack-1",
            "up",
        )
        entries = list(
            session.scalars(select(AuditEntry).where(AuditEntry.action == "node.create"))
        )
        assert [(e.actor, e.request_id) for e in entries] == [("system", REQUEST)] * 2
    assert apply(sessions, inventory, [fact("a"), fact("b")]) == []  # nothing changed

    assert apply(sessions, inventory, [fact("a", alive=False), fact("b")]) == ["a is down"]
    assert apply(sessions, inventory, [fact("b")]) == []  # a stays down while unlisted
    assert apply(sessions, inventory, [fact("a")]) == ["a is up", "b is gone"]
    assert states(sessions) == {"a": "up", "b": "down"}


def test_a_drained_node_stays_drained_while_alive_and_hand_made_nodes_are_left_alone(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    inventory = Inventory()
    apply(sessions, inventory, [fact("a"), fact("b")])
    with writing(sessions) as session:
        cluster = session.scalar(select(Cluster))
        assert cluster is not None
        session.add(
            Node(
                id="nod_handmade",
                cluster_id=cluster.id,
                name="manual",
                gpu_type="A100",
                gpus=4,
                state="up",
                created_at=NOW,
            )
        )
        node = session.scalar(select(Node).where(Node.name == "a"))
        assert node is not None
        node.state = "draining"
    with caplog.at_level(logging.WARNING, logger="kizuna.inventory"):
        assert apply(sessions, inventory, [fact("a", gpus=4), fact("b")]) == []
    assert "the backend reports" in caplog.text  # 4 GPUs now: logged, not followed
    assert states(sessions) == {"a": "draining", "b": "up", "manual": "up"}
    assert apply(sessions, inventory, [fact("a", alive=False), fact("b")]) == ["a is down"]
    with writing(sessions) as session:
        a = session.scalar(select(Node).where(Node.name == "a"))
        assert a is not None and a.gpus == 8


def test_a_node_the_store_cannot_take_is_logged_once(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    inventory = Inventory()
    with caplog.at_level(logging.WARNING, logger="kizuna.inventory"):
        assert apply(sessions, inventory, [fact("huge", gpus=5000)]) == []
        assert apply(sessions, inventory, [fact("huge", gpus=5000)]) == []
    assert caplog.text.count("cannot register node huge") == 1
    assert states(sessions) == {}
