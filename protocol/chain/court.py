"""Typed binding of SpotCheckCourt: validator bonds, commit-reveal challenges, votes, resolution, rewards.

>>> court = SpotCheckCourt(chain, deployment.address("SpotCheckCourt"))            # doctest: +SKIP
>>> salt = os.urandom(32)                                                          # doctest: +SKIP
>>> commitment = court.challenge_commitment(chain.address, receipt, evidence, salt)  # doctest: +SKIP
>>> court.commit_challenge(commitment)                                             # doctest: +SKIP
>>> # ... at least one block later:
>>> court.challenge(receipt, node_signature, evidence, salt)                       # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from protocol.chain._binding import Binding
from protocol.chain.types import Ballot, Challenge, ChallengeStatus, CourtParams, TxResult, ValidatorBond
from protocol.eip712 import Domain
from protocol.receipts import Receipt, receipt_digest

__all__ = ["SpotCheckCourt"]


class SpotCheckCourt(Binding):
    """SpotCheckCourt. Reverts raise ``protocol.chain.errors.Court*``. Challenge ids are receipt digests."""

    CONTRACT = "SpotCheckCourt"

    def domain(self) -> Domain:
        """The EIP-712 domain receipts are signed under (this court)."""
        return Domain(self.chain.chain_id, self.address)

    def challenge_commitment(self, challenger: str, receipt: Receipt, evidence: bytes, salt: bytes) -> bytes:
        """``keccak256(abi.encode(challenger, receiptDigest, keccak256(evidence), salt))``: what
        ``commit_challenge`` takes. Binding the challenger's address is what stops a front-runner."""
        digest = receipt_digest(receipt, self.domain())
        fields = [challenger, digest, keccak(evidence), salt]
        return keccak(encode(["address", "bytes32", "bytes32", "bytes32"], fields))

    # validators
    def bond_validator(self, amount: int) -> TxResult:
        return self._send("bondValidator", amount)

    def request_validator_unbond(self) -> TxResult:
        return self._send("requestValidatorUnbond")

    def withdraw_validator_bond(self) -> TxResult:
        return self._send("withdrawValidatorBond")

    # challenges
    def commit_challenge(self, commitment: bytes) -> TxResult:
        return self._send("commitChallenge", commitment)

    def challenge(self, receipt: Receipt, node_signature: bytes, evidence: bytes, salt: bytes) -> TxResult:
        """Reveals a committed challenge (a later block than the commitment)."""
        return self._send("challenge", receipt.as_tuple(), node_signature, evidence, salt)

    def vote(self, receipt_digest_: bytes, uphold: bool) -> TxResult:
        return self._send("vote", receipt_digest_, uphold)

    def resolve(self, receipt_digest_: bytes) -> TxResult:
        return self._send("resolve", receipt_digest_)

    def claim_vote_reward(self, receipt_digest_: bytes) -> TxResult:
        return self._send("claimVoteReward", receipt_digest_)

    def withdraw_credit(self) -> TxResult:
        return self._send("withdrawCredit")

    def sync_reward_pool(self) -> TxResult:
        return self._send("syncRewardPool")

    # views
    def receipt_digest_of(self, receipt: Receipt) -> bytes:
        """The contract's digest of ``receipt`` (equals protocol.receipts.receipt_digest)."""
        return bytes(self._call("receiptDigestOf", receipt.as_tuple()))

    def challenge_of(self, receipt_digest_: bytes) -> Challenge:
        c = self._call("challengeOf", receipt_digest_)
        return Challenge(
            challenger=str(c[0]),
            node=str(c[1]),
            opened_at=int(c[2]),
            deadline=int(c[3]),
            upheld_votes=int(c[4]),
            rejected_votes=int(c[5]),
            status=ChallengeStatus(int(c[6])),
            bond=int(c[7]),
            reward_per_voter=int(c[8]),
            evidence_hash=bytes(c[9]),
        )

    def ballot_of(self, receipt_digest_: bytes, validator: str) -> Ballot:
        return Ballot(int(self._call("ballotOf", receipt_digest_, validator)))

    def validator_of(self, validator: str) -> ValidatorBond:
        return ValidatorBond(*(int(x) for x in self._call("validatorOf", validator)))

    def commitment_block(self, commitment: bytes) -> int:
        return int(self._call("commitmentBlock", commitment))

    def credit_of(self, account: str) -> int:
        return int(self._call("creditOf", account))

    def reward_pool(self) -> int:
        return int(self._call("rewardPool"))

    def total_owed(self) -> int:
        return int(self._call("totalOwed"))

    def params(self) -> CourtParams:
        return CourtParams(*(int(x) for x in self._call("params")))

    def token(self) -> str:
        return str(self._call("token"))

    def staking(self) -> str:
        return str(self._call("staking"))

    def domain_separator(self) -> bytes:
        return bytes(self._call("domainSeparator"))

    def eip712_domain(self) -> tuple[Any, ...]:
        return tuple(self._call("eip712Domain"))

    def receipt_typehash(self) -> bytes:
        return bytes(self._call("RECEIPT_TYPEHASH"))
