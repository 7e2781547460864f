"""Fixtures shared by every test tier: settings, and the cached local test models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.settings import TestSettings


@pytest.fixture(scope="session")
def test_settings() -> TestSettings:
    return TestSettings()


@pytest.fixture(scope="session")
def model_cache(test_settings: TestSettings) -> Path:
    """Directory of cached test models (``make clean`` removes it)."""
    return test_settings.cache_dir / "models"


@pytest.fixture(scope="session")
def tiny_llama(model_cache: Path) -> Path:
    from node.devnet.models import cached_model

    return cached_model("llama", "tiny", model_cache)


@pytest.fixture(scope="session")
def tiny_qwen2(model_cache: Path) -> Path:
    from node.devnet.models import cached_model

    return cached_model("qwen2", "tiny", model_cache)


@pytest.fixture(scope="session")
def tiny_mistral(model_cache: Path) -> Path:
    from node.devnet.models import cached_model

    return cached_model("mistral", "tiny", model_cache)
