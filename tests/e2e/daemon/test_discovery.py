"""Nodes publish operator-bound records on the libp2p DHT; a client finds a model's stages with no market."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from libp2p import generate_new_ed25519_identity
from libp2p.kad_dht.kad_dht import DHTMode
from libp2p.tools.anyio_service import background_trio_service

from node.daemon.discovery import connect_bootstrap, make_dht, model_key, parse_record, record_key
from node.daemon.launcher import NodeProcess, stop_all
from protocol.identity import verify_binding
from protocol.p2p import listen_multiaddr, make_host

pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)


def test_a_client_finds_every_stage_of_a_model_on_the_dht(tiny_llama: Path, tmp_path: Path) -> None:
    env = {"LAYERMARKET_NODE_DHT": "true", "LAYERMARKET_NODE_DHT_REPUBLISH_S": "1"}
    first = NodeProcess.start(tiny_llama, (0, 4), tmp_path / "a", env=env)
    nodes = [first]
    try:
        bootstrap = first.ready["addrs"][0]
        env_b = {**env, "LAYERMARKET_NODE_BOOTSTRAP": json.dumps([bootstrap])}
        nodes.append(NodeProcess.start(tiny_llama, (4, 8), tmp_path / "b", env=env_b))
        model_id = bytes.fromhex(first.ready["model_id"][2:])

        async def lookup() -> dict[str, dict[str, object]]:
            host = make_host(generate_new_ed25519_identity())
            async with host.run(listen_addrs=[listen_multiaddr("127.0.0.1", 0)]):
                dht = make_dht(host, DHTMode.CLIENT)
                async with background_trio_service(dht):
                    await connect_bootstrap(host, dht, [bootstrap])
                    found: dict[str, dict[str, object]] = {}
                    with trio.fail_after(30):
                        while len(found) < 2:  # records appear within a republish period
                            for provider in await dht.find_providers(model_key(model_id)):
                                peer = provider.peer_id.to_base58()
                                value = await dht.get_value(record_key(peer))
                                if value is not None:
                                    found[peer] = parse_record(record_key(peer), value)
                            await trio.sleep(0.2)
                    await host.close()
                    return found

        found = trio.run(lookup)
        assert {tuple(r["layers"]) for r in found.values()} == {(0, 4), (4, 8)}  # type: ignore[arg-type]
        for node in nodes:
            record = found[node.ready["peer_id"]]
            assert verify_binding_of(record) == node.ready["operator"]
    finally:
        stop_all(nodes)


def verify_binding_of(record: dict[str, object]) -> str:
    from protocol.identity import PeerBinding

    return verify_binding(PeerBinding.from_json(record["binding"]))  # type: ignore[arg-type]
