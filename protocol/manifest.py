"""Model manifests: what exactly a model directory contains, and the ``model_id`` derived from it.

The ``model_id`` is what nodes register on-chain, what the market routes by and what receipts name. It is
the keccak-256 of a canonical JSON document listing every weight and config file with its SHA-256, so two
directories with the same bytes have the same id wherever they live, and any changed weight changes it::

    manifest = ModelManifest.from_dir(Path("models/llama-tiny"))
    manifest.model_id.hex()   # '5f1c...' (32 bytes)

Hashing reads every file once (about 1 GB/s); callers cache the manifest next to the model when needed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from eth_hash.auto import keccak

from protocol.errors import ConfigurationError

# Files that define the model's computation. Tokenizer files are listed too: a different tokenizer is a
# different service, and the client must tokenize exactly as the nodes expect.
_MANIFEST_SUFFIXES = (".safetensors", ".json", ".txt", ".model")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative to the model directory, POSIX separators
    size: int  # bytes
    sha256: str  # hex


@dataclass(frozen=True)
class ModelManifest:
    entries: tuple[ManifestEntry, ...]

    @classmethod
    def from_dir(cls, model_dir: Path) -> ModelManifest:
        """Hash every model file under ``model_dir`` (``ConfigurationError`` if it is not a model)."""
        if not (model_dir / "config.json").is_file():
            raise ConfigurationError(f"{model_dir} is not a model directory: it has no config.json")
        entries = []
        for path in sorted(model_dir.rglob("*")):
            if not path.is_file() or path.suffix not in _MANIFEST_SUFFIXES:
                continue
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
            rel = path.relative_to(model_dir).as_posix()
            entries.append(ManifestEntry(rel, path.stat().st_size, digest.hexdigest()))
        return cls(tuple(entries))

    def canonical_json(self) -> bytes:
        """The bytes the model id hashes: sorted keys, no whitespace."""
        document = {"version": 1, "files": [[e.path, e.size, e.sha256] for e in self.entries]}
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @property
    def model_id(self) -> bytes:
        """32-byte keccak-256 of :meth:`canonical_json` (a ``bytes32`` on-chain)."""
        return bytes(keccak(self.canonical_json()))


__all__ = ["ManifestEntry", "ModelManifest"]
