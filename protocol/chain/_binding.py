"""The base of the typed contract bindings: call a view, send a transaction, read past events."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from eth_utils.address import to_checksum_address

from protocol.chain.client import Chain, translate_error
from protocol.chain.types import ChainEvent, TxResult


class Binding:
    """One deployed contract seen through a Chain. Subclasses add one typed method per ABI function."""

    CONTRACT: ClassVar[str]

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)
        self._contract = chain.contract(self.CONTRACT, self.address)

    def using(self, chain: Chain) -> Self:
        """The same contract, sending from ``chain``'s account (``chain.with_account(key)``)."""
        return type(self)(chain, self.address)

    def _call(self, fn: str, *args: Any) -> Any:
        return self.chain.call(self._contract.functions[fn](*args))

    def _send(self, fn: str, *args: Any) -> TxResult:
        return self.chain.send(self._contract.functions[fn](*args))

    def events(self, name: str, from_block: int = 0, to_block: int | None = None) -> list[ChainEvent]:
        """Past ``name`` events of this contract in [from_block, to_block] (to_block None: latest)."""
        try:
            logs = self.chain.w3.eth.get_logs(
                {
                    "address": self.address,
                    "fromBlock": from_block,
                    "toBlock": "latest" if to_block is None else to_block,
                }
            )
        except Exception as exc:
            raise translate_error(exc) from exc
        return [e for e in self.chain.decode_logs(logs) if e.name == name]
