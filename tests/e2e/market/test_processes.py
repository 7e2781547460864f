"""``market-server serve`` and ``market-server worker --beat`` as separate processes, the way an operator
runs them: default settings (SQLite + the embedded broker) from the environment, a spot check dispatched
by the worker process, both stopped cleanly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.market.launcher import MarketProcesses
from tests.unit.market.helpers import MODEL_ID, heartbeat

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[str]:
    market = MarketProcesses.start(tmp_path, {"LAYERMARKET_MARKET_DEV_TRUST_HEARTBEATS": "true"})
    try:
        yield market.url
    finally:
        market.stop()
    market.assert_stopped_cleanly()


def test_serve_and_worker_processes_dispatch_a_spot_check(processes: str) -> None:
    with httpx.Client(base_url=processes, timeout=10) as http:
        assert http.post(
            "/v1/models", json={"model_id": MODEL_ID, "name": "tiny", "num_layers": 8}
        ).is_success
        assert http.post("/v1/nodes/heartbeat", json=heartbeat(0, 0, 8)).json()["routable"] is True
        quote = http.post("/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 8}).json()
        transcript = {"token_ids": [1, 2, 3], "prompt_len": 1, "seed": 0}
        check = http.post("/v1/spotchecks", json={"job_id": quote["job_id"], "transcript": transcript}).json()
        deadline = time.monotonic() + 60
        while http.get(f"/v1/spotchecks/{check['id']}").json()["status"] != "dispatched":
            assert time.monotonic() < deadline, "the worker process did not dispatch the spot check"
            time.sleep(0.2)
        assert "market_quotes_total" in http.get("/metrics").text
