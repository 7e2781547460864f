"""Fixtures for market tests: settings on a temporary SQLite file, a client, seeding helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from market.app import create_app
from market.settings import MarketSettings
from tests.unit.market.helpers import Seeder


@pytest.fixture
def market_settings(tmp_path: Path) -> MarketSettings:
    return MarketSettings(data_dir=tmp_path, heartbeat_ttl_s=30, planner_refresh_s=0.0)


@pytest.fixture
def client(market_settings: MarketSettings) -> Iterator[TestClient]:
    with TestClient(create_app(market_settings)) as test_client:
        yield test_client


@pytest.fixture
def seeder(client: TestClient) -> Seeder:
    return Seeder(client)
