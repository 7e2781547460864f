"""The node directory: accepts heartbeats, decides which nodes are routable, and builds planner pools.

A node is *routable* when all of these hold (``routability`` returns the first that fails, as the reason):

1. its last heartbeat arrived within ``heartbeat_ttl_s``;
2. its operator is registered on-chain, has bonded stake and is not jailed (from the indexer's
   ``operators`` table; ``dev_trust_heartbeats`` skips this for chain-less development, loudly);
3. the heartbeat's model, layer range and peer id are the ones registered on-chain.

Heartbeats are checked for signature (``protocol.heartbeat``), clock skew, a known model, a layer range
inside the model, and a timestamp newer than the last one accepted (a replayed heartbeat is refused).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

import base58
from sqlalchemy import select
from sqlalchemy.orm import Session

from market.errors import Conflict, Unprocessable
from market.models import ModelRow, NodeRow, OperatorRow
from market.planner import Pool, PoolNode
from market.settings import MarketSettings
from protocol.heartbeat import InvalidHeartbeatSignature, SignedHeartbeat, verify_heartbeat
from protocol.market_api import HeartbeatAck, NodeView

log = logging.getLogger(__name__)


def peer_id_hex_forms(peer_id: str) -> set[str]:
    """Hex forms the on-chain ``peerId`` bytes may take: the multihash bytes, or the UTF-8 of the text."""
    forms = {"0x" + peer_id.encode().hex()}
    with contextlib.suppress(ValueError):
        forms.add("0x" + base58.b58decode(peer_id).hex())
    return forms


def routability(
    node: NodeRow, operator: OperatorRow | None, settings: MarketSettings, now: int
) -> str | None:
    """None when ``node`` may be routed to now, else the reason it may not (for operators and the UI)."""
    age = now - node.last_seen
    if age > settings.heartbeat_ttl_s:
        return f"no heartbeat for {age} s (limit {settings.heartbeat_ttl_s} s)"
    if settings.dev_trust_heartbeats:
        return None
    if operator is None or not operator.registered:
        return "operator has no node registered on-chain (NodeStaking.register)"
    if int(operator.bonded) <= 0:
        return "operator has no bonded stake on-chain"
    if operator.jailed_until > now:
        return f"operator is jailed on-chain until {operator.jailed_until}"
    if (operator.model_id or "").lower() != node.model_id:
        return f"heartbeat model {node.model_id} differs from the on-chain registration {operator.model_id}"
    if (operator.layer_start, operator.layer_end) != (node.layer_start, node.layer_end):
        return (
            f"heartbeat layers [{node.layer_start}, {node.layer_end}) differ from the on-chain registration "
            f"[{operator.layer_start}, {operator.layer_end})"
        )
    if (operator.peer_id_hex or "").lower() not in peer_id_hex_forms(node.peer_id):
        return "heartbeat peer id differs from the peer id registered on-chain"
    return None


def accept_heartbeat(
    session: Session, signed: SignedHeartbeat, settings: MarketSettings, now: int
) -> HeartbeatAck:
    """Check and store one heartbeat; raises ``Unprocessable``/``Conflict`` saying what to fix."""
    hb = signed.heartbeat
    try:
        verify_heartbeat(signed)
    except InvalidHeartbeatSignature as exc:
        raise Unprocessable(f"{exc}; sign with the operator's key", code="bad_signature") from exc
    if abs(hb.timestamp - now) > settings.heartbeat_max_skew_s:
        raise Unprocessable(
            f"heartbeat timestamp {hb.timestamp} is {hb.timestamp - now:+d} s from the market's clock "
            f"(limit ±{settings.heartbeat_max_skew_s} s); check the node's clock",
            code="clock_skew",
        )
    model = session.get(ModelRow, hb.model_id)
    if model is None:
        raise Unprocessable(
            f"unknown model {hb.model_id}: the market operator must register it (POST /v1/models)",
            code="unknown_model",
        )
    if hb.layer_end > model.num_layers:
        raise Unprocessable(
            f"layer_end {hb.layer_end} exceeds the model's {model.num_layers} layers", code="bad_layers"
        )
    other = session.scalars(select(NodeRow).where(NodeRow.peer_id == hb.peer_id)).first()
    if other is not None and other.operator != hb.operator:
        raise Conflict(
            f"peer id {hb.peer_id} is already announced by operator {other.operator}", "peer_taken"
        )
    node = session.get(NodeRow, hb.operator, with_for_update=True)
    if node is not None and hb.timestamp <= node.heartbeat_ts:
        raise Conflict(
            f"heartbeat timestamp {hb.timestamp} is not newer than the last accepted ({node.heartbeat_ts}); "
            "send a fresh heartbeat",
            code="replayed_heartbeat",
        )
    if node is None:
        node = NodeRow(operator=hb.operator, first_seen=now, uptime=1.0, reliability=1.0, probe_failures=0)
        node.spot_passed = node.spot_failed = node.recent_quotes = 0
        session.add(node)
    node.peer_id = hb.peer_id
    node.model_id = hb.model_id
    node.layer_start = hb.layer_start
    node.layer_end = hb.layer_end
    node.multiaddrs = list(hb.multiaddrs)
    node.price_per_token = str(hb.price_per_token)
    node.step_ms = hb.step_ms
    node.free_sessions = hb.free_sessions
    node.kv_free_bytes = hb.kv_free_bytes
    node.version = hb.version
    node.heartbeat_ts = hb.timestamp
    node.last_seen = now
    session.flush()
    reason = routability(node, session.get(OperatorRow, hb.operator), settings, now)
    return HeartbeatAck(
        operator=hb.operator,
        routable=reason is None,
        reason=reason,
        next_heartbeat_s=settings.heartbeat_interval_s,
    )


@dataclass(frozen=True)
class DirectoryEntry:
    node: NodeRow
    operator: OperatorRow | None
    reason: str | None  # None: routable

    @property
    def routable(self) -> bool:
        return self.reason is None


def entries(
    session: Session, settings: MarketSettings, now: int, model_id: str | None = None
) -> list[DirectoryEntry]:
    """Every node with its on-chain state and routability, optionally of one model."""
    query = select(NodeRow, OperatorRow).outerjoin(OperatorRow, OperatorRow.operator == NodeRow.operator)
    if model_id is not None:
        query = query.where(NodeRow.model_id == model_id)
    rows = session.execute(query.order_by(NodeRow.layer_start, NodeRow.peer_id)).all()
    return [DirectoryEntry(node, op, routability(node, op, settings, now)) for node, op in rows]


def node_view(entry: DirectoryEntry, settings: MarketSettings, now: int) -> NodeView:
    node, op = entry.node, entry.operator
    return NodeView(
        peer_id=node.peer_id,
        operator=node.operator,
        model_id=node.model_id,
        layer_start=node.layer_start,
        layer_end=node.layer_end,
        multiaddrs=list(node.multiaddrs),
        price_per_token=int(node.price_per_token),
        step_ms=node.step_ms,
        rtt_ms=node.rtt_ms,
        free_sessions=node.free_sessions,
        last_seen=node.last_seen,
        bonded=settings.dev_trust_heartbeats or (op is not None and int(op.bonded) > 0),
        jailed=op is not None and op.jailed_until > now,
        live=now - node.last_seen <= settings.heartbeat_ttl_s,
        reliability=node.reliability,
        routable=entry.routable,
        reason=entry.reason,
    )


def pool_node(node: NodeRow, settings: MarketSettings) -> PoolNode:
    recent = max(node.recent_quotes, 0)
    utilisation = recent / (recent + node.free_sessions) if recent + node.free_sessions else 0.95
    return PoolNode(
        peer_id=node.peer_id,
        operator=node.operator,
        multiaddrs=tuple(node.multiaddrs),
        layer_start=node.layer_start,
        layer_end=node.layer_end,
        price_per_token=int(node.price_per_token),
        step_ms=node.step_ms,
        rtt_ms=node.rtt_ms if node.rtt_ms is not None else settings.default_rtt_ms,
        utilisation=utilisation,
        reliability=node.reliability,
        free_sessions=node.free_sessions,
    )


class PoolCache:
    """Planner pools per model, rebuilt at most every ``planner_refresh_s`` or when invalidated.

    Indexing a pool of 10,000 nodes takes tens of milliseconds; a route search over it takes about one.
    Caching the pool keeps quotes fast; a heartbeat handled by this process invalidates its model at once,
    and other processes' changes show up within ``planner_refresh_s``.
    """

    def __init__(self, settings: MarketSettings) -> None:
        self._settings = settings
        self._pools: dict[str, tuple[float, Pool]] = {}
        self._lock = threading.Lock()

    def invalidate(self, model_id: str) -> None:
        with self._lock:
            self._pools.pop(model_id, None)

    def get(self, session: Session, model: ModelRow, now: int) -> Pool:
        with self._lock:
            cached = self._pools.get(model.model_id)
        if cached is not None and time.monotonic() - cached[0] < self._settings.planner_refresh_s:
            return cached[1]
        nodes = [
            pool_node(e.node, self._settings)
            for e in entries(session, self._settings, now, model.model_id)
            if e.routable
        ]
        pool = Pool(model.num_layers, nodes, spread_epsilon=self._settings.spread_epsilon)
        with self._lock:
            self._pools[model.model_id] = (time.monotonic(), pool)
        return pool


__all__ = [
    "DirectoryEntry",
    "PoolCache",
    "accept_heartbeat",
    "entries",
    "node_view",
    "peer_id_hex_forms",
    "pool_node",
    "routability",
]
