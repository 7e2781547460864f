"""Heartbeat signing: the operator's key signs canonical bytes; anything else is rejected."""

from __future__ import annotations

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol.heartbeat import (
    Heartbeat,
    HeartbeatError,
    InvalidHeartbeatSignature,
    SignedHeartbeat,
    sign_heartbeat,
    verify_heartbeat,
)

KEY = "0x" + "11" * 32
OTHER_KEY = "0x" + "22" * 32
OPERATOR = Account.from_key(KEY).address


def _heartbeat(**overrides: object) -> Heartbeat:
    fields: dict[str, object] = {
        "peer_id": "12D3KooWQmPeerNodeA",
        "operator": OPERATOR,
        "model_id": "0x" + "ab" * 32,
        "layer_start": 0,
        "layer_end": 16,
        "multiaddrs": ["/ip4/127.0.0.1/tcp/4001"],
        "price_per_token": 1_000,
        "step_ms": 12.5,
        "free_sessions": 4,
        "kv_free_bytes": 2**30,
        "timestamp": 1_790_000_000,
        "version": "0.1.0",
    }
    fields.update(overrides)
    return Heartbeat.model_validate(fields)


def test_signed_heartbeat_verifies_to_its_operator() -> None:
    signed = sign_heartbeat(_heartbeat(), KEY)
    assert verify_heartbeat(signed) == OPERATOR


def test_signed_heartbeat_survives_a_json_round_trip() -> None:
    signed = sign_heartbeat(_heartbeat(price_per_token=2**200, step_ms=0.1 + 0.2), KEY)
    again = SignedHeartbeat.model_validate_json(signed.model_dump_json())
    assert verify_heartbeat(again) == OPERATOR


def test_heartbeat_signed_by_another_key_is_rejected() -> None:
    other = Account.from_key(OTHER_KEY).address
    forged = sign_heartbeat(_heartbeat(operator=other), OTHER_KEY)
    tampered = SignedHeartbeat(heartbeat=_heartbeat(), signature=forged.signature)
    with pytest.raises(InvalidHeartbeatSignature, match="signed by"):
        verify_heartbeat(tampered)


def test_signing_for_another_operator_is_refused() -> None:
    with pytest.raises(HeartbeatError, match="names operator"):
        sign_heartbeat(_heartbeat(), OTHER_KEY)


def test_any_changed_field_breaks_the_signature() -> None:
    signed = sign_heartbeat(_heartbeat(), KEY)
    for change in ({"price_per_token": 999}, {"layer_end": 17}, {"multiaddrs": ["/ip4/1.2.3.4/tcp/1"]}):
        moved = SignedHeartbeat(heartbeat=_heartbeat(**change), signature=signed.signature)
        with pytest.raises(InvalidHeartbeatSignature):
            verify_heartbeat(moved)


def test_garbage_signature_is_rejected_as_invalid() -> None:
    bad = SignedHeartbeat(heartbeat=_heartbeat(), signature="0x" + "00" * 65)
    with pytest.raises(InvalidHeartbeatSignature):
        verify_heartbeat(bad)


@pytest.mark.parametrize(
    "change",
    [
        {"layer_end": 0},
        {"layer_start": 5, "layer_end": 5},
        {"model_id": "0x1234"},
        {"operator": "0xabc"},
        {"multiaddrs": []},
        {"multiaddrs": ["not-a-multiaddr"]},
        {"price_per_token": -1},
        {"step_ms": float("nan")},
        {"peer_id": "0OIl"},
        {"unknown_field": 1},
    ],
)
def test_malformed_heartbeat_is_rejected(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _heartbeat(**change)


def test_wrong_checksum_address_is_rejected() -> None:
    bad = OPERATOR[:2] + OPERATOR[2:].swapcase()
    if bad[2:] in (bad[2:].lower(), bad[2:].upper()):
        pytest.skip("address has no letters to mis-case")
    with pytest.raises(ValidationError, match="checksum"):
        _heartbeat(operator=bad)


@settings(max_examples=25, deadline=None)
@given(
    start=st.integers(0, 1000),
    width=st.integers(1, 1000),
    price=st.integers(0, 2**256 - 1),
    step=st.floats(0, 600_000, allow_nan=False, allow_infinity=False),
)
def test_canonical_bytes_round_trip_through_json(start: int, width: int, price: int, step: float) -> None:
    hb = _heartbeat(layer_start=start, layer_end=start + width, price_per_token=price, step_ms=step)
    again = Heartbeat.model_validate_json(hb.model_dump_json())
    assert again.canonical_bytes() == hb.canonical_bytes()
