"""Start and stop ``market-node`` processes the way an operator runs them (tests, benchmarks, devnets).

::

    with NodeProcess.start(model_dir, (0, 4), workdir / "n0") as node:
        node.hop          # protocol.messages.Hop with its peer id, addrs and layers
    # stopped (SIGTERM, then SIGKILL after a deadline) when the block ends

Each node gets its own home with freshly made keys (``market-node init`` with a light scrypt cost, since
these are throwaway keys) and listens on a free loopback port. The DHT is off unless ``env`` turns it on
(``LAYERMARKET_NODE_DHT=true``). Readiness is a condition with a deadline:
the node writes its ready file once it listens. ``node_cli(home, "stake", ...)`` runs the operator's other
commands (init with an imported key, stake, register) with the same environment.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.errors import PermanentError, TransientError
from protocol.messages import Hop

DEV_PASSPHRASE = "layermarket-dev-passphrase"
DEV_SCRYPT_N = 1 << 10


class NodeStartError(TransientError):
    """A node process exited or did not become ready in time; the message has its log's tail."""


class NodeCommandError(PermanentError):
    """A ``market-node`` command exited non-zero; the message has its stderr (never a key: the CLI prints
    none)."""


def node_cli(home: Path, *args: str, env: dict[str, str] | None = None, timeout_s: float = 60.0) -> str:
    """Run ``market-node ARGS`` as an operator would, for the node whose keys are in ``home``; its stdout.

    ::

        node_cli(home, "init", "--scrypt-n", "1024", "--operator-key-file", "op.hex")
        node_cli(home, "stake", str(40 * 10**18), env={"LAYERMARKET_NODE_CHAIN_RPC_URL": rpc_url, ...})
    """
    result = subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        env=_env(home, env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0:
        raise NodeCommandError(f"market-node {args[0]} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def _env(home: Path, extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env["LAYERMARKET_NODE_HOME"] = str(home)
    env["LAYERMARKET_NODE_PASSPHRASE"] = DEV_PASSPHRASE
    # the DHT's background work is not what benchmarks and most tests measure; they turn it on explicitly
    env["LAYERMARKET_NODE_DHT"] = "false"
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


@dataclass
class NodeProcess:
    home: Path
    process: subprocess.Popen[bytes]
    ready: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def hop(self) -> Hop:
        start, end = self.ready["layers"]
        return Hop(self.ready["peer_id"], tuple(self.ready["addrs"]), start, end)

    @classmethod
    def start(
        cls,
        model_dir: Path,
        layers: tuple[int, int],
        home: Path,
        *,
        threads: int | None = 1,
        port: int = 0,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        ready_timeout_s: float = 120.0,
        wait: bool = True,
    ) -> NodeProcess:
        home.mkdir(parents=True, exist_ok=True)
        environment = _env(home, env)
        if not (home / "operator.json").exists():
            node_cli(home, "init", "--scrypt-n", str(DEV_SCRYPT_N), env=env)
        ready_file = home / "ready.json"
        ready_file.unlink(missing_ok=True)
        args = [
            sys.executable, "-m", "node.cli", "-v", "serve", "--model", str(model_dir),
            "--layers", f"{layers[0]}:{layers[1]}", "--host", "127.0.0.1", "--port", str(port),
            "--ready-file", str(ready_file),
        ]  # fmt: skip
        if threads is not None:
            args += ["--threads", str(threads)]
        args += extra_args or []
        log_path = home / "node.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(args, env=environment, stdout=log, stderr=subprocess.STDOUT)
        node = cls(home, process, log_path=log_path)
        if wait:
            node.wait_ready(ready_timeout_s)
        return node

    def wait_ready(self, timeout_s: float = 120.0) -> dict[str, Any]:
        ready_file = self.home / "ready.json"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NodeStartError(f"market-node exited with {self.process.returncode}: {self.log_tail()}")
            if ready_file.is_file():
                self.ready = json.loads(ready_file.read_text(encoding="utf-8"))
                return self.ready
            time.sleep(0.05)  # polling a file the child writes; the deadline bounds it
        self.stop()
        raise NodeStartError(f"market-node not ready within {timeout_s} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: the node dies mid-whatever, as on a crash or power loss."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM (graceful drain), then SIGKILL after ``timeout_s``; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_chain(
    model_dir: Path, splits: list[tuple[int, int]], workdir: Path, **kwargs: Any
) -> list[NodeProcess]:
    """Start one node per layer range, all at once, and wait until every one is ready."""
    nodes: list[NodeProcess] = []
    try:
        for i, layers in enumerate(splits):
            nodes.append(
                NodeProcess.start(
                    model_dir, layers, workdir / f"node{i}-{layers[0]}-{layers[1]}", wait=False, **kwargs
                )
            )
        for node in nodes:
            node.wait_ready(kwargs.get("ready_timeout_s", 180.0))
    except BaseException:
        stop_all(nodes)
        raise
    return nodes


def stop_all(nodes: list[NodeProcess], timeout_s: float = 15.0) -> None:
    """SIGTERM every node at once, then wait for each (SIGKILL past the deadline)."""
    for node in nodes:
        if node.process.poll() is None:
            node.process.send_signal(signal.SIGTERM)
    for node in nodes:
        node.stop(timeout_s)


def even_splits(num_layers: int, stages: int) -> list[tuple[int, int]]:
    """``stages`` contiguous half-open ranges covering ``[0, num_layers)`` as evenly as possible."""
    bounds = [round(i * num_layers / stages) for i in range(stages + 1)]
    return list(itertools.pairwise(bounds))


__all__ = [
    "DEV_PASSPHRASE",
    "NodeCommandError",
    "NodeProcess",
    "NodeStartError",
    "even_splits",
    "node_cli",
    "start_chain",
    "stop_all",
]
