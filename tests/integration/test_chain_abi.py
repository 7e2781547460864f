"""The Python side covers the exported ABIs exactly: a method per contract function, an exception class
per custom error (same selector), and the exported artifacts are what the bindings load.
(No process is needed; these sit beside the anvil tests because they guard the same bindings.)"""

from __future__ import annotations

import re

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

import protocol.chain
from protocol.chain import MarketToken, NodeStaking, PaymentEscrow, SpotCheckCourt, load_artifact
from protocol.chain._binding import Binding
from protocol.chain.abi import CONTRACT_NAMES
from protocol.chain.errors import (
    ERRORS_BY_SELECTOR,
    EscrowInsufficientDeposit,
    SolidityError,
    SolidityPanic,
    UnknownContractError,
    decode_revert,
)

BINDINGS: dict[str, type[Binding]] = {
    "MarketToken": MarketToken,
    "NodeStaking": NodeStaking,
    "PaymentEscrow": PaymentEscrow,
    "SpotCheckCourt": SpotCheckCourt,
}


def _snake(name: str) -> str:
    if name.isupper() or "_" in name:
        return name.lower()
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@pytest.mark.parametrize("contract", CONTRACT_NAMES)
def test_every_contract_function_has_a_binding_method(contract: str) -> None:
    functions = {e["name"] for e in load_artifact(contract).abi if e["type"] == "function"}
    missing = sorted(f for f in functions if not callable(getattr(BINDINGS[contract], _snake(f), None)))
    assert missing == []


def test_every_custom_error_in_the_abis_has_a_class_with_its_selector() -> None:
    in_abi: dict[bytes, str] = {}
    for contract in CONTRACT_NAMES:
        for e in load_artifact(contract).abi:
            if e["type"] == "error":
                sig = f"{e['name']}({','.join(i['type'] for i in e['inputs'])})"
                in_abi[keccak(text=sig)[:4]] = e["name"]
    known = {
        sel: cls.__name__
        for sel, cls in ERRORS_BY_SELECTOR.items()
        if cls not in (SolidityError, SolidityPanic)
    }
    assert known == in_abi


def test_revert_data_decodes_to_the_typed_error_with_named_arguments() -> None:
    client = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    data = EscrowInsufficientDeposit.selector + encode(["address", "uint256", "uint256"], [client, 5, 9])
    err = decode_revert(data)
    assert isinstance(err, EscrowInsufficientDeposit)
    assert err.args_by_name == {"client": client, "balance": 5, "needed": 9}
    assert "balance=5" in str(err)


def test_solidity_error_string_and_panic_decode() -> None:
    assert decode_revert(keccak(text="Error(string)")[:4] + encode(["string"], ["nope"])).args_by_name == {
        "message": "nope"
    }
    assert isinstance(
        decode_revert(keccak(text="Panic(uint256)")[:4] + encode(["uint256"], [0x11])), SolidityPanic
    )


def test_unknown_or_malformed_revert_data_is_kept_raw() -> None:
    unknown = decode_revert(b"\xde\xad\xbe\xef")
    assert isinstance(unknown, UnknownContractError) and unknown.data == b"\xde\xad\xbe\xef"
    truncated = decode_revert(EscrowInsufficientDeposit.selector + b"\x00" * 5)
    assert isinstance(truncated, UnknownContractError)


def test_artifacts_carry_abi_and_creation_bytecode() -> None:
    for name in CONTRACT_NAMES:
        art = load_artifact(name)
        assert art.name == name and art.source_name.endswith(f"{name}.sol")
        assert len(art.bytecode) > 1000
    with pytest.raises(ValueError):
        load_artifact("HookToken")  # test mocks are not exported


def test_chain_package_exports_its_curated_public_api() -> None:
    assert all(hasattr(protocol.chain, name) for name in protocol.chain.__all__)
    assert sorted(protocol.chain.__all__) == sorted(set(protocol.chain.__all__))
