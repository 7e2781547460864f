"""The market's API models meet the stage protocol's: quoted hops open sessions, signed receipts submit."""

from __future__ import annotations

from eth_account import Account

from protocol.eip712 import Domain
from protocol.market_api import Hop, ReceiptSubmission
from protocol.messages import Open
from protocol.receipts import Receipt, recover_receipt_signer, sign_receipt

COURT = Domain(31337, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
PEER = "12D3KooWLmzBP4e4vSEd6hZNDHpBxzVXTdcqGMLfEbtNhBMUB7Yd"


def test_a_quoted_hop_opens_a_session_at_its_own_price() -> None:
    quoted = Hop(
        peer_id=PEER,
        multiaddrs=["/ip4/127.0.0.1/tcp/4001"],
        operator="0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        layer_start=4,
        layer_end=8,
        price_per_token=1_500,
        expected_ms=3.0,
    )
    hop = quoted.stage_hop()
    assert (hop.peer_id, hop.addrs, hop.layer_start, hop.layer_end) == (
        PEER,
        ("/ip4/127.0.0.1/tcp/4001",),
        4,
        8,
    )
    assert hop.price_per_token == 1_500
    opened = Open("ab" * 16, (hop,), 0, b"\0" * 32, 16)
    assert opened.hop.price_per_token == 1_500


def test_a_signed_receipt_submits_field_for_field_and_still_recovers_to_its_node() -> None:
    node = Account.create()
    receipt = Receipt(
        node=node.address,
        session_id=b"\0" * 16 + b"\1" * 16,
        model_id=b"\2" * 32,
        layer_start=0,
        layer_end=4,
        step_start=4,
        step_end=8,
        input_digest=b"\3" * 32,
        output_commitment=b"\4" * 32,
        tokens=4,
        price_per_token=2**70,  # wider than a JSON double: must stay exact
        client="0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    )
    signature = sign_receipt(receipt, node.key, COURT)
    submission = ReceiptSubmission.from_receipt(receipt, signature, PEER)
    again = ReceiptSubmission.model_validate_json(submission.model_dump_json())
    assert again.to_receipt() == receipt
    signer = recover_receipt_signer(again.to_receipt(), bytes.fromhex(again.signature[2:]), COURT)
    assert signer == node.address
    assert again.peer_id == PEER
