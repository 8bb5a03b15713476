"""Nodes (sinfo-like facts every signed-in person may read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response

from kizuna.api.deps import Read, Write
from kizuna.api.routes.common import DEFAULT_LIMIT, Cursor, Filter, Limit, ref
from kizuna.api.schemas import ListOf, NodeCreate, NodePublic, NodeUpdate
from kizuna.scheduling.model import NodeState
from kizuna.services import nodes

router = APIRouter(prefix="/nodes", tags=["nodes"])
Ref = Annotated[str, ref(63, "Node id or name")]


@router.post("", status_code=201, response_model=NodePublic)
def create(body: NodeCreate, unit: Write) -> Response:
    return unit.write(
        lambda ctx: NodePublic.model_validate(
            nodes.create(ctx, body.name, body.gpu_type, body.gpus, body.nvlink_domain, body.rack)
        ),
        201,
    )


@router.get("", response_model=ListOf[NodePublic])
def listing(
    unit: Read,
    gpu_type: Filter = None,
    state: NodeState | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> ListOf[NodePublic]:
    with unit.session() as session:
        found = nodes.listing(session, gpu_type, state, cursor, limit)
        items = [NodePublic.model_validate(n) for n in found.items]
    return ListOf[NodePublic](items=items, next_cursor=found.next_cursor)


@router.get("/{node}", response_model=NodePublic)
def show(node: Ref, unit: Read) -> NodePublic:
    with unit.session() as session:
        return NodePublic.model_validate(nodes.get(session, node))


@router.patch("/{node}", response_model=NodePublic)
def update(node: Ref, body: NodeUpdate, unit: Write) -> Response:
    return unit.write(
        lambda ctx: NodePublic.model_validate(nodes.set_state(ctx, node, NodeState(body.state)))
    )
