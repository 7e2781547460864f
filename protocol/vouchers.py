"""EIP-712 cumulative payment vouchers, byte for byte as PaymentEscrow verifies them.

A voucher promises ``payee`` the *total* ``cumulative_amount`` (token units) on one channel
``(client, payee, channel_id)``; the client signs a new one every few tokens, the payee redeems only the
newest, and the escrow pays the delta over what the channel already paid. Type string::

    Voucher(address client,address payee,bytes32 channelId,uint256 cumulativeAmount,uint64 expiry)

Domain: ``Domain(chain_id, verifying_contract=<PaymentEscrow address>)``.

    >>> from protocol.eip712 import Domain
    >>> from protocol.vouchers import Voucher, sign_voucher, recover_voucher_signer
    >>> domain = Domain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
    >>> v = Voucher(client="0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1",
    ...             payee="0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    ...             channel_id=b"\\x01" * 32, cumulative_amount=10**18, expiry=1_900_000_000)
    >>> sig = sign_voucher(v, "0x" + "01" * 32, domain)
    >>> recover_voucher_signer(v, sig, domain) == v.client
    True
"""

from __future__ import annotations

from dataclasses import dataclass

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
    "VOUCHER_ABI_TYPES",
    "VOUCHER_TYPE",
    "Voucher",
    "recover_voucher_signer",
    "sign_voucher",
    "verify_voucher",
    "voucher_digest",
]

VOUCHER_TYPE = (
    "Voucher(address client,address payee,bytes32 channelId,uint256 cumulativeAmount,uint64 expiry)"
)
VOUCHER_ABI_TYPES = ("address", "address", "bytes32", "uint256", "uint64")


@dataclass(frozen=True)
class Voucher:
    """A cumulative payment promise. Fields are validated against their Solidity types on creation."""

    client: str  # payer's address (checksummed on creation)
    payee: str  # paid node operator's address
    channel_id: bytes  # 32 bytes chosen by the client: one channel per (payee, period) or job stream
    cumulative_amount: int  # total ever owed on this channel (token units), not the increment
    expiry: int  # unix seconds; the escrow refuses it after, and refuses expiries > now + maxVoucherValidity

    def __post_init__(self) -> None:
        object.__setattr__(self, "client", check_address(self.client, "voucher client"))
        object.__setattr__(self, "payee", check_address(self.payee, "voucher payee"))
        check_bytes32(self.channel_id, "voucher channel_id")
        check_uint(self.cumulative_amount, 256, "voucher cumulative_amount")
        check_uint(self.expiry, 64, "voucher expiry")

    def as_tuple(self) -> tuple[str, str, bytes, int, int]:
        """The voucher as the contract's ``Voucher`` struct argument (field order of the type string)."""
        return (self.client, self.payee, self.channel_id, self.cumulative_amount, self.expiry)


def voucher_digest(voucher: Voucher, domain: Domain) -> bytes:
    """The 32-byte EIP-712 digest the client signs; equals ``PaymentEscrow.voucherDigest(voucher)``."""
    return typed_data_digest(domain, struct_hash(VOUCHER_TYPE, VOUCHER_ABI_TYPES, voucher.as_tuple()))


def sign_voucher(voucher: Voucher, private_key: PrivateKey, domain: Domain) -> bytes:
    """Signs ``voucher`` for ``domain`` (the escrow); returns a 65-byte low-s signature."""
    return sign_digest(voucher_digest(voucher, domain), private_key)


def recover_voucher_signer(voucher: Voucher, signature: bytes, domain: Domain) -> str:
    """The checksummed address that signed ``voucher``; SignatureError for a signature the escrow refuses."""
    return recover_digest(voucher_digest(voucher, domain), signature)


def verify_voucher(voucher: Voucher, signature: bytes, domain: Domain) -> bool:
    """True when ``signature`` is the voucher's client's, under the escrow's rules (False, never raises,
    for a malformed or foreign signature)."""
    try:
        return recover_voucher_signer(voucher, signature, domain) == voucher.client
    except SignatureError:
        return False
