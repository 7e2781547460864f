"""Heartbeats a node builds from its status are signed by its operator and accepted by the market's check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.daemon.announce import build_heartbeat
from node.keys import NodeKeys
from node.settings import NodeSettings
from protocol.heartbeat import sign_heartbeat, verify_heartbeat


class _Service:
    def status(self) -> dict[str, Any]:
        return {
            "layers": [4, 8],
            "sessions": 3,
            "kv_bytes_used": 100,
            "kv_bytes_budget": 1_000,
            "step_ms": 12.5,
        }


def test_heartbeat_carries_capacity_and_latency_and_verifies(tmp_path: Path) -> None:
    keys = NodeKeys.create(tmp_path, "pass", scrypt_n=1 << 10)
    settings = NodeSettings(max_sessions=10, price_per_token=7)
    addrs = [f"/ip4/127.0.0.1/tcp/4001/p2p/{keys.peer_id}"]
    heartbeat = build_heartbeat(_Service(), settings, keys, addrs, b"\x05" * 32)
    assert (heartbeat.layer_start, heartbeat.layer_end, heartbeat.free_sessions) == (4, 8, 7)
    assert (heartbeat.kv_free_bytes, heartbeat.step_ms, heartbeat.price_per_token) == (900, 12.5, 7)
    assert heartbeat.multiaddrs == ["/ip4/127.0.0.1/tcp/4001"]
    assert verify_heartbeat(sign_heartbeat(heartbeat, keys.operator_key)) == keys.operator_address


def test_market_app_accepts_the_heartbeat_as_the_node_posts_it(tmp_path: Path) -> None:
    """The node's HTTP request (body and headers) against the real market app, in process."""
    import httpx
    import trio

    from market.app import create_app
    from market.settings import MarketSettings
    from node.daemon.announce import post_heartbeat

    keys = NodeKeys.create(tmp_path / "keys", "pass", scrypt_n=1 << 10)
    model_id = b"\x05" * 32
    heartbeat = build_heartbeat(
        _Service(), NodeSettings(price_per_token=7), keys, ["/ip4/127.0.0.1/tcp/4001"], model_id
    )
    app = create_app(MarketSettings(data_dir=tmp_path, dev_trust_heartbeats=True))

    async def main() -> object:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://market") as http,
        ):
            model = {"model_id": "0x" + model_id.hex(), "name": "tiny", "num_layers": 8}
            assert (await http.post("/v1/models", json=model)).status_code == 201
            signed = sign_heartbeat(heartbeat, keys.operator_key)
            ack = await post_heartbeat(http, "http://market/v1/nodes/heartbeat", signed)
            # the same heartbeat again is a replay: refused (409), which the node logs and survives
            assert await post_heartbeat(http, "http://market/v1/nodes/heartbeat", signed) is None
            return ack

    ack = trio.run(main)
    assert ack is not None and ack.routable and ack.operator == keys.operator_address
