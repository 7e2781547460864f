"""The indexer's event source for a real JSON-RPC chain, through ``protocol.chain`` (no ABI code here).

    chain = Chain.connect("http://127.0.0.1:8545")
    source = ChainEventSource(chain, Deployment.load(31337, Path("deployments")))
    Indexer(db, source).catch_up()

Logs of ``NodeStaking`` and ``SpotCheckCourt`` are fetched with one ``eth_getLogs`` per range and decoded
by ``Chain.decode_logs`` (the bindings' ABIs); values become JSON-storable (bytes as 0x hex). Transport
failures surface as ``protocol.chain.errors.RpcUnavailable`` (transient: the Celery task retries).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from market.indexer import ChainLog
from market.settings import MarketSettings
from protocol.chain import Chain, Deployment
from protocol.chain.client import translate_error
from protocol.eip712 import Domain

INDEXED_CONTRACTS = ("NodeStaking", "SpotCheckCourt")


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class ChainEventSource:
    """The staking and court events of one deployment."""

    def __init__(self, chain: Chain, deployment: Deployment, contracts: tuple[str, ...] = INDEXED_CONTRACTS):
        self._chain = chain
        self._addresses = []
        for name in contracts:
            address = deployment.address(name)
            chain.contract(name, address)  # registers the address so decode_logs knows its events
            self._addresses.append(address)
        self._start = deployment.deploy_block
        self._source_id = f"{deployment.chain_id}:{deployment.address('NodeStaking')}"

    @property
    def source_id(self) -> str:
        return self._source_id

    def start_block(self) -> int:
        return self._start

    def head(self) -> int:
        return self._chain.block_number()

    def block_hash(self, number: int) -> str | None:
        try:
            block = self._chain.w3.eth.get_block(number)
        except Exception as exc:
            if type(exc).__name__ == "BlockNotFound":
                return None
            raise translate_error(exc) from exc
        return "0x" + bytes(block["hash"]).hex()

    def logs(self, from_block: int, to_block: int) -> list[ChainLog]:
        try:
            raw = self._chain.w3.eth.get_logs(
                {"address": self._addresses, "fromBlock": from_block, "toBlock": to_block}  # type: ignore[typeddict-item]
            )
        except Exception as exc:
            raise translate_error(exc) from exc
        out = []
        for entry in sorted(raw, key=lambda e: (e["blockNumber"], e["logIndex"])):
            for event in self._chain.decode_logs([entry]):
                out.append(
                    ChainLog(
                        block_number=event.block_number,
                        block_hash="0x" + bytes(entry["blockHash"]).hex(),
                        log_index=event.log_index,
                        tx_hash="0x" + event.transaction_hash.hex(),
                        name=event.name,
                        args={k: _plain(v) for k, v in event.args.items()},
                    )
                )
        return out


def source_from_settings(settings: MarketSettings) -> ChainEventSource | None:
    """The event source named by the settings, or None when no chain is configured (chain_rpc_url)."""
    if not settings.chain_rpc_url:
        return None
    chain = Chain.connect(settings.chain_rpc_url)
    if settings.deployment_file is not None:
        deployment = Deployment.load_file(settings.deployment_file)
    else:
        deployment = Deployment.load(chain.chain_id, Path("deployments"))
    return ChainEventSource(chain, deployment)


def court_domain(settings: MarketSettings) -> Domain | None:
    """The EIP-712 domain receipts are signed under (the deployment's SpotCheckCourt), or None without a
    deployment. A configured but unreadable deployment is an error, never a silent None."""
    if settings.deployment_file is not None:
        deployment = Deployment.load_file(settings.deployment_file)
    elif settings.chain_rpc_url:
        deployment = Deployment.load(Chain.connect(settings.chain_rpc_url).chain_id, Path("deployments"))
    else:
        return None
    return Domain(deployment.chain_id, deployment.address("SpotCheckCourt"))


__all__ = ["INDEXED_CONTRACTS", "ChainEventSource", "court_domain", "source_from_settings"]
