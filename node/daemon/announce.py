"""Announcing a node: signed heartbeats to the market (HTTP) with measured step latency and free capacity.

Heartbeats use ``protocol.heartbeat`` (EIP-191 over canonical JSON, signed by the operator key) and go to
``POST {market_url}/v1/nodes/heartbeat`` every ``heartbeat_interval_s``. A market that is down or refuses
a heartbeat is logged and retried at the next interval; serving never depends on it.
"""

from __future__ import annotations

import logging
import time
from importlib.metadata import version

import httpx
import trio

from node.keys import NodeKeys
from node.settings import NodeSettings
from protocol.heartbeat import Heartbeat, sign_heartbeat

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


async def heartbeat_loop(
    service: object, settings: NodeSettings, keys: NodeKeys, addrs: list[str], model_id: bytes
) -> None:
    url = f"{str(settings.market_url).rstrip('/')}/v1/nodes/heartbeat"
    async with httpx.AsyncClient(timeout=5.0) as http:
        while True:
            signed = sign_heartbeat(
                build_heartbeat(service, settings, keys, addrs, model_id), keys.operator_key
            )
            try:
                response = await http.post(url, content=signed.model_dump_json())
                if response.status_code >= 400:
                    logger.warning(
                        "market refused the heartbeat: %s %s", response.status_code, response.text[:200]
                    )
            except httpx.HTTPError as exc:
                logger.warning("heartbeat to %s failed: %s", url, exc)
            await trio.sleep(settings.heartbeat_interval_s)


__all__ = ["build_heartbeat", "heartbeat_loop"]
