"""Python side of the Layermarket contracts: typed bindings, deployment, errors, a local anvil.

    >>> from protocol.chain import Chain, Deployment, PaymentEscrow, start_anvil, deploy   # doctest: +SKIP
    >>> with start_anvil() as anvil:                                                      # doctest: +SKIP
    ...     chain = Chain.connect(anvil.rpc_url, private_key=anvil.accounts[0].private_key)
    ...     d = deploy(chain)
    ...     escrow = PaymentEscrow(chain, d.address("PaymentEscrow"))

Modules: ``client`` (Chain: connection, signing, error translation, event decoding), ``token``,
``staking``, ``escrow``, ``court`` (one binding per contract), ``types`` (struct views, events),
``errors`` (one exception per Solidity custom error), ``abi`` (exported artifacts), ``deployments``
(deployments/<chainId>.json), ``deploy`` (the one deploy path), ``anvil`` (start a real anvil).
"""

from protocol.chain.abi import CONTRACT_NAMES, Artifact, load_artifact
from protocol.chain.anvil import AnvilNotFound, AnvilProcess, DevAccount, start_anvil
from protocol.chain.client import Chain
from protocol.chain.court import SpotCheckCourt
from protocol.chain.deploy import DeployParams, deploy
from protocol.chain.deployments import Deployment, DeploymentNotFound
from protocol.chain.errors import ChainError, ContractRevert, RpcUnavailable, TransactionFailed
from protocol.chain.escrow import PaymentEscrow
from protocol.chain.staking import NodeStaking
from protocol.chain.token import MarketToken
from protocol.chain.types import (
    Ballot,
    ChainEvent,
    Challenge,
    ChallengeStatus,
    CourtParams,
    EscrowAccount,
    NodeRecord,
    Stake,
    TxResult,
    ValidatorBond,
)

__all__ = [
    "CONTRACT_NAMES",
    "AnvilNotFound",
    "AnvilProcess",
    "Artifact",
    "Ballot",
    "Chain",
    "ChainError",
    "ChainEvent",
    "Challenge",
    "ChallengeStatus",
    "ContractRevert",
    "CourtParams",
    "DeployParams",
    "Deployment",
    "DeploymentNotFound",
    "DevAccount",
    "EscrowAccount",
    "MarketToken",
    "NodeRecord",
    "NodeStaking",
    "PaymentEscrow",
    "RpcUnavailable",
    "SpotCheckCourt",
    "Stake",
    "TransactionFailed",
    "TxResult",
    "ValidatorBond",
    "deploy",
    "load_artifact",
    "start_anvil",
]
