"""A real market server (uvicorn on a free port, in a thread) over a temporary SQLite database."""

from __future__ import annotations

import socket
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveMarket:
    url: str
    settings: MarketSettings


@pytest.fixture(scope="module")
def live_market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMarket]:
    data_dir: Path = tmp_path_factory.mktemp("market")
    port = free_port()
    settings = MarketSettings(data_dir=data_dir, host="127.0.0.1", port=port, planner_refresh_s=0.0)
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
