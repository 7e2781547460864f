"""A real market server (uvicorn on a free port, in a thread) over a temporary SQLite database."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from market.app import create_app
from market.settings import MarketSettings
from tests.e2e.market.launcher import free_port
from tests.integration.market.conftest import _postgres_database
from tests.settings import TestSettings


@dataclass
class LiveMarket:
    url: str
    settings: MarketSettings


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live_market(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, test_settings: TestSettings
) -> Iterator[LiveMarket]:
    """The server on SQLite, then on PostgreSQL (skipped, with the reason, when it is unreachable)."""
    if request.param == "sqlite":
        yield from _serve(tmp_path_factory.mktemp("market"), None)
    else:
        for url in _postgres_database(test_settings):
            yield from _serve(tmp_path_factory.mktemp("market"), url)


def _serve(data_dir: Path, database_url: str | None) -> Iterator[LiveMarket]:
    port = free_port()
    settings = MarketSettings(
        data_dir=data_dir, database_url=database_url, host="127.0.0.1", port=port, planner_refresh_s=0.0
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="market-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the market server did not start within 30 s")
        time.sleep(0.05)
    try:
        yield LiveMarket(url, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
