"""The operator's on-chain actions behind ``market-node stake|unbond|withdraw|register``.

Thin: each function opens the chain with the operator key, finds the contracts in the deployments file
and calls one binding of ``protocol.chain``; contract reverts surface as its typed errors::

    staking = operator_staking(settings, keys)
    bond(settings, keys, 10**18)         # approve + bond; returns the TxResults
"""

from __future__ import annotations

from pathlib import Path

from eth_hash.auto import keccak
from libp2p.peer.id import ID

from node.keys import NodeKeys
from node.settings import NodeSettings
from protocol.chain import (
    Chain,
    Deployment,
    DeploymentNotFound,
    MarketToken,
    NodeRecord,
    NodeStaking,
    Stake,
    TxResult,
)
from protocol.errors import ConfigurationError

DEFAULT_DEPLOYMENTS = Path("deployments")


def _deployment(settings: NodeSettings, chain: Chain) -> Deployment:
    if settings.deployment_file is not None:
        return Deployment.load_file(settings.deployment_file)
    return Deployment.load(chain.chain_id, DEFAULT_DEPLOYMENTS)


def receipt_court(settings: NodeSettings) -> str | None:
    """The SpotCheckCourt receipts are signed for: ``court_address`` if set, else the deployment file's
    (``deployment_file``, else ``deployments/<chain_id>.json``); None when neither exists. Reads no chain."""
    if settings.court_address:
        return settings.court_address
    try:
        if settings.deployment_file is not None:
            deployment = Deployment.load_file(settings.deployment_file)
        else:
            deployment = Deployment.load(settings.chain_id, DEFAULT_DEPLOYMENTS)
    except DeploymentNotFound:
        return None
    if deployment.chain_id != settings.chain_id:
        raise ConfigurationError(
            f"the deployment file is for chain {deployment.chain_id}, but chain_id is {settings.chain_id}"
        )
    return deployment.address("SpotCheckCourt")


def _contracts(settings: NodeSettings, keys: NodeKeys) -> tuple[Chain, NodeStaking, Deployment]:
    chain = Chain.connect(settings.chain_rpc_url, private_key=keys.operator_key)
    deployment = _deployment(settings, chain)
    return chain, NodeStaking(chain, deployment.address("NodeStaking")), deployment


def bond(settings: NodeSettings, keys: NodeKeys, amount: int) -> list[TxResult]:
    """Approve the staking contract for ``amount`` of the stake token, then bond it."""
    if amount <= 0:
        raise ConfigurationError("the amount to stake must be positive")
    chain, staking, _ = _contracts(settings, keys)
    token = MarketToken(chain, staking.token())
    return [token.approve(staking.address, amount), staking.bond(amount)]


def unbond(settings: NodeSettings, keys: NodeKeys, amount: int) -> TxResult:
    _, staking, _ = _contracts(settings, keys)
    return staking.unbond(amount)


def withdraw(settings: NodeSettings, keys: NodeKeys) -> TxResult:
    _, staking, _ = _contracts(settings, keys)
    return staking.withdraw()


def register(
    settings: NodeSettings, keys: NodeKeys, model_id: bytes, layers: tuple[int, int], endpoint: str
) -> TxResult:
    """Publish the node record: peer id, model, layer range, price, and a hash of the announced endpoint."""
    _, staking, _ = _contracts(settings, keys)
    record = NodeRecord(
        peer_id=ID.from_base58(keys.peer_id).to_bytes(),
        model_id=model_id,
        layer_start=layers[0],
        layer_end=layers[1],
        price_per_token=settings.price_per_token,
        endpoint_hash=bytes(keccak(endpoint.encode())),
    )
    return staking.register(record)


def stake_of(settings: NodeSettings, keys: NodeKeys) -> Stake:
    _, staking, _ = _contracts(settings, keys)
    return staking.stake_of(keys.operator_address)


__all__ = ["bond", "register", "stake_of", "unbond", "withdraw"]
