"""Backends for the market's integration tests: SQLite + the embedded broker, and PostgreSQL + Redis.

Every test here runs once per backend. The PostgreSQL/Redis run uses the services named by
``tests.settings.TestSettings`` (a fresh database per test, dropped afterwards; fresh queue names on the
shared Redis) and is skipped, with the reason, only when a service cannot be reached.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from market.app import create_app
from market.settings import MarketSettings
from tests.settings import TestSettings
from tests.unit.market.helpers import Seeder


@dataclass
class Backend:
    name: str
    settings: MarketSettings


def _postgres_database(test_settings: TestSettings) -> Iterator[str]:
    admin_url = make_url(test_settings.postgres_url)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL at {admin_url.render_as_string()} is unreachable: {exc}")
    name = f"lm_market_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _redis_reachable(url: str) -> None:
    import redis

    try:
        with redis.Redis.from_url(url, socket_connect_timeout=2) as client:
            client.ping()
    except Exception as exc:
        pytest.skip(f"Redis at {url} is unreachable: {exc}")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path, test_settings: TestSettings) -> Iterator[Backend]:
    queues = {
        "task_queue": f"market-{uuid.uuid4().hex[:8]}",
        "spotcheck_queue": f"spot-{uuid.uuid4().hex[:8]}",
    }
    common = {"data_dir": tmp_path, "planner_refresh_s": 0.0, **queues}
    if request.param == "sqlite":
        yield Backend("sqlite", MarketSettings(**common))
        return
    _redis_reachable(test_settings.redis_url)
    for url in _postgres_database(test_settings):
        yield Backend(
            "postgres", MarketSettings(database_url=url, broker_url=test_settings.redis_url, **common)
        )


@pytest.fixture
def client(backend: Backend) -> Iterator[TestClient]:
    with TestClient(create_app(backend.settings)) as test_client:
        yield test_client


@pytest.fixture
def seeder(client: TestClient) -> Seeder:
    return Seeder(client)
