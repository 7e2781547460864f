"""The indexer's storage and reconciliation over a scripted chain: cursor, restarts, reorgs, the fold."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account

from market.db import Database, migrate
from market.indexer import Indexer
from market.models import ChainCursorRow, ChainEventRow, OperatorRow
from tests.unit.market.helpers import ScriptedChain, key, registration_events


def _db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    migrate(url)
    return Database(url)


def _operator(db: Database, index: int) -> OperatorRow | None:
    with db.session() as session:
        return session.get(OperatorRow, Account.from_key(key(index)).address)


def test_events_fold_into_operator_state(tmp_path: Path) -> None:
    db, chain = _db(tmp_path), ScriptedChain()
    chain.mine(*registration_events(0, 0, 8, bonded=1000))
    address = Account.from_key(key(0)).address
    chain.mine(("Unbonded", {"operator": address, "amount": 300, "unbonding": 300, "releaseAt": 99}))
    chain.mine(
        ("NodeSlashed", {"operator": address, "fromBonded": 350, "fromUnbonding": 0}),
        ("NodeJailed", {"operator": address, "until": 2**40}),
    )
    assert Indexer(db, chain).catch_up() == 5
    row = _operator(db, 0)
    assert row is not None
    assert (row.bonded, row.unbonding, row.slashed) == ("350", "300", "350")
    assert row.jailed_until == 2**40 and row.registered and (row.layer_start, row.layer_end) == (0, 8)


def test_cursor_survives_a_restart_and_nothing_is_read_twice(tmp_path: Path) -> None:
    db, chain = _db(tmp_path), ScriptedChain()
    chain.mine(*registration_events(0, 0, 8))
    Indexer(db, chain).catch_up()
    chain.mine(*registration_events(1, 0, 4))
    restarted = Indexer(_db(tmp_path), chain)  # a new process: same database, fresh objects
    assert restarted.catch_up() == 2
    with db.session() as session:
        assert session.get(ChainCursorRow, chain.source_id).next_block == 2  # type: ignore[union-attr]
        assert session.query(ChainEventRow).count() == 4
    assert restarted.poll().events == 0


def test_reorg_within_depth_undoes_orphaned_events(tmp_path: Path) -> None:
    db, chain = _db(tmp_path), ScriptedChain()
    chain.mine(*registration_events(0, 0, 8))
    for _ in range(3):
        chain.mine()
    chain.mine(*registration_events(1, 0, 4))  # block 4: will be orphaned
    indexer = Indexer(db, chain, reorg_depth=4)
    indexer.catch_up()
    assert _operator(db, 1) is not None and _operator(db, 1).registered  # type: ignore[union-attr]
    chain.reorg(2)  # blocks 3 and 4 vanish
    chain.mine()
    chain.mine(*registration_events(2, 4, 8))  # the new block 4 carries another operator
    result = indexer.poll()
    assert result.reorged_from == 3
    orphan = _operator(db, 1)
    assert orphan is not None and not orphan.registered and orphan.bonded == "0"
    assert _operator(db, 2).registered  # type: ignore[union-attr]
    assert _operator(db, 0).registered  # type: ignore[union-attr]


def test_reorg_with_a_longer_new_branch_is_read_to_its_head(tmp_path: Path) -> None:
    db, chain = _db(tmp_path), ScriptedChain()
    chain.mine(*registration_events(0, 0, 8))
    chain.mine()
    indexer = Indexer(db, chain, reorg_depth=4)
    indexer.catch_up()
    chain.reorg(1)
    for _ in range(3):
        chain.mine()
    chain.mine(*registration_events(1, 0, 2))
    indexer.catch_up()
    with db.session() as session:
        assert session.get(ChainCursorRow, chain.source_id).next_block == len(chain.blocks)  # type: ignore[union-attr]
    assert _operator(db, 1) is not None
