"""The node's two keys, encrypted at rest under one passphrase.

- ``operator.json``: the operator's Ethereum key as an eth-account (Web3 Secret Storage v3) keystore:
  scrypt + AES-128-CTR. It bonds stake, signs receipts and heartbeats, and signs the identity binding.
- ``libp2p.key``: the Ed25519 seed of the libp2p identity, AES-256-GCM under a key derived from the same
  passphrase with scrypt and its own salt. The peer id is stored beside it in clear (it is public).
- ``identity.json``: the binding of the peer id to the operator (``protocol.identity``), public.

::

    keys = NodeKeys.create(home, passphrase)       # market-node init
    keys = NodeKeys.load(home, passphrase)         # market-node serve
    keys.operator_address, keys.peer_id

Neither the passphrase nor any key is ever logged or printed. A wrong passphrase raises
``KeystoreError`` (permanent).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_account import Account
from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from protocol.errors import ConfigurationError, PermanentError
from protocol.identity import PeerBinding, bind_peer

OPERATOR_FILE = "operator.json"
LIBP2P_FILE = "libp2p.key"
IDENTITY_FILE = "identity.json"
SCRYPT_N = 1 << 17  # ~0.3 s on a laptop core; devnets and tests may pass a smaller one


class KeystoreError(PermanentError):
    """The keys cannot be read: missing, corrupt, or the passphrase is wrong."""


def _derive(passphrase: str, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(passphrase.encode())


def _write_private(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(data)


@dataclass(frozen=True)
class NodeKeys:
    operator_key: bytes  # 32-byte secp256k1 private key
    operator_address: str
    libp2p_key_pair: KeyPair
    peer_id: str
    binding: PeerBinding

    def __repr__(self) -> str:  # never show key material
        return f"NodeKeys(operator={self.operator_address}, peer_id={self.peer_id})"

    @classmethod
    def create(
        cls, home: Path, passphrase: str, *, scrypt_n: int = SCRYPT_N, operator_key: bytes | None = None
    ) -> NodeKeys:
        """Generate (or import ``operator_key``) and write both keys; refuses to overwrite existing keys."""
        if not passphrase:
            raise ConfigurationError("an empty passphrase cannot protect the node's keys")
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        if (home / OPERATOR_FILE).exists() or (home / LIBP2P_FILE).exists():
            raise ConfigurationError(f"{home} already holds node keys; remove them first to make new ones")
        account = Account.from_key(operator_key) if operator_key else Account.create()
        keystore = Account.encrypt(account.key, passphrase, kdf="scrypt", iterations=scrypt_n)
        seed = secrets.token_bytes(32)
        key_pair = _ed25519_key_pair(seed)
        peer_id = ID.from_pubkey(key_pair.public_key).to_base58()
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        sealed = AESGCM(_derive(passphrase, salt, scrypt_n)).encrypt(nonce, seed, peer_id.encode())
        libp2p_doc: dict[str, Any] = {
            "version": 1,
            "type": "ed25519",
            "peer_id": peer_id,
            "kdf": {"name": "scrypt", "n": scrypt_n, "r": 8, "p": 1, "salt": salt.hex()},
            "cipher": {"name": "aes-256-gcm", "nonce": nonce.hex(), "ciphertext": sealed.hex()},
        }
        binding = bind_peer(peer_id, bytes(account.key))
        _write_private(home / OPERATOR_FILE, json.dumps(keystore))
        _write_private(home / LIBP2P_FILE, json.dumps(libp2p_doc))
        (home / IDENTITY_FILE).write_text(json.dumps(binding.to_json()), encoding="utf-8")
        return cls(bytes(account.key), account.address, key_pair, peer_id, binding)

    @classmethod
    def load(cls, home: Path, passphrase: str) -> NodeKeys:
        """Decrypt both keys (``KeystoreError`` when missing or the passphrase is wrong)."""
        try:
            keystore = json.loads((home / OPERATOR_FILE).read_text(encoding="utf-8"))
            libp2p_doc = json.loads((home / LIBP2P_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeystoreError(f"no node keys in {home}: run `market-node init` first") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise KeystoreError(f"node keys in {home} are corrupt: {exc}") from None
        try:
            operator_key = bytes(Account.decrypt(keystore, passphrase))
        except ValueError:
            raise KeystoreError("wrong passphrase for the operator keystore") from None
        try:
            kdf, cipher = libp2p_doc["kdf"], libp2p_doc["cipher"]
            peer_id = str(libp2p_doc["peer_id"])
            key = _derive(passphrase, bytes.fromhex(kdf["salt"]), int(kdf["n"]))
            seed = AESGCM(key).decrypt(
                bytes.fromhex(cipher["nonce"]), bytes.fromhex(cipher["ciphertext"]), peer_id.encode()
            )
        except Exception:  # InvalidTag, KeyError, ValueError: all mean the file cannot be opened
            raise KeystoreError("cannot decrypt the libp2p key: wrong passphrase or a corrupt file") from None
        key_pair = _ed25519_key_pair(seed)
        if ID.from_pubkey(key_pair.public_key).to_base58() != peer_id:
            raise KeystoreError("the libp2p key does not match its recorded peer id")
        account = Account.from_key(operator_key)
        return cls(operator_key, account.address, key_pair, peer_id, bind_peer(peer_id, operator_key))


def _ed25519_key_pair(seed: bytes) -> KeyPair:
    private = Ed25519PrivateKey.from_bytes(seed)
    return KeyPair(private, private.get_public_key())


__all__ = ["IDENTITY_FILE", "KeystoreError", "NodeKeys"]
