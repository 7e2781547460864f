"""``/v1/nodes``: heartbeats in, the directory out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from market.api.deps import DbSession, Now, State
from market.directory import accept_heartbeat, entries, node_view
from market.errors import MarketRequestError
from protocol.heartbeat import SignedHeartbeat
from protocol.market_api import ApiError, HeartbeatAck, NodeView

router = APIRouter(prefix="/v1/nodes", tags=["nodes"])
_ERRORS: dict[int | str, dict[str, Any]] = {409: {"model": ApiError}, 422: {"model": ApiError}}


@router.post("/heartbeat", response_model=HeartbeatAck, responses=_ERRORS)
def heartbeat(signed: SignedHeartbeat, state: State, session: DbSession, now: Now) -> HeartbeatAck:
    """A node's signed heartbeat; the answer says whether the market will route to it, and if not why."""
    try:
        ack = accept_heartbeat(session, signed, state.settings, now)
    except MarketRequestError as exc:
        state.metrics.heartbeats.labels(result=exc.code).inc()
        raise
    state.metrics.heartbeats.labels(result="routable" if ack.routable else "accepted").inc()
    state.pools.invalidate(signed.heartbeat.model_id)
    return ack


@router.get("", response_model=list[NodeView])
def list_nodes(
    state: State,
    session: DbSession,
    now: Now,
    model_id: Annotated[str | None, Query(pattern=r"^0x[0-9a-fA-F]{64}$")] = None,
) -> list[NodeView]:
    """Every known node (optionally of one model), with why it is or is not routable."""
    found = entries(session, state.settings, now, model_id.lower() if model_id else None)
    return [node_view(e, state.settings, now) for e in found]
