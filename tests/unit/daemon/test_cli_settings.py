"""market-node's command line and settings: layer ranges, splits, environment overrides."""

from __future__ import annotations

import itertools

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
