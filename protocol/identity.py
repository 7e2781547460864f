"""Binding a node's libp2p peer id to its operator's Ethereum address.

A libp2p connection authenticates the peer id (Noise proves the remote holds the peer's Ed25519 key);
the binding says which operator stands behind that peer: the operator signs, with EIP-191
``personal_sign``, the text ``layermarket-peer-binding-v1:<peer id>``. The node record (heartbeat,
on-chain registration, DHT record) carries the signature, so a client that dialled peer P can check that
P is the peer the bonded operator named, and the market can refuse a heartbeat whose peer the operator
never bound::

    binding = bind_peer("12D3KooW...", operator_private_key)
    verify_binding(binding)                 # the operator address, or InvalidPeerBinding
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_defunct

from protocol.errors import PermanentError

BINDING_DOMAIN = "layermarket-peer-binding-v1"


class InvalidPeerBinding(PermanentError):
    """The signature does not bind this peer id to this operator."""


@dataclass(frozen=True)
class PeerBinding:
    peer_id: str
    operator: str  # checksummed 0x address
    signature: bytes  # 65 bytes r || s || v

    def to_json(self) -> dict[str, str]:
        return {"peer_id": self.peer_id, "operator": self.operator, "signature": "0x" + self.signature.hex()}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> PeerBinding:
        try:
            signature = bytes.fromhex(data["signature"].removeprefix("0x"))
            return cls(str(data["peer_id"]), str(data["operator"]), signature)
        except (KeyError, ValueError, AttributeError) as exc:
            raise InvalidPeerBinding(f"malformed peer binding: {exc}") from None


def binding_message(peer_id: str) -> bytes:
    return f"{BINDING_DOMAIN}:{peer_id}".encode()


def bind_peer(peer_id: str, operator_key: bytes) -> PeerBinding:
    """The operator's signature over ``peer_id``."""
    account = Account.from_key(operator_key)
    signed = account.sign_message(encode_defunct(binding_message(peer_id)))
    return PeerBinding(peer_id, str(account.address), bytes(signed.signature))


def verify_binding(binding: PeerBinding) -> str:
    """The operator address if the signature binds ``binding.peer_id`` to it; else ``InvalidPeerBinding``."""
    try:
        recovered = Account.recover_message(
            encode_defunct(binding_message(binding.peer_id)), signature=binding.signature
        )
    except Exception as exc:  # malformed signatures raise several eth-keys/eth-account types
        raise InvalidPeerBinding(f"unreadable signature: {type(exc).__name__}") from None
    if str(recovered).lower() != binding.operator.lower():
        raise InvalidPeerBinding(f"peer {binding.peer_id} is bound to {recovered}, not {binding.operator}")
    return str(recovered)


__all__ = [
    "BINDING_DOMAIN",
    "InvalidPeerBinding",
    "PeerBinding",
    "bind_peer",
    "binding_message",
    "verify_binding",
]
