"""market-node's command line and settings: layer ranges, splits, environment overrides."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from node.cli import parse_layers
from node.daemon.launcher import even_splits
from node.settings import NodeSettings
from protocol.errors import ConfigurationError


def test_layers_parse_as_half_open_ranges() -> None:
    assert parse_layers("0:16") == (0, 16)
    for bad in ("16", "4:4", "5:2", "a:b", "-1:3"):
        with pytest.raises(ConfigurationError):
            parse_layers(bad)


def test_even_splits_cover_every_layer_once() -> None:
    assert even_splits(16, 4) == [(0, 4), (4, 8), (8, 12), (12, 16)]
    splits = even_splits(7, 3)
    assert splits[0][0] == 0 and splits[-1][1] == 7
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(splits))


def test_node_settings_come_from_the_environment_and_hide_the_passphrase(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAYERMARKET_NODE_SESSION_IDLE_S", "7.5")
    monkeypatch.setenv("LAYERMARKET_NODE_PASSPHRASE", "s3cret")
    settings = NodeSettings()
    assert settings.session_idle_s == 7.5
    assert "s3cret" not in repr(settings)
    assert settings.passphrase is not None and settings.passphrase.get_secret_value() == "s3cret"


def test_receipts_are_signed_for_the_configured_court_else_the_deployment_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from node.operator import receipt_court
    from protocol.chain import Deployment

    court = "0x" + "C0" * 20
    monkeypatch.chdir(tmp_path)  # deployments/<chain_id>.json is looked up relative to the working directory
    assert receipt_court(NodeSettings(home=tmp_path)) is None
    assert receipt_court(NodeSettings(home=tmp_path, court_address=court)) == court

    deployment = Deployment(31337, 1, "0x" + "00" * 20, {"SpotCheckCourt": "0x" + "AB" * 20})
    deployment.save(tmp_path / "deployments")
    assert receipt_court(NodeSettings(home=tmp_path)) == "0x" + "AB" * 20
    assert receipt_court(NodeSettings(home=tmp_path, court_address=court)) == court  # the setting wins
    assert receipt_court(NodeSettings(home=tmp_path, chain_id=1)) is None  # no deployments/1.json

    other = tmp_path / "other.json"
    other.write_text(json.dumps(Deployment(5, 1, "0x" + "00" * 20, {"SpotCheckCourt": court}).to_json()))
    with pytest.raises(ConfigurationError, match="chain 5"):
        receipt_court(NodeSettings(home=tmp_path, deployment_file=other))
