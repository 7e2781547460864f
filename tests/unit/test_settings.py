"""The one settings pattern: defaults < TOML section < environment < keyword arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.errors import ConfigurationError
from protocol.settings import LayermarketSettings


class ExampleSettings(LayermarketSettings, section="example"):
    url: str = "sqlite://"
    workers: int = 2


def test_defaults_apply_without_env_or_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("LAYERMARKET_CONFIG", raising=False)
    assert ExampleSettings().url == "sqlite://"


def test_toml_section_then_env_then_kwargs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "lm.toml"
    config.write_text('[example]\nurl = "from-toml"\nworkers = 5\n[other]\nurl = "not-mine"\n')
    monkeypatch.setenv("LAYERMARKET_CONFIG", str(config))
    assert ExampleSettings().url == "from-toml"
    assert ExampleSettings().workers == 5
    monkeypatch.setenv("LAYERMARKET_EXAMPLE_URL", "from-env")
    assert ExampleSettings().url == "from-env"
    assert ExampleSettings(url="from-kwargs").url == "from-kwargs"


def test_layermarket_toml_in_working_directory_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LAYERMARKET_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "layermarket.toml").write_text("[example]\nworkers = 9\n")
    assert ExampleSettings().workers == 9


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LAYERMARKET_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigurationError, match=r"nope\.toml"):
        ExampleSettings()


def test_invalid_toml_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[example\nurl = 1")
    monkeypatch.setenv("LAYERMARKET_CONFIG", str(config))
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        ExampleSettings()


def test_wrong_type_in_env_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("LAYERMARKET_EXAMPLE_WORKERS", "many")
    with pytest.raises(ValidationError):
        ExampleSettings()
