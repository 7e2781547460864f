"""``market-server serve`` and ``market-server worker --beat`` as separate processes, the way an operator
runs them: default settings (SQLite + the embedded broker) from the environment, a spot check dispatched
by the worker process, both stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.market.conftest import free_port
from tests.settings import REPO_ROOT
from tests.unit.market.helpers import MODEL_ID, heartbeat

pytestmark = pytest.mark.timeout(120)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "market", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "LAYERMARKET_MARKET_DATA_DIR": str(tmp_path),
        "LAYERMARKET_MARKET_DEV_TRUST_HEARTBEATS": "true",
        "LAYERMARKET_MARKET_PORT": str(port),
    }
    subprocess.run([sys.executable, "-m", "market", "migrate"], cwd=REPO_ROOT, env=env, check=True)
    server = _start(["serve"], env, tmp_path / "serve.log")
    worker = _start(["worker", "--beat", "--concurrency", "1"], env, tmp_path / "worker.log")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "market-server serve did not answer within 30 s"
            time.sleep(0.1)
        yield url
    finally:
        _stop(worker)
        _stop(server)
    # A clean stop: uvicorn re-raises the SIGTERM it handled after a graceful shutdown; no tracebacks.
    for process, log in ((server, "serve.log"), (worker, "worker.log")):
        text = (tmp_path / log).read_text()
        assert process.returncode in (0, -signal.SIGTERM), text[-3000:]
        assert "Traceback" not in text, text[-3000:]


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
