"""``market-server`` commands against a temporary SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest

from market.cli import group
from market.db import Database
from market.models import ModelRow
from protocol.cli import run


def test_add_model_registers_once_and_refuses_another_layer_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAYERMARKET_MARKET_DATA_DIR", str(tmp_path))
    model_id = "0x" + "ab" * 32
    run(group, ["add-model", model_id, "tiny", "8"])
    run(group, ["add-model", model_id, "tiny", "8"])
    with pytest.raises(SystemExit) as exit_info:
        run(group, ["add-model", model_id, "tiny", "9"])
    assert exit_info.value.code == 2
    assert "registered with 8 layers" in capsys.readouterr().err
    db = Database(f"sqlite:///{tmp_path / 'market.sqlite'}")
    with db.session() as session:
        assert session.get(ModelRow, model_id).num_layers == 8  # type: ignore[union-attr]
    db.dispose()


def test_index_without_a_chain_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAYERMARKET_MARKET_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        run(group, ["index"])
    assert exit_info.value.code == 2 and "chain_rpc_url" in capsys.readouterr().err
