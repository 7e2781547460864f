"""One settings pattern for every Layermarket component.

Each component declares a subclass of :class:`LayermarketSettings` with a TOML ``section`` and reads its
values, highest priority first, from:

1. keyword arguments (tests, CLI flags);
2. environment variables ``LAYERMARKET_<SECTION>_<FIELD>`` (e.g. ``LAYERMARKET_MARKET_DATABASE_URL``);
3. the table ``[<section>]`` of a TOML file: the path in ``LAYERMARKET_CONFIG``, else ``./layermarket.toml``
   when it exists, else ``~/.config/layermarket/config.toml`` when it exists;
4. the field's default.

Example::

    class MarketSettings(LayermarketSettings, section="market"):
        database_url: str = "sqlite:///market.db"

    MarketSettings().database_url                       # default, env or TOML
    MarketSettings(database_url="sqlite://").database_url  # 'sqlite://'

No component reads ``os.environ`` itself; nothing here runs at import time.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, ClassVar

from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from protocol.errors import ConfigurationError

ENV_PREFIX = "LAYERMARKET_"


class _ConfigLocation(BaseSettings):
    """Where the optional TOML file lives (``LAYERMARKET_CONFIG``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")
    config: Path | None = None


def config_file() -> Path | None:
    """The TOML file settings are read from, or ``None`` when there is none."""
    explicit = _ConfigLocation().config
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigurationError(f"LAYERMARKET_CONFIG names {explicit}, which is not a file")
        return explicit
    for candidate in (Path("layermarket.toml"), Path.home() / ".config" / "layermarket" / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


class _TomlSectionSource(PydanticBaseSettingsSource):
    """Reads one ``[section]`` table of the TOML config file."""

    def __init__(self, settings_cls: type[BaseSettings], section: str) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        path = config_file()
        if path is None or not section:
            return
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
        table = document.get(section, {})
        if not isinstance(table, dict):
            raise ConfigurationError(f"{path}: [{section}] must be a table")
        self._data = table

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class LayermarketSettings(BaseSettings):
    """Base class of every component's settings; subclass with ``section="name"``."""

    section: ClassVar[str] = ""
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

    def __init_subclass__(cls, section: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if section:
            cls.section = section
            cls.model_config = SettingsConfigDict(
                env_prefix=f"{ENV_PREFIX}{section.upper()}_", extra="ignore", validate_default=True
            )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        section = getattr(settings_cls, "section", "")
        return (init_settings, env_settings, _TomlSectionSource(settings_cls, section))


__all__ = ["ENV_PREFIX", "LayermarketSettings", "config_file"]
