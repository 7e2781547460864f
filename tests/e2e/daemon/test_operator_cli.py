"""market-node's chain commands against a real anvil: stake, register, unbond, withdraw."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.daemon.launcher import DEV_PASSPHRASE, DEV_SCRYPT_N
from protocol.chain import Chain, MarketToken, NodeStaking, deploy, start_anvil
from protocol.chain.anvil import AnvilNotFound, AnvilProcess
from protocol.chain.deploy import TOKEN, DeployParams


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilProcess]:
    try:
        process = start_anvil()
    except AnvilNotFound as exc:
        pytest.skip(f"anvil is not installed: {exc}")
    with process:
        yield process


def _node(home: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "node.cli", *args], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_operator_stakes_registers_unbonds_and_withdraws_from_the_command_line(
    anvil: AnvilProcess, tiny_llama: Path, tmp_path: Path
) -> None:
    owner = Chain.connect(anvil.rpc_url, private_key=anvil.accounts[0].private_key)
    deployment = deploy(owner, DeployParams())
    deployment_file = deployment.save(tmp_path / "deployments")
    operator = anvil.accounts[1]
    MarketToken(owner, deployment.address("MarketToken")).mint(operator.address, 1_000 * TOKEN)
    key_file = tmp_path / "operator.key"
    key_file.write_text(operator.private_key)
    env = dict(os.environ)
    env.update(
        LAYERMARKET_NODE_HOME=str(tmp_path / "home"),
        LAYERMARKET_NODE_PASSPHRASE=DEV_PASSPHRASE,
        LAYERMARKET_NODE_CHAIN_RPC_URL=anvil.rpc_url,
        LAYERMARKET_NODE_DEPLOYMENT_FILE=str(deployment_file),
        LAYERMARKET_NODE_PRICE_PER_TOKEN="1000",
    )
    out = _node(tmp_path, env, "init", "--scrypt-n", str(DEV_SCRYPT_N), "--operator-key-file", str(key_file))
    assert operator.address in out
    assert operator.private_key.removeprefix("0x") not in out

    _node(tmp_path, env, "stake", str(100 * TOKEN))
    _node(
        tmp_path,
        env,
        "register",
        "--model",
        str(tiny_llama),
        "--layers",
        "0:4",
        "--endpoint",
        "/ip4/1.2.3.4/tcp/4001",
    )
    staking = NodeStaking(owner, deployment.address("NodeStaking"))
    assert staking.stake_of(operator.address).bonded == 100 * TOKEN
    assert staking.is_registered(operator.address)
    record = staking.node_record(operator.address)
    assert (record.layer_start, record.layer_end, record.price_per_token) == (0, 4, 1000)

    _node(tmp_path, env, "unbond", str(40 * TOKEN))
    assert staking.stake_of(operator.address).unbonding == 40 * TOKEN
    owner.w3.provider.make_request("evm_increaseTime", [DeployParams().unbonding_period + 1])  # type: ignore[arg-type]
    owner.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    before = MarketToken(owner, deployment.address("MarketToken")).balance_of(operator.address)
    _node(tmp_path, env, "withdraw")
    after = MarketToken(owner, deployment.address("MarketToken")).balance_of(operator.address)
    assert after - before == 40 * TOKEN
