"""EIP-712 vouchers: digests equal an independent implementation (eth_account), signatures follow the
escrow's rules (65 bytes, low s, v 27/28), and a voucher for one domain never verifies in another."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.eip712 import SECP256K1_N, Domain, SignatureError, TypedDataError
from protocol.vouchers import Voucher, recover_voucher_signer, sign_voucher, verify_voucher, voucher_digest

CLIENT_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
CLIENT = Account.from_key(CLIENT_KEY).address
PAYEE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
ESCROW = Domain(31337, "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9")


def _voucher(amount: int = 10**18, expiry: int = 1_900_000_000, channel: bytes = b"\x07" * 32) -> Voucher:
    return Voucher(client=CLIENT, payee=PAYEE, channel_id=channel, cumulative_amount=amount, expiry=expiry)


def _eth_account_digest(v: Voucher, domain: Domain) -> bytes:
    message = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Voucher": [
                    {"name": "client", "type": "address"},
                    {"name": "payee", "type": "address"},
                    {"name": "channelId", "type": "bytes32"},
                    {"name": "cumulativeAmount", "type": "uint256"},
                    {"name": "expiry", "type": "uint64"},
                ],
            },
            "primaryType": "Voucher",
            "domain": {
                "name": "Layermarket",
                "version": "1",
                "chainId": domain.chain_id,
                "verifyingContract": domain.verifying_contract,
            },
            "message": {
                "client": v.client,
                "payee": v.payee,
                "channelId": v.channel_id,
                "cumulativeAmount": v.cumulative_amount,
                "expiry": v.expiry,
            },
        }
    )
    return bytes(_hash_eip191_message(message))


def test_voucher_digest_equals_eth_account_typed_data_hash() -> None:
    v = _voucher()
    assert voucher_digest(v, ESCROW) == _eth_account_digest(v, ESCROW)


def test_signed_voucher_recovers_client_with_65_byte_low_s_signature() -> None:
    v = _voucher()
    sig = sign_voucher(v, CLIENT_KEY, ESCROW)
    assert len(sig) == 65
    assert int.from_bytes(sig[32:64], "big") <= SECP256K1_N // 2
    assert sig[64] in (27, 28)
    assert recover_voucher_signer(v, sig, ESCROW) == CLIENT
    assert verify_voucher(v, sig, ESCROW)


def test_voucher_signature_equals_eth_account_signature() -> None:
    v = _voucher()
    signed = Account.unsafe_sign_hash(voucher_digest(v, ESCROW), CLIENT_KEY)
    assert sign_voucher(v, CLIENT_KEY, ESCROW) == bytes(signed.signature)


def test_voucher_replayed_on_other_chain_is_rejected() -> None:
    v = _voucher()
    sig = sign_voucher(v, CLIENT_KEY, ESCROW)
    other_chain = Domain(1, ESCROW.verifying_contract)
    assert recover_voucher_signer(v, sig, other_chain) != CLIENT
    assert not verify_voucher(v, sig, other_chain)


def test_voucher_replayed_on_other_contract_is_rejected() -> None:
    v = _voucher()
    sig = sign_voucher(v, CLIENT_KEY, ESCROW)
    other_escrow = Domain(ESCROW.chain_id, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
    assert not verify_voucher(v, sig, other_escrow)


def test_high_s_twin_of_a_voucher_signature_is_rejected() -> None:
    v = _voucher()
    sig = sign_voucher(v, CLIENT_KEY, ESCROW)
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])  # 27 <-> 28
    with pytest.raises(SignatureError, match="upper half"):
        recover_voucher_signer(v, twin, ESCROW)
    assert not verify_voucher(v, twin, ESCROW)


@pytest.mark.parametrize("length", [0, 64, 66, 130])
def test_voucher_signature_not_65_bytes_is_rejected(length: int) -> None:
    v = _voucher()
    sig = (sign_voucher(v, CLIENT_KEY, ESCROW) * 3)[:length]
    with pytest.raises(SignatureError, match="65 bytes"):
        recover_voucher_signer(v, sig, ESCROW)


@pytest.mark.parametrize("v_byte", [0, 1, 29])
def test_voucher_signature_with_bad_v_is_rejected(v_byte: int) -> None:
    v = _voucher()
    sig = sign_voucher(v, CLIENT_KEY, ESCROW)
    with pytest.raises(SignatureError):
        recover_voucher_signer(v, sig[:64] + bytes([v_byte]), ESCROW)


def test_voucher_signature_with_zero_r_is_rejected() -> None:
    v = _voucher()
    sig = sign_voucher(v, CLIENT_KEY, ESCROW)
    with pytest.raises(SignatureError):
        recover_voucher_signer(v, b"\x00" * 32 + sig[32:], ESCROW)


def test_changing_any_voucher_field_changes_the_digest() -> None:
    base = _voucher()
    variants = [
        _voucher(amount=base.cumulative_amount + 1),
        _voucher(expiry=base.expiry + 1),
        _voucher(channel=b"\x08" * 32),
        Voucher(PAYEE, PAYEE, base.channel_id, base.cumulative_amount, base.expiry),
    ]
    digests = {voucher_digest(x, ESCROW) for x in [base, *variants]}
    assert len(digests) == 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"client": "0x1234"},
        {"payee": "not an address"},
        {"channel_id": b"\x00" * 31},
        {"cumulative_amount": -1},
        {"cumulative_amount": 1 << 256},
        {"expiry": 1 << 64},
        {"expiry": True},
    ],
)
def test_voucher_fields_out_of_their_solidity_range_are_refused(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "client": CLIENT,
        "payee": PAYEE,
        "channel_id": b"\x01" * 32,
        "cumulative_amount": 1,
        "expiry": 1,
    }
    fields.update(kwargs)
    with pytest.raises(TypedDataError):
        Voucher(**fields)  # type: ignore[arg-type]


def test_voucher_addresses_are_checksummed() -> None:
    v = Voucher(CLIENT.lower(), PAYEE.lower(), b"\x01" * 32, 1, 1)
    assert v.client == CLIENT
    assert v.payee == PAYEE


def test_a_private_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(TypedDataError):
        sign_voucher(_voucher(), b"\x01" * 31, ESCROW)


@settings(max_examples=40, deadline=None)
@given(
    amount=st.integers(min_value=0, max_value=(1 << 256) - 1),
    expiry=st.integers(min_value=0, max_value=(1 << 64) - 1),
    channel=st.binary(min_size=32, max_size=32),
    chain_id=st.integers(min_value=1, max_value=(1 << 64)),
)
def test_any_voucher_signs_recovers_and_hashes_like_eth_account(
    amount: int, expiry: int, channel: bytes, chain_id: int
) -> None:
    v = _voucher(amount=amount, expiry=expiry, channel=channel)
    domain = Domain(chain_id, ESCROW.verifying_contract)
    assert voucher_digest(v, domain) == _eth_account_digest(v, domain)
    sig = sign_voucher(v, CLIENT_KEY, domain)
    assert int.from_bytes(sig[32:64], "big") <= SECP256K1_N // 2
    assert recover_voucher_signer(v, sig, domain) == CLIENT
