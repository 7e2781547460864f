"""Reputation: one number per node, 0..1, that the planner divides step time by.

    reliability = uptime * probe_factor * spot_factor

- ``uptime``: exponentially weighted share of reputation passes in which the node was live
  (weight ``UPTIME_ALPHA`` per pass; a node that misses heartbeats decays towards 0 within ~10 passes).
- ``probe_factor`` = 1 / (1 + consecutive failed probes): an unreachable node loses rank fast.
- ``spot_factor`` = (passed + 1) / (passed + 1 + 10 * failed): one failed spot check outweighs ten passes.

Each pass also resets ``recent_quotes`` (the load the heartbeats cannot see yet).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from market.models import NodeRow

UPTIME_ALPHA = 0.2
FAILED_SPOT_WEIGHT = 10


def reliability(node: NodeRow) -> float:
    probe_factor = 1.0 / (1.0 + max(node.probe_failures, 0))
    spot_factor = (node.spot_passed + 1) / (node.spot_passed + 1 + FAILED_SPOT_WEIGHT * node.spot_failed)
    return max(0.0, min(1.0, node.uptime * probe_factor * spot_factor))


def update_all(session: Session, now: int, heartbeat_ttl_s: int) -> int:
    """One reputation pass over every node; returns how many nodes it updated."""
    count = 0
    for node in session.scalars(select(NodeRow).with_for_update()):
        live = 1.0 if now - node.last_seen <= heartbeat_ttl_s else 0.0
        node.uptime = (1 - UPTIME_ALPHA) * node.uptime + UPTIME_ALPHA * live
        node.reliability = reliability(node)
        node.recent_quotes = 0
        count += 1
    return count


__all__ = ["FAILED_SPOT_WEIGHT", "UPTIME_ALPHA", "reliability", "update_all"]
