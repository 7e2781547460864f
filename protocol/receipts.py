"""EIP-712 receipts: what a node signs about a step range of a session, as SpotCheckCourt verifies them.

The node daemon signs one receipt per ``receipt_every`` steps (and one at close); the client checks them;
a validator who re-computes the job and finds ``output_commitment`` out of tolerance challenges the
receipt in the court, which recovers the node from this signature. Type string (field order matters)::

    Receipt(address node,bytes32 sessionId,bytes32 modelId,uint16 layerStart,uint16 layerEnd,
            uint32 stepStart,uint32 stepEnd,bytes32 inputDigest,bytes32 outputCommitment,uint32 tokens,
            uint256 pricePerToken,address client)

(one line, no spaces after commas). No fields were added to the shared design. Domain:
``Domain(chain_id, verifying_contract=<SpotCheckCourt address>)``.

    >>> from protocol.eip712 import Domain
    >>> from protocol.receipts import Receipt, sign_receipt, recover_receipt_signer
    >>> court = Domain(31337, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
    >>> r = Receipt(node="0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1", session_id=b"\\x01" * 32,
    ...             model_id=b"\\x02" * 32, layer_start=0, layer_end=4, step_start=0, step_end=32,
    ...             input_digest=b"\\x03" * 32, output_commitment=b"\\x04" * 32, tokens=32,
    ...             price_per_token=1000, client="0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
    >>> recover_receipt_signer(r, sign_receipt(r, "0x" + "01" * 32, court), court) == r.node
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocol.eip712 import (
    Domain,
    PrivateKey,
    SignatureError,
    check_address,
    check_bytes32,
    check_uint,
    recover_digest,
    sign_digest,
    struct_hash,
    typed_data_digest,
)

__all__ = [
    "EIP712_FIELD_NAMES",
    "RECEIPT_ABI_TYPES",
    "RECEIPT_TYPE",
    "Receipt",
    "receipt_digest",
    "recover_receipt_signer",
    "sign_receipt",
    "verify_receipt",
]

RECEIPT_TYPE = (
    "Receipt(address node,bytes32 sessionId,bytes32 modelId,uint16 layerStart,uint16 layerEnd,"
    "uint32 stepStart,uint32 stepEnd,bytes32 inputDigest,bytes32 outputCommitment,uint32 tokens,"
    "uint256 pricePerToken,address client)"
)
RECEIPT_ABI_TYPES = (
    "address",
    "bytes32",
    "bytes32",
    "uint16",
    "uint16",
    "uint32",
    "uint32",
    "bytes32",
    "bytes32",
    "uint32",
    "uint256",
    "address",
)

EIP712_FIELD_NAMES = tuple(part.split(" ")[1] for part in RECEIPT_TYPE[len("Receipt(") : -1].split(","))
"""("node", "sessionId", "modelId", ...): the type string's names, in order."""

ReceiptTuple = tuple[str, bytes, bytes, int, int, int, int, bytes, bytes, int, int, str]


@dataclass(frozen=True)
class Receipt:
    """A node's signed claim about steps [step_start, step_end) of a session on its layers."""

    node: str  # operator address of the signing node (checksummed on creation)
    session_id: bytes  # 32 bytes
    model_id: bytes  # 32 bytes: keccak256 of the model manifest
    layer_start: int  # uint16
    layer_end: int  # uint16, exclusive
    step_start: int  # uint32
    step_end: int  # uint32, exclusive
    input_digest: bytes  # 32 bytes: digest of what the node received
    output_commitment: bytes  # 32 bytes: commitment to the fingerprint of what it produced
    tokens: int  # uint32: tokens billed for this range
    price_per_token: int  # uint256, token units
    client: str  # who pays

    def __post_init__(self) -> None:
        object.__setattr__(self, "node", check_address(self.node, "receipt node"))
        object.__setattr__(self, "client", check_address(self.client, "receipt client"))
        for name in ("session_id", "model_id", "input_digest", "output_commitment"):
            check_bytes32(getattr(self, name), f"receipt {name}")
        check_uint(self.layer_start, 16, "receipt layer_start")
        check_uint(self.layer_end, 16, "receipt layer_end")
        check_uint(self.step_start, 32, "receipt step_start")
        check_uint(self.step_end, 32, "receipt step_end")
        check_uint(self.tokens, 32, "receipt tokens")
        check_uint(self.price_per_token, 256, "receipt price_per_token")

    @classmethod
    def from_eip712(cls, message: Mapping[str, Any]) -> Receipt:
        """A Receipt from a mapping keyed by the EIP-712 field names (``sessionId``, ``layerStart``, ...)."""
        return cls(*(message[name] for name in EIP712_FIELD_NAMES))

    def to_eip712(self) -> dict[str, Any]:
        """The receipt keyed by its EIP-712 field names (for eth_account / JSON)."""
        return dict(zip(EIP712_FIELD_NAMES, self.as_tuple(), strict=True))

    def as_tuple(self) -> ReceiptTuple:
        """The receipt as the court's ``Receipt`` struct argument (field order of the type string)."""
        return (
            self.node,
            self.session_id,
            self.model_id,
            self.layer_start,
            self.layer_end,
            self.step_start,
            self.step_end,
            self.input_digest,
            self.output_commitment,
            self.tokens,
            self.price_per_token,
            self.client,
        )


def receipt_digest(receipt: Receipt, domain: Domain) -> bytes:
    """The 32-byte EIP-712 digest the node signs; equals ``SpotCheckCourt.receiptDigestOf(receipt)``,
    which is also the id of a challenge against it."""
    return typed_data_digest(domain, struct_hash(RECEIPT_TYPE, RECEIPT_ABI_TYPES, receipt.as_tuple()))


def sign_receipt(receipt: Receipt, private_key: PrivateKey, domain: Domain) -> bytes:
    """Signs ``receipt`` for ``domain`` (the court); returns a 65-byte low-s signature."""
    return sign_digest(receipt_digest(receipt, domain), private_key)


def recover_receipt_signer(receipt: Receipt, signature: bytes, domain: Domain) -> str:
    """The checksummed address that signed ``receipt``; SignatureError for one the court refuses."""
    return recover_digest(receipt_digest(receipt, domain), signature)


def verify_receipt(receipt: Receipt, signature: bytes, domain: Domain) -> bool:
    """True when ``signature`` is the receipt's node's (False, never raises, for a bad signature)."""
    try:
        return recover_receipt_signer(receipt, signature, domain) == receipt.node
    except SignatureError:
        return False
