"""Node heartbeats: what a serving node tells the market every few seconds, signed by its operator key.

A heartbeat says which stage a node serves (model, half-open layer range ``[layer_start, layer_end)`` as
on-chain), where to reach it, its price and how fast and how full it is right now. The node signs the
heartbeat's canonical bytes with its operator's Ethereum key (EIP-191 ``personal_sign``); the market
recovers the signer and accepts the heartbeat only when the signer is the ``operator`` it names, that
operator is bonded on-chain, and the timestamp is fresh and newer than the last one it saw::

    hb = Heartbeat(peer_id="12D3KooW...", operator=acct.address, model_id="0x" + "ab" * 32,
                   layer_start=0, layer_end=16, multiaddrs=["/ip4/10.0.0.5/tcp/4001"],
                   price_per_token=1_000, step_ms=12.5, free_sessions=8, kv_free_bytes=2**30,
                   timestamp=1_790_000_000, version="0.1.0")
    signed = sign_heartbeat(hb, acct.key)
    verify_heartbeat(signed)      # '0x...' == acct.address, else InvalidHeartbeatSignature

Why EIP-191 over a canonical JSON document and not EIP-712: a heartbeat never goes on-chain, carries a
float (step time) and a list of strings, and is verified only by the market; the canonical JSON starts
with a domain tag (``layermarket-heartbeat-v1``) so a heartbeat signature can never be mistaken for the
signature of any other Layermarket message, and the timestamp plus the market's freshness window stops
replays.

Errors::

    PermanentError
    └── HeartbeatError              the heartbeat is malformed
        └── InvalidHeartbeatSignature   the signature is not the operator's
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import is_checksum_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from protocol.errors import PermanentError

HEARTBEAT_DOMAIN = "layermarket-heartbeat-v1"
MAX_MULTIADDRS = 16
MAX_LAYERS = 65_535  # layer indices are uint16 on-chain

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_HEX_SIG = re.compile(r"^0x[0-9a-fA-F]{130}$")


class HeartbeatError(PermanentError):
    """A heartbeat that cannot be accepted as sent; the message says what is wrong."""


class InvalidHeartbeatSignature(HeartbeatError):
    """The heartbeat's signature does not recover to the operator it names."""


def _address(value: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        raise ValueError("must be a 0x-prefixed 20-byte hex Ethereum address")
    if value != value.lower() and value[2:] != value[2:].upper() and not is_checksum_address(value):
        raise ValueError("mixed-case address with a wrong EIP-55 checksum")
    return str(to_checksum_address(value))


def _model_id(value: str) -> str:
    if not _HEX32.fullmatch(value):
        raise ValueError("must be 0x followed by 64 hex digits (the 32-byte model id)")
    return value.lower()


def _signature(value: str) -> str:
    if not _HEX_SIG.fullmatch(value):
        raise ValueError("must be 0x followed by 130 hex digits (a 65-byte r||s||v signature)")
    return value.lower()


Address = Annotated[str, AfterValidator(_address)]
"""A 0x Ethereum address, normalised to its EIP-55 checksum form."""
ModelId = Annotated[str, AfterValidator(_model_id)]
"""A model id: ``0x`` + 64 lowercase hex digits (keccak-256 of the model manifest)."""
Signature = Annotated[str, AfterValidator(_signature)]
"""A 65-byte secp256k1 signature in lowercase 0x hex."""


class Heartbeat(BaseModel):
    """One node's announcement of the stage it serves and its current state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    peer_id: str = Field(min_length=1, max_length=128, pattern=r"^[1-9A-HJ-NP-Za-km-z]+$")
    """libp2p peer id, base58 (``12D3KooW...`` or ``Qm...``)."""
    operator: Address
    """The operator's address: the key that bonded stake and signs this heartbeat."""
    model_id: ModelId
    layer_start: int = Field(ge=0, lt=MAX_LAYERS)
    """First layer served (inclusive)."""
    layer_end: int = Field(gt=0, le=MAX_LAYERS)
    """One past the last layer served (exclusive), as on-chain."""
    multiaddrs: list[Annotated[str, Field(min_length=1, max_length=256, pattern=r"^/[^\x00]*$")]] = Field(
        min_length=1, max_length=MAX_MULTIADDRS
    )
    """Where the node's libp2p daemon listens, e.g. ``/ip4/10.0.0.5/tcp/4001``."""
    price_per_token: int = Field(ge=0, lt=2**256)
    """Token base units per generated token."""
    step_ms: float = Field(ge=0, le=600_000, allow_inf_nan=False)
    """Measured time of one decode step over the node's layers at batch 1, in milliseconds."""
    free_sessions: int = Field(ge=0, le=1_000_000)
    """Sessions the node can still open."""
    kv_free_bytes: int = Field(ge=0, lt=2**63)
    """Free KV-cache memory, bytes."""
    timestamp: int = Field(ge=0, lt=2**63)
    """Unix seconds when the node built this heartbeat."""
    version: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00]+$")
    """The node's software version."""

    @model_validator(mode="after")
    def _layers_in_order(self) -> Heartbeat:
        if self.layer_end <= self.layer_start:
            raise ValueError(
                f"layer_end ({self.layer_end}) must be greater than layer_start ({self.layer_start}): "
                "layers are the half-open range [layer_start, layer_end)"
            )
        return self

    def canonical_bytes(self) -> bytes:
        """The bytes that are signed: a domain tag and the fields as JSON with sorted keys, no spaces."""
        document: dict[str, Any] = {"domain": HEARTBEAT_DOMAIN, **self.model_dump(mode="json")}
        # price_per_token may exceed 2**53: carry it as a decimal string so every JSON reader agrees.
        document["price_per_token"] = str(self.price_per_token)
        return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


class SignedHeartbeat(BaseModel):
    """A heartbeat and its operator's signature; the body of ``POST /v1/nodes/heartbeat``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    heartbeat: Heartbeat
    signature: Signature


def sign_heartbeat(heartbeat: Heartbeat, private_key: bytes | str) -> SignedHeartbeat:
    """Sign ``heartbeat`` with the operator's key (which must be the key of ``heartbeat.operator``)."""
    message = encode_defunct(primitive=heartbeat.canonical_bytes())
    signed = Account.sign_message(message, private_key=private_key)
    signer = to_checksum_address(Account.from_key(private_key).address)
    if signer != heartbeat.operator:
        raise HeartbeatError(
            f"the key signs for {signer}, but the heartbeat names operator {heartbeat.operator}"
        )
    return SignedHeartbeat(heartbeat=heartbeat, signature="0x" + bytes(signed.signature).hex())


def verify_heartbeat(signed: SignedHeartbeat) -> str:
    """The checksum address that signed ``signed``; ``InvalidHeartbeatSignature`` unless the operator."""
    message = encode_defunct(primitive=signed.heartbeat.canonical_bytes())
    try:
        recovered = str(Account.recover_message(message, signature=bytes.fromhex(signed.signature[2:])))
    except Exception as exc:  # eth-keys raises several types for a malformed r/s/v
        raise InvalidHeartbeatSignature(f"the signature cannot be recovered: {exc}") from exc
    if to_checksum_address(recovered) != signed.heartbeat.operator:
        raise InvalidHeartbeatSignature(
            f"the heartbeat names operator {signed.heartbeat.operator} but was signed by {recovered}"
        )
    return signed.heartbeat.operator


__all__ = [
    "HEARTBEAT_DOMAIN",
    "Address",
    "Heartbeat",
    "HeartbeatError",
    "InvalidHeartbeatSignature",
    "ModelId",
    "Signature",
    "SignedHeartbeat",
    "sign_heartbeat",
    "verify_heartbeat",
]
