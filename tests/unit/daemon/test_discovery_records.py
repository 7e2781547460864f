"""DHT node records: only operator-bound records for their own key are stored; the newest wins."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from node.daemon.discovery import NodeRecordValidator, model_key, record_key
from protocol.identity import bind_peer

PEER = "12D3KooWLjUwn3zALpsw5CesXQmsFLhyamX7ckswu4zJinJeooNL"


def _record(timestamp: int, peer: str = PEER, bound_peer: str = PEER) -> bytes:
    binding = bind_peer(bound_peer, bytes(Account.create().key))
    return json.dumps({"peer_id": peer, "timestamp": timestamp, "binding": binding.to_json()}).encode()


def test_a_bound_record_under_its_own_key_is_accepted_and_the_newest_selected() -> None:
    validator = NodeRecordValidator()
    old, new = _record(1), _record(2)
    validator.validate(record_key(PEER), old)
    assert validator.select(record_key(PEER), [old, new]) == 1


@pytest.mark.parametrize(
    "value",
    [
        _record(1, bound_peer="12D3KooWOther"),  # binding for another peer
        b"not json",
        json.dumps([1, 2]).encode(),
        b"x" * 10_000,
        json.dumps({"peer_id": PEER, "timestamp": 1}).encode(),  # no binding
    ],
)
def test_forged_or_malformed_records_are_rejected(value: bytes) -> None:
    with pytest.raises(ValueError):
        NodeRecordValidator().validate(record_key(PEER), value)


def test_a_record_under_another_peers_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="key"):
        NodeRecordValidator().validate(record_key("12D3KooWSomeoneElse"), _record(1))


def test_model_keys_are_sha256_multihashes() -> None:
    key = model_key(b"\1" * 32)
    assert key.startswith("1220") and len(key) == 68
