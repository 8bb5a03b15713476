"""The audit log: entries, signed checkpoints, inclusion and consistency proofs (ADR 0017).

Entries name every organization's changes, so only platform roles read them; checkpoints,
proofs and the verifier key reveal only hashes and sizes, and every signed-in person may fetch
them, so any tenant can check that the log it was shown is the log everyone was shown.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from kizuna.api.deps import Read, Write
from kizuna.api.routes.common import Cursor, Limit
from kizuna.api.schemas import (
    AuditEntryPublic,
    CheckpointPublic,
    ListOf,
    ProofPublic,
    VerifierKeyPublic,
)
from kizuna.services import audit_log
from kizuna.services.context import Context
from kizuna.services.errors import Forbidden, NotFound
from kizuna.store.tables import AuditCheckpoint

router = APIRouter(prefix="/audit", tags=["audit"])
Size = Annotated[int, Query(ge=1, le=2**62)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def checkpoint_public(found: AuditCheckpoint) -> CheckpointPublic:
    return CheckpointPublic(
        size=found.size, root=b64(found.root), note=found.note, created_at=found.created_at
    )


@router.get("/entries", response_model=ListOf[AuditEntryPublic])
def entries(unit: Read, cursor: Cursor = None, limit: Limit = 500) -> ListOf[AuditEntryPublic]:
    """Sequenced entries in log order, as the records the tree's leaves hash."""
    if not unit.principal.sees_everything:
        raise Forbidden("only a program admin, an operator or an auditor reads the audit log")
    with unit.session() as session:
        found = audit_log.entries(session, cursor, limit)
        items = [
            AuditEntryPublic(
                record=audit_log.as_json(e),
                leaf_hash=b64(e.leaf_hash) if e.leaf_hash else None,
            )
            for e in found.items
        ]
    return ListOf[AuditEntryPublic](items=items, next_cursor=found.next_cursor)


@router.post("/checkpoints", status_code=201, response_model=CheckpointPublic)
def make_checkpoint(unit: Write) -> Response:
    """Sequences pending entries and signs the tree at its size now."""

    def effect(ctx: Context) -> CheckpointPublic:
        if not ctx.principal.operates_cluster:
            raise Forbidden("only a program admin or a cluster operator asks for one")
        return checkpoint_public(audit_log.checkpoint(ctx.session, unit.wired.log, ctx.now))

    return unit.write(effect, 201)


@router.get("/checkpoints", response_model=ListOf[CheckpointPublic])
def checkpoints(unit: Read, cursor: Cursor = None, limit: Limit = 500) -> ListOf[CheckpointPublic]:
    """Every signed checkpoint, smallest first: an auditor checks each against the next."""
    with unit.session() as session:
        found = audit_log.checkpoints(session, cursor, limit)
        items = [checkpoint_public(c) for c in found.items]
    return ListOf[CheckpointPublic](items=items, next_cursor=found.next_cursor)


@router.get("/checkpoints/latest", response_model=CheckpointPublic)
def latest(unit: Read) -> CheckpointPublic:
    with unit.session() as session:
        found = audit_log.latest_checkpoint(session)
        if found is None:
            raise NotFound("checkpoint", "yet")
        return checkpoint_public(found)


@router.get("/checkpoints/{size}", response_model=CheckpointPublic)
def at_size(size: Annotated[int, Path(ge=1, le=2**62)], unit: Read) -> CheckpointPublic:
    with unit.session() as session:
        return checkpoint_public(audit_log.checkpoint_at(session, size))


@router.get("/proofs/inclusion", response_model=ProofPublic)
def inclusion(
    unit: Read, leaf_index: Annotated[int, Query(ge=0, le=2**62)], size: Size
) -> ProofPublic:
    with unit.session() as session:
        proof = audit_log.inclusion_proof(session, unit.wired.log, leaf_index, size)
    return ProofPublic(size=size, leaf_index=leaf_index, proof=[b64(h) for h in proof])


@router.get("/proofs/consistency", response_model=ProofPublic)
def consistency(unit: Read, first: Size, size: Size) -> ProofPublic:
    with unit.session() as session:
        proof = audit_log.consistency_proof(session, unit.wired.log, first, size)
    return ProofPublic(size=size, first=first, proof=[b64(h) for h in proof])


@router.get("/key", response_model=VerifierKeyPublic)
def key(unit: Read) -> VerifierKeyPublic:
    return VerifierKeyPublic(origin=unit.wired.log.origin, key=unit.wired.log.key.public.to_text())
