"""Plain typed values that cross the Python/contract boundary: struct views, events, transaction results.

Field names are the Solidity names in snake_case; amounts are token units (ints), times unix seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = [
    "Ballot",
    "ChainEvent",
    "Challenge",
    "ChallengeStatus",
    "CourtParams",
    "EscrowAccount",
    "NodeRecord",
    "Stake",
    "TxResult",
    "ValidatorBond",
]


@dataclass(frozen=True)
class NodeRecord:
    """What a node serves (NodeStaking.NodeRecord). Layers are [layer_start, layer_end)."""

    peer_id: bytes  # libp2p peer id bytes; the daemon signs it with the operator key off-chain
    model_id: bytes  # 32 bytes: keccak256 of the model manifest
    layer_start: int
    layer_end: int
    price_per_token: int  # token units per token
    endpoint_hash: bytes  # 32 bytes: keccak256 of the announced endpoint

    def as_tuple(self) -> tuple[bytes, bytes, int, int, int, bytes]:
        return (
            self.peer_id,
            self.model_id,
            self.layer_start,
            self.layer_end,
            self.price_per_token,
            self.endpoint_hash,
        )


@dataclass(frozen=True)
class Stake:
    """An operator's stake (NodeStaking.Stake)."""

    bonded: int
    unbonding: int  # the single unbonding lock
    unbonding_release_at: int
    jailed_until: int
    open_challenges: int  # > 0: frozen


@dataclass(frozen=True)
class EscrowAccount:
    """A client's escrow balance and pending withdrawal (PaymentEscrow.Account)."""

    balance: int
    withdraw_requested: int
    withdrawable_at: int


class ChallengeStatus(IntEnum):
    NONE = 0
    OPEN = 1
    UPHELD = 2
    REJECTED = 3
    EXPIRED = 4


class Ballot(IntEnum):
    NONE = 0
    UPHOLD = 1
    REJECT = 2
    CLAIMED = 3


@dataclass(frozen=True)
class Challenge:
    """A challenge, keyed by the receipt's EIP-712 digest (SpotCheckCourt.Challenge)."""

    challenger: str
    node: str
    opened_at: int
    deadline: int
    upheld_votes: int
    rejected_votes: int
    status: ChallengeStatus
    bond: int
    reward_per_voter: int
    evidence_hash: bytes


@dataclass(frozen=True)
class ValidatorBond:
    """A validator's bond (SpotCheckCourt.Validator)."""

    bond: int
    bonded_at: int
    unbondable_at: int  # 0 while bonded


@dataclass(frozen=True)
class CourtParams:
    """SpotCheckCourt parameters, fixed at deployment. docs/CONTRACTS.md explains each."""

    challenger_bond: int
    min_validator_bond: int
    validator_unbonding_period: int
    voting_period: int
    quorum: int
    slash_bps: int
    challenger_reward_bps: int
    voter_reward: int
    challenge_window: int
    max_job_duration: int

    def as_tuple(self) -> tuple[int, ...]:
        return (
            self.challenger_bond,
            self.min_validator_bond,
            self.validator_unbonding_period,
            self.voting_period,
            self.quorum,
            self.slash_bps,
            self.challenger_reward_bps,
            self.voter_reward,
            self.challenge_window,
            self.max_job_duration,
        )


@dataclass(frozen=True)
class ChainEvent:
    """One decoded contract event. ``args`` maps the Solidity parameter names to Python values
    (addresses as checksummed str, bytesN as bytes, integers as int)."""

    contract: str  # "NodeStaking", "PaymentEscrow", ...
    name: str  # the Solidity event name, e.g. "VoucherRedeemed"
    args: Mapping[str, Any]
    address: str
    block_number: int
    transaction_hash: bytes
    log_index: int


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction and the Layermarket events it emitted (in log order)."""

    transaction_hash: bytes
    block_number: int
    gas_used: int
    events: tuple[ChainEvent, ...] = field(default=())

    def named(self, name: str) -> list[ChainEvent]:
        """The events called ``name``, e.g. ``result.named("VoucherRedeemed")``."""
        return [e for e in self.events if e.name == name]
