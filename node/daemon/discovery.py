"""The node's record on the libp2p Kademlia DHT, so clients can find stages when the market is down.

Each node runs a DHT server on its host and keeps two things published (republished every
``dht_republish_s``):

- a **provider record** for the model: key ``model_key(model_id)`` (a sha2-256 multihash of
  ``layermarket-model:`` + model id) names every peer serving some layers of that model;
- a **node record** under ``/layermarket/<peer id>``: JSON with the peer id, multiaddrs, model id, layer
  range, price, a timestamp, and the operator's peer binding (``protocol.identity``).

Every DHT peer validates node records before storing them (:class:`NodeRecordValidator`): the key must
name the record's peer, the binding must verify, and of two records the newer wins. A client finds a
route without the market by ``find_providers(model_key)`` then ``get_value(record_key(peer))`` for each.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import trio
from libp2p.abc import IHost
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.records.validator import NamespacedValidator, Validator
from libp2p.tools.anyio_service import background_trio_service

from protocol.identity import InvalidPeerBinding, PeerBinding, verify_binding
from protocol.p2p import peer_info

logger = logging.getLogger(__name__)

NAMESPACE = "layermarket"
_MAX_RECORD_BYTES = 8192


def record_key(peer_id: str) -> str:
    return f"/{NAMESPACE}/{peer_id}"


def model_key(model_id: bytes) -> str:
    """Hex multihash (sha2-256) naming a model in provider records."""
    digest = hashlib.sha256(b"layermarket-model:" + model_id).digest()
    return (bytes([0x12, 0x20]) + digest).hex()


def parse_record(key: str, value: bytes) -> dict[str, Any]:
    """A node record that is well-formed, names its own key, and is bound to its operator; else ValueError."""
    if len(value) > _MAX_RECORD_BYTES:
        raise ValueError("node record too large")
    record = json.loads(value)
    if not isinstance(record, dict):
        raise ValueError("node record must be a JSON object")
    peer_id = record.get("peer_id")
    if not isinstance(peer_id, str) or key != record_key(peer_id):
        raise ValueError("node record key does not name its peer")
    try:
        binding = PeerBinding.from_json(record.get("binding") or {})
        if binding.peer_id != peer_id:
            raise ValueError("node record binding is for another peer")
        verify_binding(binding)
    except InvalidPeerBinding as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(record.get("timestamp"), int):
        raise ValueError("node record needs an integer timestamp")
    return record


class NodeRecordValidator(Validator):
    """DHT validator of ``/layermarket/...`` records: well-formed, operator-bound; the newest wins."""

    def validate(self, key: str, value: bytes) -> None:
        parse_record(key, value)

    def select(self, key: str, values: list[bytes]) -> int:
        stamps = []
        for value in values:
            try:
                stamps.append(parse_record(key, value)["timestamp"])
            except ValueError:
                stamps.append(-1)
        return max(range(len(values)), key=lambda i: stamps[i])


def make_dht(host: IHost, mode: DHTMode = DHTMode.SERVER) -> KadDHT:
    validator = NamespacedValidator({NAMESPACE: NodeRecordValidator()})
    return KadDHT(host, mode, validator=validator, validator_changed=True)


async def connect_bootstrap(host: IHost, dht: KadDHT, bootstrap: list[str]) -> int:
    """Dial each bootstrap multiaddr (with /p2p/<id>) and add it to the routing table; returns how many."""
    joined = 0
    for address in bootstrap:
        peer_id = address.rsplit("/p2p/", 1)[-1]
        try:
            info = peer_info(peer_id, [address])
            with trio.fail_after(5):
                await host.connect(info)
            if await dht.add_peer(info.peer_id):
                joined += 1
        except Exception as exc:  # one bad bootstrap address must not stop the node
            logger.warning("DHT bootstrap %s failed: %s", address, exc)
    return joined


async def dht_loop(
    host: IHost, record: dict[str, Any], model_id: bytes, bootstrap: list[str], republish_s: float
) -> None:
    """Run the DHT server and keep this node's provider and node records published."""
    dht = make_dht(host)
    async with background_trio_service(dht):
        joined = await connect_bootstrap(host, dht, bootstrap)
        logger.info("DHT running; %d bootstrap peers joined", joined)
        while True:
            signed = {**record, "timestamp": int(time.time())}
            try:
                await dht.put_value(record_key(record["peer_id"]), json.dumps(signed).encode())
                await dht.provide(model_key(model_id))
            except Exception as exc:  # the DHT is best effort: serving never depends on it
                logger.warning("DHT publish failed: %s", exc)
            await trio.sleep(republish_s)


__all__ = ["NodeRecordValidator", "dht_loop", "make_dht", "model_key", "parse_record", "record_key"]
