"""The indexer's event source for a real JSON-RPC chain (anvil in tests, any EVM chain in production)."""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3._utils.events import get_event_data

from market.indexer import ChainLog


def _plain(value: Any) -> Any:
    """Decoded event values as JSON-storable plain values: bytes → 0x hex, addresses checksummed."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class Web3EventSource:
    """Logs of the contracts at ``addresses`` decoded with ``abi`` (the contracts' event ABI entries)."""

    def __init__(self, w3: Web3, addresses: list[str], abi: list[dict[str, Any]], start_block: int) -> None:
        self._w3 = w3
        self._addresses = [to_checksum_address(a) for a in addresses]
        self._start = start_block
        self._events: dict[bytes, Any] = {}
        for entry in abi:
            if entry.get("type") != "event" or entry.get("anonymous"):
                continue
            signature = f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"
            self._events[bytes(Web3.keccak(text=signature))] = entry
        self._source_id = f"{w3.eth.chain_id}:{','.join(sorted(self._addresses))}"

    @property
    def source_id(self) -> str:
        return self._source_id

    def start_block(self) -> int:
        return self._start

    def head(self) -> int:
        return int(self._w3.eth.block_number)

    def block_hash(self, number: int) -> str | None:
        try:
            block = self._w3.eth.get_block(number)
        except Exception:  # web3 raises BlockNotFound (and provider-specific errors) past the head
            return None
        return "0x" + bytes(block["hash"]).hex()

    def logs(self, from_block: int, to_block: int) -> list[ChainLog]:
        raw = self._w3.eth.get_logs(
            {"address": self._addresses, "fromBlock": from_block, "toBlock": to_block}
        )
        out = []
        for entry in sorted(raw, key=lambda e: (e["blockNumber"], e["logIndex"])):
            topics = entry["topics"]
            abi = self._events.get(bytes(topics[0])) if topics else None
            if abi is None:
                continue
            decoded = get_event_data(self._w3.codec, abi, entry)
            out.append(
                ChainLog(
                    block_number=int(entry["blockNumber"]),
                    block_hash="0x" + bytes(entry["blockHash"]).hex(),
                    log_index=int(entry["logIndex"]),
                    tx_hash="0x" + bytes(entry["transactionHash"]).hex(),
                    name=str(decoded["event"]),
                    args={k: _plain(v) for k, v in decoded["args"].items()},
                )
            )
        return out


__all__ = ["Web3EventSource"]


def source_from_settings(settings: Any) -> Web3EventSource | None:
    """The event source named by the market settings, or None when no chain is configured."""
    if not settings.chain_rpc_url:
        return None
    from protocol.errors import ConfigurationError

    raise ConfigurationError("chain_rpc_url is set but the contract bindings are not wired in yet")
