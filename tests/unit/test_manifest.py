"""Model ids: the same bytes give the same id, any changed byte gives another."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from protocol.errors import ConfigurationError
from protocol.manifest import ModelManifest


def test_model_id_is_stable_across_copies_and_changes_with_a_weight(tiny_llama: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_llama, copy)
    original = ModelManifest.from_dir(tiny_llama)
    assert len(original.model_id) == 32
    assert ModelManifest.from_dir(copy).model_id == original.model_id
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert ModelManifest.from_dir(copy).model_id != original.model_id


def test_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"no config\.json"):
        ModelManifest.from_dir(tmp_path)
