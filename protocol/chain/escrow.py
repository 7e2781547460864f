"""Typed binding of PaymentEscrow: deposits, cumulative-voucher redemption, thawed withdrawals, fees.

>>> escrow = PaymentEscrow(chain, deployment.address("PaymentEscrow"))          # doctest: +SKIP
>>> sig = sign_voucher(voucher, client_key, escrow.domain())                    # doctest: +SKIP
>>> escrow.using(node_chain).redeem(voucher, sig).named("VoucherRedeemed")      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from protocol.chain._binding import Binding
from protocol.chain.types import EscrowAccount, TxResult
from protocol.eip712 import Domain
from protocol.vouchers import Voucher

__all__ = ["PaymentEscrow"]


class PaymentEscrow(Binding):
    """PaymentEscrow. Reverts raise ``protocol.chain.errors.Escrow*``."""

    CONTRACT = "PaymentEscrow"

    def domain(self) -> Domain:
        """The EIP-712 domain vouchers for this escrow are signed under."""
        return Domain(self.chain.chain_id, self.address)

    # client transactions
    def deposit(self, amount: int) -> TxResult:
        """Adds ``amount`` to the sender's balance (approve the token first)."""
        return self._send("deposit", amount)

    def deposit_with_permit(self, amount: int, deadline: int, v: int, r: bytes, s: bytes) -> TxResult:
        """Deposit with an ERC-2612 permit instead of an approve."""
        return self._send("depositWithPermit", amount, deadline, v, r, s)

    def request_withdraw(self, amount: int) -> TxResult:
        """Starts the thaw for ``amount``."""
        return self._send("requestWithdraw", amount)

    def withdraw(self) -> TxResult:
        """Pays min(requested, balance) once thawed."""
        return self._send("withdraw")

    # payee transactions
    def redeem(self, voucher: Voucher, signature: bytes) -> TxResult:
        """Redeems one voucher; the sender must be its payee."""
        return self._send("redeem", voucher.as_tuple(), signature)

    def redeem_batch(self, vouchers: Sequence[Voucher], signatures: Sequence[bytes]) -> TxResult:
        """Redeems many; a bad voucher is skipped with a VoucherRejected event instead of reverting all."""
        return self._send("redeemBatch", [v.as_tuple() for v in vouchers], list(signatures))

    # fees
    def sweep_fees(self) -> TxResult:
        return self._send("sweepFees")

    def set_fee(self, fee_bps: int) -> TxResult:
        """Owner only; <= MAX_FEE_BPS."""
        return self._send("setFee", fee_bps)

    def set_fee_recipient(self, recipient: str) -> TxResult:
        """Owner only."""
        return self._send("setFeeRecipient", recipient)

    def transfer_ownership(self, new_owner: str) -> TxResult:
        return self._send("transferOwnership", new_owner)

    def renounce_ownership(self) -> TxResult:
        return self._send("renounceOwnership")

    # views
    def account(self, client: str) -> EscrowAccount:
        return EscrowAccount(*(int(x) for x in self._call("account", client)))

    def redeemed(self, client: str, payee: str, channel_id: bytes) -> int:
        """What the channel has paid so far (gross)."""
        return int(self._call("redeemed", client, payee, channel_id))

    def channel_key(self, client: str, payee: str, channel_id: bytes) -> bytes:
        return bytes(self._call("channelKey", client, payee, channel_id))

    def voucher_digest(self, voucher: Voucher) -> bytes:
        """The contract's digest of ``voucher`` (equals protocol.vouchers.voucher_digest)."""
        return bytes(self._call("voucherDigest", voucher.as_tuple()))

    def domain_separator(self) -> bytes:
        return bytes(self._call("domainSeparator"))

    def eip712_domain(self) -> tuple[Any, ...]:
        return tuple(self._call("eip712Domain"))

    def total_deposits(self) -> int:
        return int(self._call("totalDeposits"))

    def accrued_fees(self) -> int:
        return int(self._call("accruedFees"))

    def fee_bps(self) -> int:
        return int(self._call("feeBps"))

    def fee_recipient(self) -> str:
        return str(self._call("feeRecipient"))

    def token(self) -> str:
        return str(self._call("token"))

    def staking(self) -> str:
        return str(self._call("staking"))

    def owner(self) -> str:
        return str(self._call("owner"))

    def thaw_period(self) -> int:
        return int(self._call("thawPeriod"))

    def max_voucher_validity(self) -> int:
        return int(self._call("maxVoucherValidity"))

    def max_fee_bps(self) -> int:
        return int(self._call("MAX_FEE_BPS"))

    def voucher_typehash(self) -> bytes:
        return bytes(self._call("VOUCHER_TYPEHASH"))
