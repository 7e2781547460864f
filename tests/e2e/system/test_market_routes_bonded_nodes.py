"""A market routes jobs over bonded nodes, end to end, with every part a real process.

Anvil with the deployed contracts, ``market-server serve`` + ``worker --beat`` indexing that chain, and two
``market-node serve`` processes (tiny Llama, layers 0:4 and 4:8) that staked and registered through
``market-node stake``/``register`` and heartbeat to the market (``conftest.py`` starts them). A client
asks the market for a quote, drives a session over the quoted route with the stage client, and forwards
the receipts the nodes signed; then a node stops and the market stops routing to it.

The tests share one system (module scope) and run in file order; the last one stops a node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from protocol.eip712 import Domain
from protocol.market_api import Quote, ReceiptSubmission
from protocol.messages import PaymentTerms, SignedReceipt
from protocol.receipts import verify_receipt
from protocol.stage_client import StageClient
from tests.e2e.daemon.conftest import assert_same_greedy_tokens, reference_tokens
from tests.e2e.system.conftest import HEARTBEAT_TTL_S, System, wait_for

# py-libp2p 0.8 leaves some outbound TCP sockets to the GC even after host.close(); that warning is
# theirs, every other unraisable exception still fails the test.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

PROMPT = [5, 17, 42, 99, 7, 300]
NEW_TOKENS = 12
CLIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # anvil's account 1 pays; any address works here


def _eos(model_dir: Path) -> int | None:
    import json

    eos: int | None = json.loads((model_dir / "config.json").read_text())["eos_token_id"]
    return eos


@pytest.fixture(scope="module")
def job(system: System) -> tuple[Quote, list[int], list[SignedReceipt]]:
    """A quote from the market, and a session driven over its route: (quote, tokens, receipts)."""
    with system.http() as http:
        answer = http.post("/v1/quotes", json={"model_id": system.model_id, "max_tokens": NEW_TOKENS})
        assert answer.status_code == 201, answer.text
        quote = Quote.model_validate(answer.json())
        progress = {"status": "running", "tokens": 0}
        assert http.post(f"/v1/jobs/{quote.job_id}/progress", json=progress).is_success

    async def run() -> tuple[list[int], list[SignedReceipt]]:
        route = [hop.stage_hop() for hop in quote.route.hops]
        async with (
            StageClient.start(step_timeout_s=30) as client,
            client.session(
                route,
                max_length=len(PROMPT) + NEW_TOKENS,
                model_id=bytes.fromhex(system.model_id[2:]),
                payment=PaymentTerms(CLIENT, quote.price_per_token),
                receipt_every=4,
            ) as session,
        ):
            tokens = await session.generate(PROMPT, NEW_TOKENS)
            return tokens, await session.close()

    tokens, receipts = trio.run(run)
    with system.http() as http:
        done = {"status": "completed", "tokens": len(tokens)}
        assert http.post(f"/v1/jobs/{quote.job_id}/progress", json=done).is_success
    return quote, tokens, receipts


def test_directory_lists_both_nodes_bonded_live_and_the_model_covered(system: System) -> None:
    nodes = {n["peer_id"]: n for n in system.directory()}
    for operator in system.operators:
        node = nodes[operator.peer_id]
        assert node["operator"] == operator.account.address
        assert (node["layer_start"], node["layer_end"]) == operator.layers
        assert node["price_per_token"] == operator.price
        assert node["bonded"] and node["live"] and not node["jailed"] and node["routable"]
        assert node["multiaddrs"] == [f"/ip4/127.0.0.1/tcp/{operator.port}"]
    with system.http() as http:
        model = http.get(f"/v1/models/{system.model_id}").json()
    assert model["complete"] is True
    assert model["coverage"] == [1] * system.num_layers


def test_quote_routes_through_both_nodes_in_layer_order(
    system: System, job: tuple[Quote, list[int], list[SignedReceipt]]
) -> None:
    quote, _, _ = job
    hops = [(h.peer_id, h.operator, h.layer_start, h.layer_end, h.price_per_token) for h in quote.route.hops]
    assert hops == [
        (o.peer_id, o.account.address, o.layers[0], o.layers[1], o.price) for o in system.operators
    ]
    assert quote.price_per_token == sum(o.price for o in system.operators)
    assert quote.max_cost == quote.price_per_token * NEW_TOKENS


def test_session_over_the_quoted_route_matches_single_process_greedy_tokens(
    system: System, job: tuple[Quote, list[int], list[SignedReceipt]]
) -> None:
    _, tokens, _ = job
    assert len(tokens) == NEW_TOKENS
    reference = reference_tokens(system.model_dir, PROMPT, NEW_TOKENS)
    assert_same_greedy_tokens(tokens, reference, _eos(system.model_dir))


def _submission(receipt: SignedReceipt, quote: Quote) -> dict[str, Any]:
    peer = next(h.peer_id for h in quote.route.hops if h.operator == receipt.node)
    return ReceiptSubmission.from_receipt(receipt.receipt(), receipt.signature, peer).model_dump(mode="json")


def test_market_accepts_the_receipts_the_nodes_signed_for_the_job(
    system: System, job: tuple[Quote, list[int], list[SignedReceipt]]
) -> None:
    quote, _, receipts = job
    court = Domain(system.deployment.chain_id, system.deployment.address("SpotCheckCourt"))
    assert receipts and all(verify_receipt(r.receipt(), r.signature, court) for r in receipts)
    assert {r.node for r in receipts} == {o.account.address for o in system.operators}
    with system.http() as http:
        for receipt in receipts:
            answer = http.post(f"/v1/jobs/{quote.job_id}/receipts", json=_submission(receipt, quote))
            assert answer.status_code == 201, answer.text
            assert answer.json()["signature_verified"] is True
        # the same receipt again is the same record (idempotent); a doctored one is refused
        again = http.post(f"/v1/jobs/{quote.job_id}/receipts", json=_submission(receipts[0], quote))
        assert again.status_code == 201
        doctored = {**_submission(receipts[0], quote), "tokens": receipts[0].tokens + 1}
        refused = http.post(f"/v1/jobs/{quote.job_id}/receipts", json=doctored)
        assert refused.status_code == 422 and refused.json()["error"] == "bad_signature"
        record = http.get(f"/v1/jobs/{quote.job_id}").json()
    assert record["status"] == "completed" and record["tokens"] == NEW_TOKENS
    assert record["receipts"] == len(receipts)
    for operator in system.operators:
        served = [r for r in receipts if r.node == operator.account.address]
        # every step of the session is covered once: the prompt at the prefill, then one per decode
        assert sum(r.tokens for r in served) == len(PROMPT) + NEW_TOKENS - 1
        assert {r.price_per_token for r in served} == {operator.price}


def test_a_stopped_node_is_no_longer_routed_and_quotes_say_coverage_is_incomplete(system: System) -> None:
    stopped = system.operators[1]
    assert stopped.node is not None
    assert stopped.node.stop() == 0

    def quote_refused() -> dict[str, Any] | None:
        with system.http() as http:
            answer = http.post("/v1/quotes", json={"model_id": system.model_id, "max_tokens": 4})
        return answer.json() if answer.status_code == 422 else None

    refusal = wait_for(
        quote_refused, HEARTBEAT_TTL_S + 10, lambda: f"quotes refused; directory: {system.directory()}"
    )
    assert refusal["error"] == "no_route"
    assert "layer(s) 4, 5, 6, 7" in refusal["message"]
    nodes = {n["peer_id"]: n for n in system.directory()}
    assert not nodes[stopped.peer_id]["live"] and not nodes[stopped.peer_id]["routable"]
    assert nodes[system.operators[0].peer_id]["routable"]
    with system.http() as http:
        model = http.get(f"/v1/models/{system.model_id}").json()
    assert model["complete"] is False and model["coverage"] == [1, 1, 1, 1, 0, 0, 0, 0]
