"""The chain indexer against a real anvil with the real contracts (deployed by protocol.chain.deploy).

Bond and register through the bindings, index from the deploy block, survive a restart, and undo a
reorg (``evm_snapshot``/``evm_revert`` then new blocks at the same heights) by reconciling block hashes;
on each backend (SQLite, PostgreSQL).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import base58
import pytest
from fastapi.testclient import TestClient

from market.chain_source import ChainEventSource
from market.db import Database, migrate
from market.indexer import Indexer
from market.models import ChainEventRow, OperatorRow
from protocol.chain import (
    AnvilNotFound,
    Chain,
    Deployment,
    DeployParams,
    MarketToken,
    NodeRecord,
    NodeStaking,
    SpotCheckCourt,
    deploy,
    start_anvil,
)
from protocol.chain.anvil import AnvilProcess
from protocol.receipts import Receipt, sign_receipt
from tests.integration.market.conftest import Backend
from tests.unit.market.helpers import MODEL_ID, Seeder, heartbeat, peer_id

pytestmark = pytest.mark.timeout(120)
TOKEN = 10**18


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilProcess]:
    try:
        process = start_anvil()
    except AnvilNotFound as exc:
        pytest.skip(f"anvil is not installed (npm @foundry-rs/anvil): {exc}")
    with process:
        yield process


@pytest.fixture
def deployment(anvil: AnvilProcess) -> tuple[Chain, Deployment]:
    chain = Chain.connect(anvil.rpc_url, private_key=anvil.accounts[0].private_key)
    return chain, deploy(chain)


def _rpc(chain: Chain, method: str, *params: object) -> object:
    response = chain.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    return response["result"]


def _operator(db: Database, address: str) -> OperatorRow | None:
    with db.session() as session:
        return session.get(OperatorRow, address)


def test_indexer_follows_staking_across_restart_and_reorg(
    backend: Backend, anvil: AnvilProcess, deployment: tuple[Chain, Deployment]
) -> None:
    chain, deployed = deployment
    operator = anvil.accounts[1]
    staking_address = deployed.address("NodeStaking")
    MarketToken(chain, deployed.address("MarketToken")).transfer(operator.address, 1_000 * TOKEN)
    as_operator = chain.with_account(operator.private_key)
    MarketToken(as_operator, deployed.address("MarketToken")).approve(staking_address, 1_000 * TOKEN)
    staking = NodeStaking(as_operator, staking_address)
    staking.bond(400 * TOKEN)
    record = NodeRecord(
        peer_id=base58.b58decode(peer_id(1)),
        model_id=bytes.fromhex(MODEL_ID[2:]),
        layer_start=0,
        layer_end=16,
        price_per_token=7,
        endpoint_hash=b"\x00" * 32,
    )
    staking.register(record)

    url = backend.settings.resolved_database_url()
    migrate(url)
    db = Database(url)
    source = ChainEventSource(Chain.connect(anvil.rpc_url), deployed)
    assert Indexer(db, source, reorg_depth=8).catch_up() == 2
    row = _operator(db, operator.address)
    assert row is not None and row.registered and row.bonded == str(400 * TOKEN)
    assert (row.model_id, row.layer_start, row.layer_end, row.price_per_token) == (MODEL_ID, 0, 16, "7")
    assert row.peer_id_hex == "0x" + base58.b58decode(peer_id(1)).hex()

    # Restart: a new process (new Database, new source) resumes from the stored cursor.
    snapshot = _rpc(chain, "evm_snapshot")
    staking.unbond(150 * TOKEN)
    db.dispose()
    db = Database(url)
    restarted = Indexer(db, ChainEventSource(Chain.connect(anvil.rpc_url), deployed), reorg_depth=8)
    assert restarted.catch_up() == 1
    row = _operator(db, operator.address)
    assert row is not None and (row.bonded, row.unbonding) == (str(250 * TOKEN), str(150 * TOKEN))

    # Reorg: the unbond's block is replaced by empty blocks at the same heights.
    unbond_block = chain.block_number()
    _rpc(chain, "evm_revert", snapshot)
    _rpc(chain, "anvil_mine", 3)
    assert chain.block_number() > unbond_block
    result = restarted.poll()
    assert result.reorged_from is not None and result.reorged_from <= unbond_block
    row = _operator(db, operator.address)
    assert row is not None and (row.bonded, row.unbonding) == (str(400 * TOKEN), "0")
    with db.session() as session:
        assert [e.name for e in session.query(ChainEventRow).order_by(ChainEventRow.block_number)] == [
            "Bonded",
            "NodeRegistered",
        ]
    db.dispose()


def test_node_slashed_by_the_court_stops_being_routed_to(
    backend: Backend, anvil: AnvilProcess, deployment: tuple[Chain, Deployment], client: TestClient
) -> None:
    """The whole path: stake and register on-chain → indexed → heartbeat → routable → challenged,
    voted, resolved in the real court → indexed (frozen, slashed, jailed) → no longer routable."""
    owner, deployed = deployment
    keys = [a.private_key for a in anvil.accounts]
    node, challenger = owner.with_account(keys[1]), owner.with_account(keys[6])
    validators = [owner.with_account(k) for k in keys[3:6]]
    token = MarketToken(owner, deployed.address("MarketToken"))
    for who in (node, *validators, challenger):
        token.mint(who.address, 100_000 * TOKEN)
        for spender in ("NodeStaking", "SpotCheckCourt"):
            MarketToken(who, deployed.address("MarketToken")).approve(deployed.address(spender), 2**256 - 1)
    staking = NodeStaking(node, deployed.address("NodeStaking"))
    staking.bond(400 * TOKEN)
    staking.register(
        NodeRecord(base58.b58decode(peer_id(1)), bytes.fromhex(MODEL_ID[2:]), 0, 16, 7, b"\x00" * 32)
    )
    for v in validators:
        SpotCheckCourt(v, deployed.address("SpotCheckCourt")).bond_validator(
            DeployParams().min_validator_bond
        )
    _rpc(owner, "evm_increaseTime", 1)  # validators must have bonded before the challenge opens
    _rpc(owner, "evm_mine")

    state = client.app.state.market  # type: ignore[attr-defined]
    indexer = Indexer(state.db, ChainEventSource(Chain.connect(anvil.rpc_url), deployed), reorg_depth=8)
    indexer.catch_up()
    seeder = Seeder(client)
    seeder.model(16)
    ack = client.post(
        "/v1/nodes/heartbeat", json=heartbeat(1, 0, 16, private_key=keys[1], price_per_token=7)
    ).json()
    assert ack["routable"] is True, ack
    assert client.post("/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 4}).status_code == 201

    court = SpotCheckCourt(challenger, deployed.address("SpotCheckCourt"))
    receipt = Receipt(node.address, b"\x5e" * 32, bytes.fromhex(MODEL_ID[2:]), 0, 16, 0, 32,
                      b"\x03" * 32, b"\x04" * 32, 32, 7, anvil.accounts[2].address)  # fmt: skip
    signature = sign_receipt(receipt, keys[1], court.domain())
    evidence, salt = b"recomputed fingerprints", b"\x99" * 32
    court.commit_challenge(court.challenge_commitment(challenger.address, receipt, evidence, salt))
    digest = (
        court.challenge(receipt, signature, evidence, salt).named("ChallengeOpened")[0].args["receiptDigest"]
    )
    for v in validators:
        SpotCheckCourt(v, deployed.address("SpotCheckCourt")).vote(digest, True)
    _rpc(owner, "evm_increaseTime", DeployParams().voting_period + 1)
    _rpc(owner, "evm_mine")
    court.resolve(digest)

    indexer.catch_up()
    with state.db.session() as session:
        names = [e.name for e in session.query(ChainEventRow).order_by(ChainEventRow.block_number)]
        row = session.get(OperatorRow, node.address)
    assert {"ChallengeOpened", "NodeFrozen", "NodeSlashed", "NodeJailed"} <= set(names)
    assert row is not None and int(row.slashed) == 400 * TOKEN * DeployParams().slash_bps // 10_000
    assert row.jailed_until > int(time.time())
    again = heartbeat(1, 0, 16, private_key=keys[1], price_per_token=7, timestamp=int(time.time()) + 1)
    ack = client.post("/v1/nodes/heartbeat", json=again).json()
    assert ack["routable"] is False and "jailed" in ack["reason"]
    refused = client.post("/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 4})
    assert refused.status_code == 422 and refused.json()["error"] == "no_route"
