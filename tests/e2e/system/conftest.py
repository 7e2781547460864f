"""The whole system as its operators run it: anvil, the contracts, a market, two bonded nodes.

Every part is a real process started the way docs/SYSTEM.md tells its operator to start it:

1. the chain: a real ``anvil``; the contracts deployed by ``python -m protocol.chain.deploy``;
2. the market operator: ``market-server migrate``, ``serve`` and ``worker --beat`` (SQLite and the
   embedded broker; the worker's indexer reads the deployment on that anvil), then ``POST /v1/models``;
3. each node operator: ``market-node init`` (importing a funded key), ``serve`` with the market's URL and
   the deployment's court (it heartbeats from then on), ``stake``, and ``register`` (model, layers,
   endpoint); before the registration the market lists the node and says it cannot route it, and why.

The fixture returns once the market's directory says both nodes are routable, and stops every process on
teardown (SIGTERM, then SIGKILL past a deadline). Timing knobs are the only settings changed from the
defaults: heartbeats every second, a 4 s heartbeat TTL and a 1 s index interval, so a stopped node drops
out of routes within seconds instead of the production 30 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from node.daemon.launcher import DEV_SCRYPT_N, NodeProcess, node_cli, stop_all
from protocol.chain import AnvilNotFound, Chain, Deployment, MarketToken, start_anvil
from protocol.chain.anvil import AnvilProcess, DevAccount
from protocol.manifest import ModelManifest
from tests.e2e.market.launcher import MarketProcesses, free_port
from tests.settings import REPO_ROOT

TOKEN = 10**18
STAKE = 100 * TOKEN  # above the devnet's 10 tokens per layer for 4 layers
HEARTBEAT_INTERVAL_S = 1
HEARTBEAT_TTL_S = 4
# (anvil account, layers, price per token): the two halves of the tiny model's 8 layers, priced apart so
# that a receipt naming the wrong hop's price cannot pass
STAGES = [(1, (0, 4), 1_000), (2, (4, 8), 1_500)]

_T = TypeVar("_T")


@dataclass
class Operator:
    """One node operator: a funded account, its keys' home, the stage it serves and its process."""

    account: DevAccount
    home: Path
    layers: tuple[int, int]
    price: int
    port: int
    env: dict[str, str]
    node: NodeProcess | None = None

    @property
    def peer_id(self) -> str:
        assert self.node is not None
        return str(self.node.ready["peer_id"])


@dataclass
class System:
    anvil: AnvilProcess
    deployment: Deployment
    market: MarketProcesses
    model_dir: Path
    model_id: str  # 0x + 64 hex, as the market and heartbeats name it
    num_layers: int
    operators: list[Operator]

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.market.url, timeout=10)

    def directory(self) -> list[dict[str, Any]]:
        with self.http() as http:
            response = http.get("/v1/nodes", params={"model_id": self.model_id})
            response.raise_for_status()
            nodes: list[dict[str, Any]] = response.json()
            return nodes


def wait_for(condition: Callable[[], _T], timeout_s: float, what: Callable[[], str]) -> _T:
    """Poll ``condition`` until it returns something truthy; fail with ``what()`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what()}")
        time.sleep(0.2)  # polling other processes' state; the deadline bounds it


def _deploy(anvil: AnvilProcess, out: Path) -> Deployment:
    """The project's deploy script, as a market operator runs it (anvil's public dev account 0)."""
    command = [sys.executable, "-m", "protocol.chain.deploy", "--rpc-url", anvil.rpc_url]
    subprocess.run(
        [*command, "--dev-account", "0", "--out", str(out)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Deployment.load(anvil.chain_id, out)


def _register(operator: Operator, model_dir: Path) -> str:
    start, end = operator.layers
    return node_cli(
        operator.home, "register", "--model", str(model_dir), "--layers", f"{start}:{end}",
        "--endpoint", f"/ip4/127.0.0.1/tcp/{operator.port}", env=operator.env,
    )  # fmt: skip


def _unregistered(system: System) -> bool:
    """Both nodes heartbeat and are listed, and the market says it cannot route them: not registered."""
    nodes = system.directory()
    return len(nodes) == len(system.operators) and all(
        not n["routable"] and "NodeStaking.register" in (n["reason"] or "") for n in nodes
    )


def _routable(system: System) -> bool:
    nodes = system.directory()
    return len(nodes) == len(system.operators) and all(n["routable"] for n in nodes)


def _operators(anvil: AnvilProcess, deployment_file: Path, market_url: str, home: Path) -> list[Operator]:
    deployment = Deployment.load_file(deployment_file)
    operators = []
    for account_index, layers, price in STAGES:
        env = {
            "LAYERMARKET_NODE_CHAIN_RPC_URL": anvil.rpc_url,
            "LAYERMARKET_NODE_DEPLOYMENT_FILE": str(deployment_file),
            # receipts are signed for the deployment's court, which the market verifies them under
            "LAYERMARKET_NODE_CHAIN_ID": str(deployment.chain_id),
            "LAYERMARKET_NODE_COURT_ADDRESS": deployment.address("SpotCheckCourt"),
            "LAYERMARKET_NODE_PRICE_PER_TOKEN": str(price),
            "LAYERMARKET_NODE_MARKET_URL": market_url,
            "LAYERMARKET_NODE_HEARTBEAT_INTERVAL_S": str(HEARTBEAT_INTERVAL_S),
        }
        account = anvil.accounts[account_index]
        home_dir = home / f"operator{account_index}"
        operators.append(Operator(account, home_dir, layers, price, free_port(), env))
    return operators


@pytest.fixture(scope="module")
def system(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    workdir = tmp_path_factory.mktemp("system")
    try:
        anvil = start_anvil()
    except AnvilNotFound as exc:
        pytest.skip(f"anvil is not installed (make install-npm): {exc}")
    operators: list[Operator] = []
    market: MarketProcesses | None = None
    starting: Future[MarketProcesses] | None = None
    try:
        deployment = _deploy(anvil, workdir / "deployments")
        deployment_file = Deployment.path_for(deployment.chain_id, workdir / "deployments")
        model_id = "0x" + ModelManifest.from_dir(tiny_llama).model_id.hex()
        num_layers = int(json.loads((tiny_llama / "config.json").read_text())["num_hidden_layers"])
        market_port = free_port()
        operators = _operators(anvil, deployment_file, f"http://127.0.0.1:{market_port}", workdir)
        owner = Chain.connect(anvil.rpc_url, private_key=anvil.accounts[0].private_key)
        token = MarketToken(owner, deployment.address("MarketToken"))
        key_files = []
        for operator in operators:
            token.transfer(operator.account.address, STAKE)  # the faucet step of a devnet
            operator.home.mkdir(parents=True)
            key_file = workdir / f"{operator.home.name}.key"
            key_file.write_text(operator.account.private_key)
            key_files.append(key_file)

        # The market operator and the two node operators work at the same time, as people would: keys
        # first, then each node serves (and heartbeats) while its operator stakes.
        with ThreadPoolExecutor(1 + len(operators)) as pool:
            starting = pool.submit(
                MarketProcesses.start,
                workdir / "market",
                {
                    "LAYERMARKET_MARKET_CHAIN_RPC_URL": anvil.rpc_url,
                    "LAYERMARKET_MARKET_DEPLOYMENT_FILE": str(deployment_file),
                    "LAYERMARKET_MARKET_INDEX_INTERVAL_S": "1",
                    "LAYERMARKET_MARKET_HEARTBEAT_TTL_S": str(HEARTBEAT_TTL_S),
                    "LAYERMARKET_MARKET_HEARTBEAT_INTERVAL_S": str(HEARTBEAT_INTERVAL_S),
                },
                port=market_port,
                wait=False,
            )
            init = "init", "--scrypt-n", str(DEV_SCRYPT_N), "--operator-key-file"
            for done in [
                pool.submit(node_cli, o.home, *init, str(k), env=o.env)
                for o, k in zip(operators, key_files, strict=True)
            ]:
                done.result()
            for o in operators:
                o.node = NodeProcess.start(tiny_llama, o.layers, o.home, port=o.port, env=o.env, wait=False)
            staking = [pool.submit(node_cli, o.home, "stake", str(STAKE), env=o.env) for o in operators]
            market = starting.result()
            for done in staking:
                done.result()
        market.wait_healthy()
        with httpx.Client(base_url=market.url, timeout=10) as http:
            # what `market-server add-model` does, over the API (no admin token is configured here)
            model = {"model_id": model_id, "name": "tiny-llama", "num_layers": num_layers}
            assert http.post("/v1/models", json=model).status_code == 201
        for operator in operators:
            assert operator.node is not None
            operator.node.wait_ready(120)
        system = System(anvil, deployment, market, tiny_llama, model_id, num_layers, operators)

        def logs() -> str:
            return " | ".join(o.node.log_tail(5) for o in operators if o.node is not None)

        # Bonded and heartbeating is not enough: the market routes only to a stage registered on-chain.
        wait_for(lambda: _unregistered(system), 60, lambda: f"{system.directory()}; node logs: {logs()}")
        with ThreadPoolExecutor(len(operators)) as pool:
            list(pool.map(lambda o: _register(o, tiny_llama), operators))
        wait_for(lambda: _routable(system), 60, lambda: f"{system.directory()}; node logs: {logs()}")
        yield system
    finally:
        stop_all([o.node for o in operators if o.node is not None])
        if market is None and starting is not None and starting.done() and not starting.exception():
            market = starting.result()  # something failed before the market was handed over: stop it too
        if market is not None:
            market.stop()
        anvil.stop()
