"""Typed binding of MarketToken (ERC20 + ERC20Permit + Ownable mint), or of any ERC20 through the same ABI.

>>> token = MarketToken(chain, deployment.address("MarketToken"))   # doctest: +SKIP
>>> token.approve(escrow.address, 10**18); token.balance_of(chain.address)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from protocol.chain._binding import Binding
from protocol.chain.types import TxResult

__all__ = ["MarketToken"]


class MarketToken(Binding):
    """MarketToken; amounts are in the token's smallest unit (18 decimals)."""

    CONTRACT = "MarketToken"

    # views
    def name(self) -> str:
        return str(self._call("name"))

    def symbol(self) -> str:
        return str(self._call("symbol"))

    def decimals(self) -> int:
        return int(self._call("decimals"))

    def total_supply(self) -> int:
        return int(self._call("totalSupply"))

    def balance_of(self, account: str) -> int:
        return int(self._call("balanceOf", account))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self._call("allowance", owner, spender))

    def nonces(self, owner: str) -> int:
        """The owner's ERC-2612 permit nonce."""
        return int(self._call("nonces", owner))

    def domain_separator(self) -> bytes:
        """The token's own EIP-712 domain separator (name "Layermarket Token"), used by permits."""
        return bytes(self._call("DOMAIN_SEPARATOR"))

    def eip712_domain(self) -> tuple[Any, ...]:
        """ERC-5267 domain fields (fields, name, version, chainId, verifyingContract, salt, extensions)."""
        return tuple(self._call("eip712Domain"))

    def owner(self) -> str:
        return str(self._call("owner"))

    # transactions
    def transfer(self, to: str, amount: int) -> TxResult:
        return self._send("transfer", to, amount)

    def transfer_from(self, owner: str, to: str, amount: int) -> TxResult:
        return self._send("transferFrom", owner, to, amount)

    def approve(self, spender: str, amount: int) -> TxResult:
        return self._send("approve", spender, amount)

    def permit(
        self, owner: str, spender: str, value: int, deadline: int, v: int, r: bytes, s: bytes
    ) -> TxResult:
        return self._send("permit", owner, spender, value, deadline, v, r, s)

    def mint(self, to: str, amount: int) -> TxResult:
        """Devnet faucet; only the owner."""
        return self._send("mint", to, amount)

    def transfer_ownership(self, new_owner: str) -> TxResult:
        return self._send("transferOwnership", new_owner)

    def renounce_ownership(self) -> TxResult:
        return self._send("renounceOwnership")
