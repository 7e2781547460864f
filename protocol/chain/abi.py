"""Loads the contracts' ABIs and creation bytecode exported from the Hardhat artifacts (protocol/abi).

>>> from protocol.chain.abi import load_artifact
>>> art = load_artifact("PaymentEscrow")
>>> art.name, len(art.bytecode) > 0, [e["name"] for e in art.abi if e["type"] == "function"][:2]
('PaymentEscrow', True, ['MAX_FEE_BPS', 'VOUCHER_TYPEHASH'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["CONTRACT_NAMES", "Artifact", "load_artifact"]

CONTRACT_NAMES = ("MarketToken", "NodeStaking", "PaymentEscrow", "SpotCheckCourt")


@dataclass(frozen=True)
class Artifact:
    """One contract's ABI and creation bytecode."""

    name: str
    source_name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes


@cache
def load_artifact(name: str) -> Artifact:
    """The exported artifact of ``name`` (one of CONTRACT_NAMES); ValueError for another name."""
    if name not in CONTRACT_NAMES:
        raise ValueError(f"unknown contract {name!r}; known: {', '.join(CONTRACT_NAMES)}")
    raw = json.loads(files("protocol.abi").joinpath(f"{name}.json").read_text(encoding="utf-8"))
    return Artifact(
        name=raw["contractName"],
        source_name=raw["sourceName"],
        abi=tuple(raw["abi"]),
        bytecode=bytes.fromhex(raw["bytecode"].removeprefix("0x")),
    )
