"""EIP-712 receipts: digests equal eth_account's, signatures follow the court's rules, and a receipt
signed for one court never verifies for another or as a voucher."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.eip712 import SECP256K1_N, Domain, SignatureError, TypedDataError
from protocol.receipts import (
    RECEIPT_TYPE,
    Receipt,
    receipt_digest,
    recover_receipt_signer,
    sign_receipt,
    verify_receipt,
)

NODE_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
NODE = Account.from_key(NODE_KEY).address
CLIENT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
COURT = Domain(31337, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")

FIELDS = [
    ("node", "address"),
    ("sessionId", "bytes32"),
    ("modelId", "bytes32"),
    ("layerStart", "uint16"),
    ("layerEnd", "uint16"),
    ("stepStart", "uint32"),
    ("stepEnd", "uint32"),
    ("inputDigest", "bytes32"),
    ("outputCommitment", "bytes32"),
    ("tokens", "uint32"),
    ("pricePerToken", "uint256"),
    ("client", "address"),
]


def _receipt(**overrides: object) -> Receipt:
    fields: dict[str, object] = {
        "node": NODE,
        "session_id": b"\x01" * 32,
        "model_id": b"\x02" * 32,
        "layer_start": 0,
        "layer_end": 4,
        "step_start": 0,
        "step_end": 32,
        "input_digest": b"\x03" * 32,
        "output_commitment": b"\x04" * 32,
        "tokens": 32,
        "price_per_token": 1000,
        "client": CLIENT,
    }
    fields.update(overrides)
    return Receipt(**fields)  # type: ignore[arg-type]


def _eth_account_digest(r: Receipt, domain: Domain) -> bytes:
    values = r.as_tuple()
    message = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Receipt": [{"name": n, "type": t} for n, t in FIELDS],
            },
            "primaryType": "Receipt",
            "domain": {
                "name": "Layermarket",
                "version": "1",
                "chainId": domain.chain_id,
                "verifyingContract": domain.verifying_contract,
            },
            "message": {n: v for (n, _), v in zip(FIELDS, values, strict=True)},
        }
    )
    return bytes(_hash_eip191_message(message))


def test_receipt_type_string_lists_the_fields_in_order() -> None:
    assert "Receipt(" + ",".join(f"{t} {n}" for n, t in FIELDS) + ")" == RECEIPT_TYPE


def test_receipt_digest_equals_eth_account_typed_data_hash() -> None:
    r = _receipt()
    assert receipt_digest(r, COURT) == _eth_account_digest(r, COURT)


def test_signed_receipt_recovers_the_node() -> None:
    r = _receipt()
    sig = sign_receipt(r, NODE_KEY, COURT)
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert recover_receipt_signer(r, sig, COURT) == NODE
    assert verify_receipt(r, sig, COURT)


def test_receipt_signed_by_another_key_does_not_verify() -> None:
    r = _receipt()
    other_key = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
    assert not verify_receipt(r, sign_receipt(r, other_key, COURT), COURT)


def test_receipt_for_another_court_or_chain_does_not_verify() -> None:
    r = _receipt()
    sig = sign_receipt(r, NODE_KEY, COURT)
    assert not verify_receipt(r, sig, Domain(COURT.chain_id, "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9"))
    assert not verify_receipt(r, sig, Domain(10, COURT.verifying_contract))


def test_receipt_with_high_s_or_wrong_length_signature_is_rejected() -> None:
    r = _receipt()
    sig = sign_receipt(r, NODE_KEY, COURT)
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    for bad in (twin, sig[:64], sig + b"\x00"):
        with pytest.raises(SignatureError):
            recover_receipt_signer(r, bad, COURT)
        assert not verify_receipt(r, bad, COURT)


@pytest.mark.parametrize(
    "change",
    [
        {"session_id": b"\x09" * 32},
        {"model_id": b"\x09" * 32},
        {"layer_start": 1},
        {"layer_end": 5},
        {"step_start": 1},
        {"step_end": 33},
        {"input_digest": b"\x09" * 32},
        {"output_commitment": b"\x09" * 32},
        {"tokens": 31},
        {"price_per_token": 1001},
        {"client": NODE},
    ],
)
def test_a_signature_covers_every_receipt_field(change: dict[str, object]) -> None:
    r = _receipt()
    sig = sign_receipt(r, NODE_KEY, COURT)
    tampered = dataclasses.replace(r, **change)  # type: ignore[arg-type]
    assert not verify_receipt(tampered, sig, COURT)


@pytest.mark.parametrize(
    "change",
    [
        {"layer_start": 1 << 16},
        {"step_end": 1 << 32},
        {"tokens": -1},
        {"price_per_token": 1 << 256},
        {"session_id": b"short"},
        {"node": "0xnothex"},
    ],
)
def test_receipt_fields_out_of_their_solidity_range_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(TypedDataError):
        _receipt(**change)


@settings(max_examples=30, deadline=None)
@given(
    layers=st.tuples(st.integers(0, 65535), st.integers(0, 65535)),
    steps=st.tuples(st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1)),
    tokens=st.integers(0, (1 << 32) - 1),
    price=st.integers(0, (1 << 256) - 1),
    digest=st.binary(min_size=32, max_size=32),
)
def test_any_receipt_signs_recovers_and_hashes_like_eth_account(
    layers: tuple[int, int], steps: tuple[int, int], tokens: int, price: int, digest: bytes
) -> None:
    r = _receipt(
        layer_start=layers[0],
        layer_end=layers[1],
        step_start=steps[0],
        step_end=steps[1],
        tokens=tokens,
        price_per_token=price,
        output_commitment=digest,
    )
    assert receipt_digest(r, COURT) == _eth_account_digest(r, COURT)
    assert recover_receipt_signer(r, sign_receipt(r, NODE_KEY, COURT), COURT) == NODE


def test_receipt_converts_to_and_from_its_eip712_field_names() -> None:
    r = _receipt()
    message = r.to_eip712()
    assert list(message) == [n for n, _ in FIELDS]
    assert Receipt.from_eip712(message) == r
