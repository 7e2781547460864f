"""EIP-712 domain, hashing, signing and verification: the one place Layermarket signs typed data.

Vouchers (``protocol.vouchers``) and receipts (``protocol.receipts``) are built on these helpers, and the
contracts verify the same bytes: domain ``name="Layermarket"``, ``version="1"``, the chain id and the
verifying contract (PaymentEscrow for vouchers, SpotCheckCourt for receipts). So a signature made for one
chain or one contract never verifies on another.

Signatures are 65 bytes ``r || s || v`` with ``v`` in {27, 28} and a *low* ``s`` (at most n/2, EIP-2), exactly
what OpenZeppelin's ``ECDSA.tryRecover`` accepts; anything else is refused here as it is on-chain::

    >>> from protocol.eip712 import Domain, sign_digest, recover_digest
    >>> domain = Domain(chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")
    >>> sig = sign_digest(b"\\x11" * 32, "0x" + "01" * 32)
    >>> len(sig), recover_digest(b"\\x11" * 32, sig)
    (65, '0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1')

Errors::

    PermanentError
    └── SignatureError        not 65 bytes, high s, bad v, or no key recovers it
    └── TypedDataError        a field out of its Solidity type's range (also a ValueError)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from eth_abi.abi import encode
from eth_keys.datatypes import PrivateKey as _EthPrivateKey
from eth_keys.datatypes import Signature as _EthSignature
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError

from protocol.errors import PermanentError

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "SECP256K1_HALF_N",
    "SECP256K1_N",
    "Domain",
    "PrivateKey",
    "SignatureError",
    "TypedDataError",
    "check_address",
    "check_bytes32",
    "check_uint",
    "recover_digest",
    "sign_digest",
    "struct_hash",
    "typed_data_digest",
]

DOMAIN_NAME = "Layermarket"
DOMAIN_VERSION = "1"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2
_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"

PrivateKey = bytes | str
"""A secp256k1 private key: 32 raw bytes or a 0x-prefixed hex string. Never logged."""


class SignatureError(PermanentError):
    """A signature that the contracts would refuse: wrong length, high s, bad v, or unrecoverable."""


class TypedDataError(PermanentError, ValueError):
    """A typed-data field that does not fit its Solidity type."""


def check_address(value: str, what: str) -> str:
    """Returns ``value`` checksummed; raises TypedDataError unless it is a 0x + 40 hex address."""
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise TypedDataError(f"{what} must be a 0x-prefixed 20-byte hex address")
    try:
        return to_checksum_address(value)
    except ValueError as exc:
        raise TypedDataError(f"{what} must be a 0x-prefixed 20-byte hex address") from exc


def check_bytes32(value: bytes, what: str) -> bytes:
    """Returns ``value``; raises TypedDataError unless it is exactly 32 bytes."""
    if not isinstance(value, bytes) or len(value) != 32:
        raise TypedDataError(f"{what} must be 32 bytes")
    return value


def check_uint(value: int, bits: int, what: str) -> int:
    """Returns ``value``; raises TypedDataError unless ``0 <= value < 2**bits`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise TypedDataError(f"{what} must be an integer in [0, 2**{bits})")
    return value


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain of one verifying contract on one chain.

    >>> Domain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3").separator.hex()[:8]
    '3ac68b54'

    ``separator`` equals the contract's ``domainSeparator()`` view (tested against a real anvil).
    """

    chain_id: int
    verifying_contract: str
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    def __post_init__(self) -> None:
        check_uint(self.chain_id, 256, "chain_id")
        contract = check_address(self.verifying_contract, "verifying_contract")
        object.__setattr__(self, "verifying_contract", contract)

    @cached_property
    def separator(self) -> bytes:
        """keccak256 of the encoded domain: what ``_domainSeparatorV4()`` returns on-chain."""
        return keccak(
            encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    keccak(text=_DOMAIN_TYPE),
                    keccak(text=self.name),
                    keccak(text=self.version),
                    self.chain_id,
                    self.verifying_contract,
                ],
            )
        )


def struct_hash(type_string: str, abi_types: Sequence[str], values: Sequence[object]) -> bytes:
    """``hashStruct`` of a struct whose fields are all static types (so EIP-712 encoding is ``abi.encode``).

    ``type_string`` is the EIP-712 type, e.g. ``"Voucher(address client,...)"``; ``abi_types`` and ``values``
    list the fields in that order.
    """
    return keccak(encode(["bytes32", *abi_types], [keccak(text=type_string), *values]))


def typed_data_digest(domain: Domain, struct: bytes) -> bytes:
    """``keccak256(0x1901 || domainSeparator || hashStruct)``: the 32 bytes that are signed."""
    return keccak(b"\x19\x01" + domain.separator + struct)


def _private_key(private_key: PrivateKey) -> _EthPrivateKey:
    raw = bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else private_key
    if len(raw) != 32:
        raise TypedDataError("a private key is 32 bytes")
    return _EthPrivateKey(raw)


def sign_digest(digest: bytes, private_key: PrivateKey) -> bytes:
    """Signs a 32-byte digest; returns 65 bytes ``r || s || v`` with low s and v in {27, 28}."""
    check_bytes32(digest, "digest")
    sig = _private_key(private_key).sign_msg_hash(digest)
    r, s, v = int(sig.r), int(sig.s), int(sig.v)
    if s > SECP256K1_HALF_N:  # eth_keys already returns low s; kept so the rule is visible here
        s, v = SECP256K1_N - s, v ^ 1
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + v])


def recover_digest(digest: bytes, signature: bytes) -> str:
    """Returns the checksummed address that signed ``digest``, under the contracts' rules.

    Raises SignatureError for a signature that is not 65 bytes, has s > n/2 (the malleable twin), a v
    other than 27/28, or that recovers no key.
    """
    check_bytes32(digest, "digest")
    if not isinstance(signature, bytes) or len(signature) != 65:
        raise SignatureError("a signature is 65 bytes (r || s || v)")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if s > SECP256K1_HALF_N:
        raise SignatureError("signature s is in the upper half of the curve order (malleable)")
    if v not in (27, 28):
        raise SignatureError("signature v must be 27 or 28")
    if not (0 < r < SECP256K1_N and s > 0):
        raise SignatureError("signature r or s out of range")
    try:
        public_key = _EthSignature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
    except (BadSignature, ValidationError) as exc:
        raise SignatureError("signature recovers no public key") from exc
    return to_checksum_address(public_key.to_canonical_address())
