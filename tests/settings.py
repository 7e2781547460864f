"""Settings the test suite reads (``LAYERMARKET_TEST_*``), through the one settings pattern."""

from __future__ import annotations

from pathlib import Path

from protocol.settings import LayermarketSettings

REPO_ROOT = Path(__file__).resolve().parent.parent


class TestSettings(LayermarketSettings, section="test"):
    """Where the real services for integration tests live; tests needing one skip if it is unreachable."""

    __test__ = False  # not a pytest test class

    cache_dir: Path = REPO_ROOT / ".cache"
    postgres_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    redis_url: str = "redis://127.0.0.1:6379/15"
