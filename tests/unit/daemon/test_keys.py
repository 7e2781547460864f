"""Node keys: encrypted at rest, one passphrase, the peer id bound to the operator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.keys import IDENTITY_FILE, KeystoreError, NodeKeys
from protocol.errors import ConfigurationError
from protocol.identity import InvalidPeerBinding, PeerBinding, verify_binding

PASSPHRASE = "correct horse battery staple"


def test_keys_round_trip_and_nothing_secret_is_stored_in_clear(tmp_path: Path) -> None:
    made = NodeKeys.create(tmp_path, PASSPHRASE, scrypt_n=1 << 10)
    loaded = NodeKeys.load(tmp_path, PASSPHRASE)
    assert (loaded.operator_address, loaded.peer_id) == (made.operator_address, made.peer_id)
    assert loaded.operator_key == made.operator_key
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert made.operator_key.hex().encode() not in stored
    assert made.libp2p_key_pair.private_key.to_bytes().hex().encode() not in stored
    assert PASSPHRASE.encode() not in stored
    assert (tmp_path / "operator.json").stat().st_mode & 0o077 == 0
    assert made.operator_key.hex() not in repr(made)


def test_wrong_passphrase_is_a_keystore_error(tmp_path: Path) -> None:
    NodeKeys.create(tmp_path, PASSPHRASE, scrypt_n=1 << 10)
    with pytest.raises(KeystoreError, match="passphrase"):
        NodeKeys.load(tmp_path, "wrong")


def test_init_refuses_to_overwrite_keys_and_empty_passphrases(tmp_path: Path) -> None:
    NodeKeys.create(tmp_path, PASSPHRASE, scrypt_n=1 << 10)
    with pytest.raises(ConfigurationError, match="already holds"):
        NodeKeys.create(tmp_path, PASSPHRASE, scrypt_n=1 << 10)
    with pytest.raises(ConfigurationError, match="empty"):
        NodeKeys.create(tmp_path / "other", "", scrypt_n=1 << 10)


def test_missing_keys_say_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="market-node init"):
        NodeKeys.load(tmp_path, PASSPHRASE)


def test_the_binding_written_at_init_verifies_and_a_forged_one_does_not(tmp_path: Path) -> None:
    keys = NodeKeys.create(tmp_path, PASSPHRASE, scrypt_n=1 << 10)
    binding = PeerBinding.from_json(json.loads((tmp_path / IDENTITY_FILE).read_text()))
    assert verify_binding(binding) == keys.operator_address
    forged = PeerBinding("12D3KooWOtherPeer", binding.operator, binding.signature)
    with pytest.raises(InvalidPeerBinding):
        verify_binding(forged)
