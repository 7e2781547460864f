"""Deploys and wires the contracts, and writes ``deployments/<chainId>.json``: the ONE deploy path, used by
the devnet, the integration tests and any operator (it deploys the bytecode exported from the Hardhat
artifacts in protocol/abi).

    >>> from protocol.chain.anvil import DEV_PRIVATE_KEYS
from protocol.chain.client import Chain
    >>> chain = Chain.connect(anvil.rpc_url, private_key=anvil.accounts[0].private_key)   # doctest: +SKIP
    >>> deployment = deploy(chain)                                                        # doctest: +SKIP
    >>> deployment.save(Path("deployments"))                                              # doctest: +SKIP

Command line (the key comes from a file, or is one of anvil's public dev keys; never a flag value)::

    python -m protocol.chain.deploy --rpc-url http://127.0.0.1:8545 --dev-account 0 --out deployments
    python -m protocol.chain.deploy --rpc-url https://rpc.example --key-file ~/.layermarket/deployer.key

Order: MarketToken (unless --token names an existing ERC20), NodeStaking, SpotCheckCourt (checks that the
unbonding period covers challenge window + longest job), NodeStaking.setCourt, PaymentEscrow (fees to the
court's reward pool).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from protocol.chain.anvil import DEV_PRIVATE_KEYS
from protocol.chain.client import Chain
from protocol.chain.deployments import Deployment
from protocol.chain.staking import NodeStaking
from protocol.chain.types import CourtParams

__all__ = ["DAY", "TOKEN", "DeployParams", "deploy", "main"]

log = logging.getLogger(__name__)

DAY = 24 * 3600
TOKEN = 10**18


@dataclass(frozen=True)
class DeployParams:
    """Every deployment parameter; the defaults are the devnet's (docs/CONTRACTS.md explains each)."""

    initial_supply: int = 1_000_000_000 * TOKEN  # MarketToken minted to the deployer
    unbonding_period: int = 7 * DAY
    min_stake_per_layer: int = 10 * TOKEN
    jail_duration: int = 30 * DAY
    thaw_period: int = 2 * DAY
    max_voucher_validity: int = 1 * DAY
    fee_bps: int = 100
    challenger_bond: int = 100 * TOKEN
    min_validator_bond: int = 1000 * TOKEN
    validator_unbonding_period: int = 7 * DAY
    voting_period: int = 1 * DAY
    quorum: int = 3
    slash_bps: int = 5000
    challenger_reward_bps: int = 2000
    voter_reward: int = 10 * TOKEN
    challenge_window: int = 3 * DAY
    max_job_duration: int = 1 * DAY

    def court_params(self) -> CourtParams:
        return CourtParams(
            challenger_bond=self.challenger_bond,
            min_validator_bond=self.min_validator_bond,
            validator_unbonding_period=self.validator_unbonding_period,
            voting_period=self.voting_period,
            quorum=self.quorum,
            slash_bps=self.slash_bps,
            challenger_reward_bps=self.challenger_reward_bps,
            voter_reward=self.voter_reward,
            challenge_window=self.challenge_window,
            max_job_duration=self.max_job_duration,
        )


def deploy(chain: Chain, params: DeployParams | None = None, token: str | None = None) -> Deployment:
    """Deploys everything from ``chain.address`` and returns the Deployment (not yet saved)."""
    params = params or DeployParams()
    owner = chain.address
    start_block = chain.block_number()
    if token is None:
        token, _ = chain.deploy("MarketToken", owner, params.initial_supply)
    staking, _ = chain.deploy(
        "NodeStaking", token, owner, params.unbonding_period, params.min_stake_per_layer, params.jail_duration
    )
    court, _ = chain.deploy("SpotCheckCourt", token, staking, params.court_params().as_tuple())
    NodeStaking(chain, staking).set_court(court)
    escrow, _ = chain.deploy(
        "PaymentEscrow",
        token,
        staking,
        owner,
        params.thaw_period,
        params.max_voucher_validity,
        params.fee_bps,
        court,
    )
    contracts = {
        "MarketToken": token,
        "NodeStaking": staking,
        "SpotCheckCourt": court,
        "PaymentEscrow": escrow,
    }
    parameters = {_camel(k): v for k, v in asdict(params).items()}
    return Deployment(chain.chain_id, start_block + 1, owner, contracts, parameters)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocol.chain.deploy", description="Deploy.")
    parser.add_argument("--rpc-url", required=True)
    parser.add_argument("--out", type=Path, default=Path("deployments"), help="directory for <chainId>.json")
    parser.add_argument("--token", help="use this existing ERC20 instead of deploying MarketToken")
    key = parser.add_mutually_exclusive_group(required=True)
    key.add_argument("--key-file", type=Path, help="file holding the deployer's hex private key")
    key.add_argument("--dev-account", type=int, help="anvil's public dev account N (devnets only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.key_file is not None:
        private_key = args.key_file.read_text(encoding="utf-8").strip()
    else:
        private_key = DEV_PRIVATE_KEYS[args.dev_account]
    deployment = deploy(Chain.connect(args.rpc_url, private_key=private_key), token=args.token)
    path = deployment.save(args.out)
    log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
