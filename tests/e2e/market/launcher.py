"""Start and stop ``market-server`` processes the way a market operator runs them (end-to-end tests).

::

    market = MarketProcesses.start(tmp_path, {"LAYERMARKET_MARKET_DEV_TRUST_HEARTBEATS": "true"})
    try:
        httpx.get(f"{market.url}/healthz")
        market.cli("add-model", "0xab..", "tiny", "8")      # `python -m market add-model ...`, same settings
    finally:
        market.stop()                                        # SIGTERM, SIGKILL past a deadline

Settings travel the way an operator sets them: ``LAYERMARKET_MARKET_*`` variables (a free port, ``data_dir``
in the test's directory). The database is migrated once before either process starts (``market-server
migrate``), so the API and the worker never race to create it. Readiness is ``GET /healthz`` answering 200,
waited for with a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.settings import REPO_ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MarketStartError(RuntimeError):
    """A market process exited or did not answer in time; the message has its log's tail."""


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-chars:] if path.is_file() else ""


def _stop(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class MarketProcesses:
    """``market-server serve`` and, optionally, ``market-server worker --beat`` over one data directory."""

    url: str
    data_dir: Path
    env: dict[str, str]
    server: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes] | None

    @classmethod
    def start(
        cls,
        data_dir: Path,
        settings: dict[str, str] | None = None,
        *,
        worker: bool = True,
        port: int | None = None,
        wait: bool = True,
        ready_timeout_s: float = 60.0,
    ) -> MarketProcesses:
        """Migrate, then start the API (and the worker with the scheduler); return once /healthz answers
        (at once with ``wait=False``: call :meth:`wait_healthy` before using it)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        env = {
            **os.environ,
            "LAYERMARKET_MARKET_DATA_DIR": str(data_dir),
            "LAYERMARKET_MARKET_PORT": str(port),
            "PYTHONUNBUFFERED": "1",
            **(settings or {}),
        }
        url = f"http://127.0.0.1:{port}"
        env.setdefault("LAYERMARKET_MARKET_PUBLIC_URL", url)
        _market_cli(env, "migrate")
        server = _spawn(["serve"], env, data_dir / "serve.log")
        market = cls(url, data_dir, env, server, None)
        try:
            if worker:
                market.worker = _spawn(
                    ["worker", "--beat", "--concurrency", "1"], env, data_dir / "worker.log"
                )
            if wait:
                market.wait_healthy(ready_timeout_s)
        except BaseException:
            market.stop()
            raise
        return market

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.server.poll() is not None:
                raise MarketStartError(f"market-server serve exited: {_tail(self.data_dir / 'serve.log')}")
            if time.monotonic() > deadline:
                raise MarketStartError(
                    f"market-server serve did not answer within {timeout_s} s: "
                    f"{_tail(self.data_dir / 'serve.log')}"
                )
            time.sleep(0.1)  # polling a port the child opens; the deadline bounds it

    def cli(self, *args: str) -> str:
        """``market-server ARGS`` with this market's settings; its stdout (MarketStartError with stderr)."""
        return _market_cli(self.env, *args)

    def logs(self) -> dict[str, str]:
        return {name: _tail(self.data_dir / name, 10**6) for name in ("serve.log", "worker.log")}

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM the worker, then the API (each finishes its work); SIGKILL past ``timeout_s``."""
        if self.worker is not None:
            _stop(self.worker, timeout_s)
        _stop(self.server, timeout_s)

    def assert_stopped_cleanly(self) -> None:
        """Both exited on SIGTERM without a traceback (uvicorn re-raises the SIGTERM it handled)."""
        for process, log in ((self.server, "serve.log"), (self.worker, "worker.log")):
            if process is None:
                continue
            text = _tail(self.data_dir / log)
            assert process.returncode in (0, -signal.SIGTERM), text
            assert "Traceback" not in _tail(self.data_dir / log, 10**6), text


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        command = [sys.executable, "-m", "market", *args]
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _market_cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "market", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise MarketStartError(f"market-server {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result.stdout


__all__ = ["MarketProcesses", "MarketStartError", "free_port"]
