"""The audit log in the store: entries written with each change, sequenced into an RFC 6962
tree, signed checkpoints, proofs (ADR 0017).

L-S1. `record` adds an entry in the caller's transaction: a change and its entry commit or
      vanish together.
L-S2. The sequencer gives committed entries leaf indexes 0, 1, 2... in id order, under a lock
      (PostgreSQL: an advisory lock; SQLite: the write lock), and computes each leaf hash from
      the entry as an `AuditRecord` with `seq` = its index. An index, once given, never changes.
L-S3. A checkpoint signs (origin, size, root) for the sequenced prefix; checkpoints only grow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from kizuna.audit.checkpoint import Checkpoint, SigningKey, sign
from kizuna.audit.merkle import Tree
from kizuna.audit.record import AuditRecord
from kizuna.services.context import Context, row_state
from kizuna.services.errors import InvalidRequest, NotFound
from kizuna.services.pages import Page, page
from kizuna.store.tables import AuditCheckpoint, AuditEntry, Base

SEQUENCER_LOCK = 6962
SEQUENCE_BATCH = 5000


def record(
    ctx: Context,
    action: str,
    row: Base | None = None,
    *,
    before: dict[str, Any] | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    organization_id: str | None = None,
) -> None:
    """L-S1: one entry for a change to `row` (its state now is the entry's `after`)."""
    after = row_state(row) if row is not None else None
    state = after or before or {}
    ctx.session.add(
        AuditEntry(
            at=_rfc3339(ctx.now),
            actor=ctx.principal.actor,
            action=action,
            object_type=object_type or action.split(".", maxsplit=1)[0],
            object_id=str(object_id or state.get("id", "")),
            organization_id=organization_id or state.get("organization_id"),
            before=before,
            after=after,
            request_id=ctx.request_id,
        )
    )


def _rfc3339(at: datetime) -> str:
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def as_json(entry: AuditEntry) -> dict[str, Any]:
    """The entry as stored, in the record's JSON shape, checked by nothing: what an auditor
    downloads, so that a row changed behind the service's back reaches the verifier as it is
    instead of failing here."""
    return {
        key: (entry.leaf_index if key == "seq" else getattr(entry, key)) for key in AuditRecord.KEYS
    }


def as_record(entry: AuditEntry) -> AuditRecord:
    assert entry.leaf_index is not None
    return AuditRecord(
        seq=entry.leaf_index,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        object_type=entry.object_type,
        object_id=entry.object_id,
        organization_id=entry.organization_id,
        before=entry.before,
        after=entry.after,
        request_id=entry.request_id,
    )


def sequence(session: Session, batch_size: int = SEQUENCE_BATCH) -> int:
    """L-S2: sequences every committed entry not yet in the tree; returns the tree's size."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEQUENCER_LOCK})
    size = tree_size(session)
    while True:
        batch = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.leaf_index.is_(None))
            .order_by(AuditEntry.id)
            .limit(batch_size)
        ).all()
        rows = []
        for offset, entry in enumerate(batch):
            entry.leaf_index = size + offset
            rows.append(
                {
                    "id": entry.id,
                    "leaf_index": entry.leaf_index,
                    "leaf_hash": as_record(entry).leaf_hash(),
                }
            )
        if rows:  # one executemany, not one UPDATE per entry
            session.execute(update(AuditEntry), rows)
        for entry in batch:
            session.expunge(entry)
        size += len(batch)
        if len(batch) < batch_size:
            return size


def entries(session: Session, cursor: str | None, limit: int) -> Page[AuditEntry]:
    """Sequenced entries in log order."""
    statement = select(AuditEntry).where(AuditEntry.leaf_index.is_not(None))
    return page(session, statement, AuditEntry.leaf_index, cursor, limit)


def tree_size(session: Session) -> int:
    last = session.scalar(select(func.max(AuditEntry.leaf_index)))
    return 0 if last is None else last + 1


@dataclass
class LogState:
    """The service's signing key and its in-memory copy of the tree (a cache of the store)."""

    origin: str
    key: SigningKey
    tree: Tree = field(default_factory=lambda: Tree([]))
    last_leaf: bytes | None = None

    def tree_for(self, session: Session, size: int) -> Tree:
        """The tree of the first `size` leaves, reading from the store what it lacks; the
        cache starts over if the store no longer holds the leaf it ended with."""
        have = self.tree.size
        if have > size or (have and _leaf_hashes(session, have - 1, have) != [self.last_leaf]):
            self.tree, self.last_leaf = Tree([]), None
        for leaf in _leaf_hashes(session, self.tree.size, size):
            self.tree.append(leaf)
            self.last_leaf = leaf
        return self.tree


def _leaf_hashes(session: Session, start: int, stop: int) -> list[bytes]:
    hashes = session.scalars(
        select(AuditEntry.leaf_hash)
        .where(AuditEntry.leaf_index >= start, AuditEntry.leaf_index < stop)
        .order_by(AuditEntry.leaf_index)
    ).all()
    return [h for h in hashes if h is not None]


def checkpoint(session: Session, log: LogState, now: datetime) -> AuditCheckpoint:
    """L-S3: sequences what is pending and signs the tree at its new size (if it grew)."""
    size = sequence(session)
    latest = latest_checkpoint(session)
    if latest is not None and latest.size == size:
        return latest
    root = log.tree_for(session, size).root()
    note = sign(Checkpoint(log.origin, size, root), log.key)
    made = AuditCheckpoint(size=size, root=root, note=note, created_at=now)
    session.add(made)
    session.flush()
    return made


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1))


def checkpoints(session: Session, cursor: str | None, limit: int) -> Page[AuditCheckpoint]:
    """Every signed checkpoint, smallest first."""
    return page(session, select(AuditCheckpoint), AuditCheckpoint.size, cursor, limit)


def checkpoint_at(session: Session, size: int) -> AuditCheckpoint:
    found = session.get(AuditCheckpoint, size)
    if found is None:
        raise NotFound("checkpoint of size", size)
    return found


def inclusion_proof(session: Session, log: LogState, index: int, size: int) -> list[bytes]:
    _check_range(session, size)
    if not 0 <= index < size:
        raise InvalidRequest([f"leaf index {index} is not in a tree of size {size}"])
    return list(log.tree_for(session, size).inclusion_proof(index, size))


def consistency_proof(session: Session, log: LogState, first: int, second: int) -> list[bytes]:
    _check_range(session, second)
    if not 0 < first <= second:
        raise InvalidRequest([f"sizes must satisfy 0 < first <= second (got {first}, {second})"])
    return list(log.tree_for(session, second).consistency_proof(first, second))


def _check_range(session: Session, size: int) -> None:
    have = tree_size(session)
    if not 0 < size <= have:
        raise InvalidRequest([f"tree size must be between 1 and {have} (got {size})"])
