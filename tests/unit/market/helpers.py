"""Building blocks for market tests: keys, signed heartbeats, on-chain state through the indexer's fold."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import base58
from eth_account import Account
from fastapi.testclient import TestClient

from market.indexer import ChainLog, Indexer
from protocol.eip712 import Domain
from protocol.heartbeat import Heartbeat, sign_heartbeat
from protocol.receipts import Receipt, sign_receipt

MODEL_ID = "0x" + "ab" * 32


def key(index: int) -> str:
    return "0x" + f"{index + 1:064x}"


def peer_id(index: int) -> str:
    # A realistic-looking base58 peer id (multihash bytes of an identity key) per index.
    return base58.b58encode(bytes([0, 36, 8, 1, 18, 32]) + index.to_bytes(32, "big")).decode()


def heartbeat(
    index: int, start: int, end: int, *, private_key: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A signed heartbeat body for node ``index`` (its key, or ``private_key``, e.g. an anvil account's)."""
    signing_key = private_key or key(index)
    fields: dict[str, Any] = {
        "peer_id": peer_id(index),
        "operator": Account.from_key(signing_key).address,
        "model_id": MODEL_ID,
        "layer_start": start,
        "layer_end": end,
        "multiaddrs": [f"/ip4/127.0.0.1/tcp/{40000 + index}"],
        "price_per_token": 100,
        "step_ms": 10.0,
        "free_sessions": 4,
        "kv_free_bytes": 2**30,
        "timestamp": int(time.time()),
        "version": "0.1.0",
    }
    fields.update(overrides)
    signed = sign_heartbeat(Heartbeat.model_validate(fields), signing_key)
    return signed.model_dump(mode="json")


COURT = Domain(31337, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
CLIENT = Account.from_key(key(99)).address


def signed_receipt(
    hop: dict[str, Any], index: int, step_start: int = 0, step_end: int = 4, domain: Domain = COURT
) -> dict[str, Any]:
    """The JSON body of POST /v1/jobs/{id}/receipts for ``hop``, signed by node ``index`` under ``domain``."""
    receipt = Receipt(
        node=hop["operator"],
        session_id=b"\x01" * 32,
        model_id=bytes.fromhex(MODEL_ID[2:]),
        layer_start=hop["layer_start"],
        layer_end=hop["layer_end"],
        step_start=step_start,
        step_end=step_end,
        input_digest=b"\x02" * 32,
        output_commitment=b"\x03" * 32,
        tokens=step_end - step_start,
        price_per_token=hop["price_per_token"],
        client=CLIENT,
    )
    signature = sign_receipt(receipt, key(index), domain)
    body = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in vars(receipt).items()}
    return {"peer_id": hop["peer_id"], **body, "signature": "0x" + signature.hex()}


@dataclass
class ScriptedChain:
    """An in-memory chain for the indexer's storage and reorg logic: blocks of decoded logs, reorgable."""

    blocks: list[tuple[str, list[ChainLog]]] = field(default_factory=list)
    fork: int = 0
    source_id: str = "31337:0xStaking"

    def start_block(self) -> int:
        return 0

    def head(self) -> int:
        return len(self.blocks) - 1

    def block_hash(self, number: int) -> str | None:
        return self.blocks[number][0] if 0 <= number < len(self.blocks) else None

    def logs(self, from_block: int, to_block: int) -> list[ChainLog]:
        return [log for n in range(from_block, to_block + 1) for log in self.blocks[n][1]]

    def mine(self, *events: tuple[str, dict[str, Any]]) -> int:
        number = len(self.blocks)
        block_hash = "0x" + f"{self.fork:08x}{number:056x}"
        logs = [
            ChainLog(number, block_hash, i, "0x" + "11" * 32, name, args)
            for i, (name, args) in enumerate(events)
        ]
        self.blocks.append((block_hash, logs))
        return number

    def reorg(self, depth: int) -> None:
        """Drop the last ``depth`` blocks; what is mined next has new hashes."""
        self.fork += 1
        del self.blocks[len(self.blocks) - depth :]


def registration_events(
    index: int, start: int, end: int, bonded: int = 10**18
) -> list[tuple[str, dict[str, Any]]]:
    operator = Account.from_key(key(index)).address
    return [
        ("Bonded", {"operator": operator, "amount": bonded, "bonded": bonded}),
        (
            "NodeRegistered",
            {
                "operator": operator,
                "peerId": "0x" + base58.b58decode(peer_id(index)).hex(),
                "modelId": MODEL_ID,
                "layerStart": start,
                "layerEnd": end,
                "pricePerToken": 100,
                "endpointHash": "0x" + "00" * 32,
            },
        ),
    ]


class Seeder:
    """Seeds a running app: the model, on-chain registrations (through the real indexer) and heartbeats."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.chain = ScriptedChain()

    @property
    def state(self) -> Any:
        return self.client.app.state.market  # type: ignore[attr-defined]

    def model(self, num_layers: int = 8, model_id: str = MODEL_ID) -> None:
        body = {"model_id": model_id, "name": "tiny-llama", "num_layers": num_layers}
        response = self.client.post("/v1/models", json=body)
        assert response.status_code == 201, response.text

    def bond(self, index: int, start: int, end: int) -> None:
        self.chain.mine(*registration_events(index, start, end))
        Indexer(self.state.db, self.chain, reorg_depth=4).catch_up()

    def node(self, index: int, start: int, end: int, bond: bool = True, **overrides: Any) -> dict[str, Any]:
        if bond:
            self.bond(index, start, end)
        response = self.client.post("/v1/nodes/heartbeat", json=heartbeat(index, start, end, **overrides))
        assert response.status_code == 200, response.text
        return dict(response.json())
