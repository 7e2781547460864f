"""``Chain``: one web3 connection plus the account that signs, with typed errors and decoded events.

Every binding (``protocol.chain.token`` ... ``court``) sends and calls through a Chain, so reverts are
raised as ``protocol.chain.errors`` classes and every transaction result lists its decoded events::

    >>> chain = Chain.connect("http://127.0.0.1:8545", private_key=dev_key)      # doctest: +SKIP
    >>> escrow = PaymentEscrow(chain, deployment.address("PaymentEscrow"))       # doctest: +SKIP
    >>> escrow.deposit(10**18).named("Deposited")[0].args["balance"]             # doctest: +SKIP
    1000000000000000000

Private keys are held by ``eth_account`` LocalAccount objects and never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    ProviderConnectionError,
    TimeExhausted,
)
from web3.types import TxParams, Wei

from protocol.chain.abi import load_artifact
from protocol.chain.errors import ChainError, RpcUnavailable, TransactionFailed, decode_revert
from protocol.chain.types import ChainEvent, TxResult
from protocol.eip712 import PrivateKey

__all__ = ["Chain", "translate_error"]

log = logging.getLogger(__name__)


def _hex_data(data: object) -> bytes | None:
    if isinstance(data, Mapping):  # some nodes nest it: {"data": "0x..."}
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return bytes.fromhex(data[2:])
    return None


def translate_error(exc: BaseException) -> ChainError:
    """The ChainError for a web3 / transport exception (RpcUnavailable for transport failures)."""
    if isinstance(exc, ChainError):
        return exc
    if isinstance(exc, ContractCustomError | ContractLogicError | ContractPanicError):
        raw = _hex_data(exc.data)
        if raw is not None:
            return decode_revert(raw)
        return TransactionFailed(str(exc.message or exc))
    if isinstance(exc, ProviderConnectionError | requests.ConnectionError | requests.Timeout | TimeoutError):
        return RpcUnavailable(f"JSON-RPC endpoint unavailable: {type(exc).__name__}")
    if isinstance(exc, TimeExhausted):
        return RpcUnavailable("transaction not mined before the timeout")
    return TransactionFailed(f"{type(exc).__name__}: {exc}")


class Chain:
    """A web3 connection and (optionally) the account that signs transactions.

    ``known`` maps contract addresses to contract names so that events of every Layermarket contract in a
    transaction (e.g. the NodeSlashed that the court's resolve causes in NodeStaking) are decoded.
    """

    def __init__(
        self, w3: Web3, account: LocalAccount | None = None, *, receipt_timeout: float = 60.0
    ) -> None:
        self.w3 = w3
        self.account = account
        self.receipt_timeout = receipt_timeout
        self.known: dict[str, str] = {}

    @classmethod
    def connect(cls, rpc_url: str, private_key: PrivateKey | None = None, *, timeout: float = 30.0) -> Chain:
        """Connects over HTTP; ``private_key`` (optional) signs transactions."""
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        return cls(w3, Account.from_key(private_key) if private_key is not None else None)

    def with_account(self, private_key: PrivateKey) -> Chain:
        """The same connection and known contracts, signing with another key."""
        other = Chain(self.w3, Account.from_key(private_key), receipt_timeout=self.receipt_timeout)
        other.known = self.known
        return other

    @property
    def address(self) -> ChecksumAddress:
        """The signing account's address; ChainError when this Chain has no account."""
        if self.account is None:
            raise TransactionFailed("this Chain has no account: pass private_key to send transactions")
        return self.account.address

    @cached_property
    def chain_id(self) -> int:
        """The endpoint's chain id."""
        try:
            return int(self.w3.eth.chain_id)
        except Exception as exc:
            raise translate_error(exc) from exc

    def block_number(self) -> int:
        """The latest block number."""
        try:
            return int(self.w3.eth.block_number)
        except Exception as exc:
            raise translate_error(exc) from exc

    def contract(self, name: str, address: str) -> Contract:
        """A web3 contract object for ``name`` at ``address`` (and remembers it for event decoding)."""
        checksum = to_checksum_address(address)
        self.known[checksum] = name
        return self.w3.eth.contract(address=checksum, abi=list(load_artifact(name).abi))

    def call(self, fn: ContractFunction) -> Any:
        """Runs a view function; reverts raise the matching ContractRevert."""
        try:
            return fn.call()
        except Exception as exc:
            raise translate_error(exc) from exc

    def send(self, fn: ContractFunction, *, value: int = 0) -> TxResult:
        """Estimates, signs, sends and waits for a transaction; reverts raise the matching ContractRevert."""
        try:
            params: TxParams = {
                "from": self.address,
                "nonce": self.w3.eth.get_transaction_count(self.address, "pending"),
                "value": Wei(value),
                "chainId": self.chain_id,
            }
            # Estimate against the pending block, the one the transaction will be mined in: a rule such as
            # the court's "commitment in an EARLIER block" fails when simulated in the latest block.
            params["gas"] = fn.estimate_gas(params, block_identifier="pending")
            tx = fn.build_transaction(params)
        except ChainError:
            raise
        except Exception as exc:  # estimate_gas reverts here, with the revert data
            raise translate_error(exc) from exc
        return self._send_raw(tx)

    def deploy(self, name: str, *args: Any) -> tuple[str, TxResult]:
        """Deploys ``name`` with constructor ``args``; returns (address, result)."""
        art = load_artifact(name)
        factory = self.w3.eth.contract(abi=list(art.abi), bytecode=art.bytecode)
        try:
            tx = factory.constructor(*args).build_transaction(
                {
                    "from": self.address,
                    "nonce": self.w3.eth.get_transaction_count(self.address, "pending"),
                    "chainId": self.chain_id,
                }
            )
        except Exception as exc:
            raise translate_error(exc) from exc
        result, receipt = self._send_raw_with_receipt(tx)
        address = to_checksum_address(receipt["contractAddress"])
        self.known[address] = name
        log.info("deployed %s at %s (block %d)", name, address, result.block_number)
        return address, result

    def _send_raw(self, tx: Mapping[str, Any]) -> TxResult:
        return self._send_raw_with_receipt(tx)[0]

    def _send_raw_with_receipt(self, tx: Mapping[str, Any]) -> tuple[TxResult, Any]:
        if self.account is None:
            raise TransactionFailed("this Chain has no account: pass private_key to send transactions")
        signed = self.account.sign_transaction(dict(tx))
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)
        except Exception as exc:
            raise translate_error(exc) from exc
        if receipt["status"] != 1:
            raise TransactionFailed(f"transaction 0x{bytes(tx_hash).hex()} reverted (status 0)")
        result = TxResult(
            transaction_hash=bytes(tx_hash),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            events=tuple(self.decode_logs(receipt["logs"])),
        )
        return result, receipt

    def decode_logs(self, logs: Iterable[Any]) -> list[ChainEvent]:
        """Decodes the logs of known Layermarket contracts; other logs are skipped."""
        events: list[ChainEvent] = []
        for entry in logs:
            address = to_checksum_address(entry["address"])
            name = self.known.get(address)
            if name is None or not entry["topics"]:
                continue
            event_name = _event_names(name).get(bytes(entry["topics"][0]))
            if event_name is None:
                continue
            contract = self.w3.eth.contract(address=address, abi=list(load_artifact(name).abi))
            decoded = getattr(contract.events, event_name)().process_log(entry)
            events.append(
                ChainEvent(
                    contract=name,
                    name=event_name,
                    args={k: _plain(v) for k, v in decoded["args"].items()},
                    address=address,
                    block_number=int(entry["blockNumber"]),
                    transaction_hash=bytes(entry["transactionHash"]),
                    log_index=int(entry["logIndex"]),
                )
            )
        return events


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):  # HexBytes is a bytes subclass
        return bytes(value)
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    return value


_EVENT_NAMES: dict[str, dict[bytes, str]] = {}


def _event_names(contract_name: str) -> dict[bytes, str]:
    """topic0 -> event name for one contract."""
    if contract_name not in _EVENT_NAMES:
        table: dict[bytes, str] = {}
        for entry in load_artifact(contract_name).abi:
            if entry["type"] == "event":
                types = ",".join(i["type"] for i in entry["inputs"])
                table[keccak(text=f"{entry['name']}({types})")] = entry["name"]
        _EVENT_NAMES[contract_name] = table
    return _EVENT_NAMES[contract_name]
