"""Announcing a node: signed heartbeats to the market (HTTP) with measured step latency and free capacity.

Heartbeats use ``protocol.heartbeat`` (EIP-191 over canonical JSON, signed by the operator key) and go to
``POST {market_url}/v1/nodes/heartbeat`` (a JSON body) every ``heartbeat_interval_s``. A market that is down
or refuses a heartbeat is logged and retried at the next interval; serving never depends on it. The market's
answer says whether it routes to the node and, if not, why (no stake, not registered, layers differ from the
on-chain record); the node logs that whenever it changes.
"""

from __future__ import annotations

import logging
import time
from importlib.metadata import version

import httpx
import trio
from pydantic import ValidationError

from node.keys import NodeKeys
from node.settings import NodeSettings
from protocol.heartbeat import Heartbeat, SignedHeartbeat, sign_heartbeat
from protocol.market_api import HeartbeatAck

logger = logging.getLogger(__name__)


def build_heartbeat(
    service: object, settings: NodeSettings, keys: NodeKeys, addrs: list[str], model_id: bytes
) -> Heartbeat:
    status = service.status()  # type: ignore[attr-defined]
    free_kv = max(0, int(status["kv_bytes_budget"]) - int(status["kv_bytes_used"]))
    return Heartbeat(
        peer_id=keys.peer_id,
        operator=keys.operator_address,
        model_id="0x" + model_id.hex(),
        layer_start=status["layers"][0],
        layer_end=status["layers"][1],
        multiaddrs=[a.split("/p2p/")[0] for a in addrs],
        price_per_token=settings.price_per_token,
        step_ms=float(status["step_ms"]),
        free_sessions=max(0, settings.max_sessions - int(status["sessions"])),
        kv_free_bytes=free_kv,
        timestamp=int(time.time()),
        version=version("layermarket"),
    )


async def post_heartbeat(http: httpx.AsyncClient, url: str, signed: SignedHeartbeat) -> HeartbeatAck | None:
    """POST one signed heartbeat as a JSON body; the market's answer, or None (logged) when it refused it
    or could not be reached."""
    try:
        # json=, not content=: the market parses bodies declared application/json, nothing else
        response = await http.post(url, json=signed.model_dump(mode="json"))
    except httpx.HTTPError as exc:
        logger.warning("heartbeat to %s failed: %s", url, exc)
        return None
    if response.status_code >= 400:
        logger.warning("market refused the heartbeat: %s %s", response.status_code, response.text[:200])
        return None
    try:
        return HeartbeatAck.model_validate_json(response.content)
    except ValidationError as exc:
        logger.warning("market answered the heartbeat with something else than an ack: %s", exc)
        return None


async def heartbeat_loop(
    service: object, settings: NodeSettings, keys: NodeKeys, addrs: list[str], model_id: bytes
) -> None:
    url = f"{str(settings.market_url).rstrip('/')}/v1/nodes/heartbeat"
    reported: tuple[bool, str | None] | None = None
    async with httpx.AsyncClient(timeout=5.0) as http:
        while True:
            signed = sign_heartbeat(
                build_heartbeat(service, settings, keys, addrs, model_id), keys.operator_key
            )
            ack = await post_heartbeat(http, url, signed)
            if ack is not None and (ack.routable, ack.reason) != reported:
                # say it when it changes: an operator must learn why the market does not route to them
                if ack.routable:
                    logger.info("the market routes to this node")
                else:
                    logger.warning("the market does not route to this node: %s", ack.reason)
                reported = (ack.routable, ack.reason)
            await trio.sleep(settings.heartbeat_interval_s)


__all__ = ["build_heartbeat", "heartbeat_loop", "post_heartbeat"]
