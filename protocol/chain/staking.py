"""Typed binding of NodeStaking: bond, unbond, rebond, withdraw, the node record, and the court's hooks.

>>> staking = NodeStaking(chain, deployment.address("NodeStaking"))      # doctest: +SKIP
>>> staking.bond(1000 * 10**18).named("Bonded")[0].args["bonded"]        # doctest: +SKIP
>>> staking.register(NodeRecord(peer_id, model_id, 0, 16, 1000, endpoint_hash))   # doctest: +SKIP
>>> staking.is_active(chain.address)                                     # doctest: +SKIP
True
"""

from __future__ import annotations

from protocol.chain._binding import Binding
from protocol.chain.types import NodeRecord, Stake, TxResult

__all__ = ["NodeStaking"]


class NodeStaking(Binding):
    """NodeStaking. Reverts raise ``protocol.chain.errors.Staking*``."""

    CONTRACT = "NodeStaking"

    # operator transactions
    def bond(self, amount: int) -> TxResult:
        """Adds ``amount`` to the sender's bonded stake (approve the token first)."""
        return self._send("bond", amount)

    def unbond(self, amount: int) -> TxResult:
        """Moves ``amount`` into the sender's unbonding lock (restarts its clock; still slashable)."""
        return self._send("unbond", amount)

    def rebond(self, amount: int) -> TxResult:
        """Moves ``amount`` from the unbonding lock back to bonded stake."""
        return self._send("rebond", amount)

    def withdraw(self) -> TxResult:
        """Withdraws the released unbonding lock (StakingStillUnbonding / StakingFrozen otherwise)."""
        return self._send("withdraw")

    def register(self, record: NodeRecord) -> TxResult:
        """Registers or updates the sender's node record."""
        return self._send("register", record.as_tuple())

    def deregister(self) -> TxResult:
        """Deletes the sender's node record."""
        return self._send("deregister")

    # owner / court transactions
    def set_court(self, court: str) -> TxResult:
        """Wires the court (once; owner only)."""
        return self._send("setCourt", court)

    def freeze(self, operator: str) -> TxResult:
        """Court only."""
        return self._send("freeze", operator)

    def unfreeze(self, operator: str) -> TxResult:
        """Court only."""
        return self._send("unfreeze", operator)

    def slash(self, operator: str, fraction_bps: int) -> TxResult:
        """Court only."""
        return self._send("slash", operator, fraction_bps)

    def transfer_ownership(self, new_owner: str) -> TxResult:
        return self._send("transferOwnership", new_owner)

    def renounce_ownership(self) -> TxResult:
        return self._send("renounceOwnership")

    # views
    def node_record(self, operator: str) -> NodeRecord:
        peer_id, model_id, layer_start, layer_end, price, endpoint = self._call("nodeRecord", operator)
        return NodeRecord(bytes(peer_id), bytes(model_id), layer_start, layer_end, price, bytes(endpoint))

    def stake_of(self, operator: str) -> Stake:
        return Stake(*(int(x) for x in self._call("stakeOf", operator)))

    def is_active(self, operator: str) -> bool:
        """Registered, not jailed, and bonded >= min stake per layer x layers."""
        return bool(self._call("isActive", operator))

    def is_payable(self, operator: str) -> bool:
        """Not jailed and with stake at risk: the escrow pays only such payees."""
        return bool(self._call("isPayable", operator))

    def is_registered(self, operator: str) -> bool:
        return bool(self._call("isRegistered", operator))

    def required_stake(self, operator: str) -> int:
        return int(self._call("requiredStake", operator))

    def total_staked(self) -> int:
        return int(self._call("totalStaked"))

    def token(self) -> str:
        return str(self._call("token"))

    def court(self) -> str:
        return str(self._call("court"))

    def owner(self) -> str:
        return str(self._call("owner"))

    def unbonding_period(self) -> int:
        return int(self._call("unbondingPeriod"))

    def min_stake_per_layer(self) -> int:
        return int(self._call("minStakePerLayer"))

    def jail_duration(self) -> int:
        return int(self._call("jailDuration"))

    def bps(self) -> int:
        return int(self._call("BPS"))
