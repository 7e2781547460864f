"""Starts a real ``anvil`` (from the npm package @foundry-rs/anvil) on a free port, for tests and the devnet.

    >>> with start_anvil() as anvil:                                  # doctest: +SKIP
    ...     chain = Chain.connect(anvil.rpc_url, private_key=anvil.accounts[0].private_key)
    ...     deployment = deploy(chain)

The binary is looked up, in order: the ``binary`` argument, ``node_modules/@foundry-rs/anvil-<platform>/
bin/anvil`` in the current directory or any parent (or the parents of this file), then ``anvil`` on PATH.
A missing binary raises AnvilNotFound (run ``make install-npm``); nothing falls back silently.
"""

from __future__ import annotations

import contextlib
import json
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from protocol.errors import ConfigurationError, TransientError

__all__ = [
    "DEV_PRIVATE_KEYS",
    "AnvilNotFound",
    "AnvilProcess",
    "AnvilStartError",
    "DevAccount",
    "find_anvil",
    "start_anvil",
]

# The ten accounts anvil funds by default (mnemonic "test test ... junk"). Public development keys: never
# use them on a real chain.
DEV_PRIVATE_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)


class AnvilNotFound(ConfigurationError):
    """No anvil binary: run ``make install-npm`` (npm package @foundry-rs/anvil)."""


class AnvilStartError(TransientError):
    """anvil exited or did not answer JSON-RPC before the deadline."""


@dataclass(frozen=True)
class DevAccount:
    """A funded development account; the key is left out of repr so it never reaches a log."""

    address: str
    private_key: str = field(repr=False)


def _platform_package() -> str:
    system = platform.system().lower()
    machine = platform.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "amd64"
    return f"anvil-{system}-{arch}"


def find_anvil(binary: Path | None = None) -> Path:
    """The anvil binary to run; AnvilNotFound when there is none."""
    if binary is not None:
        if binary.is_file():
            return binary
        raise AnvilNotFound(f"no anvil at {binary}")
    relative = Path("node_modules/@foundry-rs") / _platform_package() / "bin/anvil"
    for base in (Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents):
        candidate = base / relative
        if candidate.is_file():
            return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise AnvilNotFound(f"anvil not found ({relative} or PATH): run `make install-npm`")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rpc_answers(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return "result" in json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return False


class AnvilProcess:
    """A running anvil. Use as a context manager, or call ``stop()``; stopping twice is harmless."""

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, chain_id: int, log: IO[bytes], accounts: int
    ) -> None:
        self.process = process
        self.port = port
        self.chain_id = chain_id
        self.rpc_url = f"http://127.0.0.1:{port}"
        self._log = log
        self.accounts: tuple[DevAccount, ...] = tuple(_dev_accounts()[:accounts])

    @property
    def private_keys(self) -> tuple[str, ...]:
        """The funded accounts' private keys (anvil's public development keys), in account order."""
        return tuple(a.private_key for a in self.accounts)

    def log_tail(self, limit: int = 4000) -> str:
        """The end of anvil's output (for error messages)."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()[-limit:].decode(errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminates anvil (kills it after ``timeout``) and closes its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        with contextlib.suppress(ValueError):
            self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _dev_accounts() -> list[DevAccount]:
    from eth_account import Account

    return [DevAccount(str(Account.from_key(k).address), k) for k in DEV_PRIVATE_KEYS]


def start_anvil(
    port: int | None = None,
    block_time: float | None = None,
    *,
    chain_id: int = 31337,
    accounts: int = 10,
    binary: Path | None = None,
    startup_timeout: float = 20.0,
) -> AnvilProcess:
    """Starts anvil on ``port`` (a free one when None) and returns once it answers JSON-RPC.

    ``block_time`` None mines a block per transaction (automine); a number mines every that many seconds.
    ``accounts`` (<= 10) dev accounts are funded with 10,000 ETH each.
    """
    if not 1 <= accounts <= len(DEV_PRIVATE_KEYS):
        raise ConfigurationError(f"accounts must be in [1, {len(DEV_PRIVATE_KEYS)}]")
    exe = find_anvil(binary)
    attempts = 1 if port is not None else 3  # a free port can be taken between probe and bind
    last_error = ""
    for _ in range(attempts):
        chosen = port if port is not None else _free_port()
        args = [str(exe), "--host", "127.0.0.1", "--port", str(chosen), "--chain-id", str(chain_id)]
        args += ["--accounts", str(accounts)]
        if block_time is not None:
            args += ["--block-time", str(block_time)]
        log = tempfile.TemporaryFile()  # noqa: SIM115 - owned by AnvilProcess, closed by stop()
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        anvil = AnvilProcess(process, chosen, chain_id, log, accounts)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and process.poll() is None:
            if _rpc_answers(anvil.rpc_url):
                return anvil
            time.sleep(0.05)
        last_error = anvil.log_tail()
        anvil.stop()
    raise AnvilStartError(f"anvil did not start: {last_error.strip()[-1000:]}")
