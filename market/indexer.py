"""The chain indexer: staking and court events into the ``operators`` table, surviving restarts and reorgs.

It reads logs through an :class:`EventSource` (``market.chain_source.Web3EventSource`` for a real JSON-RPC
chain; tests of the storage logic may pass any other source), and keeps three things in the database, all
updated in one transaction per poll so a crash never leaves them out of step:

- ``chain_cursor``: the next block to read, per source (chain id + contract address);
- ``chain_events``: every indexed log with its block hash; ``operators`` is always a fold over these;
- ``chain_blocks``: the hashes of the last ``reorg_depth`` blocks read.

A poll first compares the stored hashes of recent blocks with the chain's. From the lowest block whose
hash changed, it deletes stored events and hashes, rewinds the cursor, and re-folds the affected operators,
then reads forward again. A reorg deeper than ``reorg_depth`` cannot be seen, so ``reorg_depth`` must
exceed the chain's finality depth (12 by default; anvil and L2s with instant finality need less).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from market.db import Database
from market.models import ChainBlockRow, ChainCursorRow, ChainEventRow, OperatorRow
from protocol.errors import TransientError

log = logging.getLogger(__name__)

# Events that change an operator's routability (NodeStaking), and the court's that name an operator.
STAKING_EVENTS = (
    "Bonded",
    "Unbonded",
    "Rebonded",
    "Withdrawn",
    "NodeRegistered",
    "NodeDeregistered",
    "NodeFrozen",
    "NodeUnfrozen",
    "NodeSlashed",
    "NodeJailed",
    "ChallengeOpened",  # SpotCheckCourt; names the challenged operator as `node`
)


class ChainMoved(TransientError):
    """The chain reorganised while a poll was reading it; the next poll reconciles."""


@dataclass(frozen=True)
class ChainLog:
    """One decoded event log."""

    block_number: int
    block_hash: str  # 0x hex
    log_index: int
    tx_hash: str
    name: str  # event name, e.g. "Bonded"
    args: dict[str, Any]  # decoded arguments; bytes as 0x hex, ints as int
    block_time: int = 0


class EventSource(Protocol):
    """Where the indexer reads the chain from."""

    @property
    def source_id(self) -> str:
        """Stable name of what is indexed, e.g. ``31337:0x5FbD...`` (the cursor's key)."""
        ...

    def start_block(self) -> int:
        """The block the contracts were deployed in: indexing starts here."""
        ...

    def head(self) -> int:
        """The latest block number."""
        ...

    def block_hash(self, number: int) -> str | None:
        """The hash of block ``number`` now, or None when the chain is shorter."""
        ...

    def logs(self, from_block: int, to_block: int) -> list[ChainLog]:
        """Decoded logs of the indexed contracts in ``[from_block, to_block]``, in chain order."""
        ...


@dataclass
class PollResult:
    read_from: int
    read_to: int  # inclusive; read_to < read_from when nothing new
    events: int
    reorged_from: int | None = None
    operators: set[str] = field(default_factory=set)


def _operator_of(entry: ChainLog) -> str | None:
    operator = entry.args.get("operator", entry.args.get("node"))
    return str(operator) if operator is not None else None


def fold(operator: str, events: Iterable[ChainEventRow]) -> OperatorRow:
    """An operator's state from its events in chain order (the single definition of that state)."""
    row = OperatorRow(
        operator=operator, bonded="0", unbonding="0", slashed="0", jailed_until=0, registered=False
    )
    bonded = unbonding = slashed = 0
    for event in events:
        a = event.args
        match event.name:
            case "Bonded" | "Rebonded":
                if event.name == "Rebonded":
                    unbonding -= int(a["amount"])
                bonded = int(a["bonded"])
            case "Unbonded":
                bonded -= int(a["amount"])
                unbonding = int(a["unbonding"])
            case "Withdrawn":
                unbonding -= int(a["amount"])
            case "NodeSlashed":
                bonded -= int(a["fromBonded"])
                unbonding -= int(a["fromUnbonding"])
                slashed += int(a["fromBonded"]) + int(a["fromUnbonding"])
            case "NodeJailed":
                row.jailed_until = max(row.jailed_until, int(a["until"]))
            case "NodeRegistered":
                row.registered = True
                row.peer_id_hex = str(a["peerId"]).lower()
                row.model_id = str(a["modelId"]).lower()
                row.layer_start = int(a["layerStart"])
                row.layer_end = int(a["layerEnd"])
                row.price_per_token = str(int(a["pricePerToken"]))
            case "NodeDeregistered":
                row.registered = False
        row.updated_block = event.block_number
    row.bonded, row.unbonding, row.slashed = str(max(bonded, 0)), str(max(unbonding, 0)), str(slashed)
    return row


class Indexer:
    """Polls one event source into the database; safe to run from several workers (one wins each poll)."""

    def __init__(self, db: Database, source: EventSource, reorg_depth: int = 12, batch_blocks: int = 2_000):
        if reorg_depth < 1:
            raise ValueError("reorg_depth must be at least 1")
        self.db = db
        self.source = source
        self.reorg_depth = reorg_depth
        self.batch_blocks = batch_blocks

    def poll(self) -> PollResult:
        """Reconcile recent blocks, then read up to ``batch_blocks`` new ones; one transaction."""
        with self.db.session() as session:
            cursor = session.get(ChainCursorRow, self.source.source_id, with_for_update=True)
            if cursor is None:
                cursor = ChainCursorRow(source=self.source.source_id, next_block=self.source.start_block())
                session.add(cursor)
                session.flush()
            touched: set[str] = set()
            reorged_from = self._reconcile(session, cursor, touched)
            start = cursor.next_block
            end = min(self.source.head(), start + self.batch_blocks - 1)
            count = 0
            if end >= start:
                count = self._read(session, start, end, touched)
                cursor.next_block = end + 1
            self._refold(session, touched)
            session.execute(
                delete(ChainBlockRow).where(ChainBlockRow.number < cursor.next_block - self.reorg_depth)
            )
            if reorged_from is not None:
                log.warning("chain reorg from block %d; re-read and reconciled", reorged_from)
            return PollResult(start, end, count, reorged_from, touched)

    def catch_up(self, max_polls: int = 1_000) -> int:
        """Poll until the cursor reaches the head; returns the number of events read."""
        total = 0
        for _ in range(max_polls):
            result = self.poll()
            total += result.events
            if result.read_to >= self.source.head():
                break
        return total

    def _reconcile(self, session: Session, cursor: ChainCursorRow, touched: set[str]) -> int | None:
        stored = session.scalars(select(ChainBlockRow).order_by(ChainBlockRow.number)).all()
        first_bad = None
        for block in stored:
            if self.source.block_hash(block.number) != block.hash:
                first_bad = block.number
                break
        if first_bad is None:
            return None
        gone = session.scalars(select(ChainEventRow.operator).where(ChainEventRow.block_number >= first_bad))
        touched.update(gone)
        session.execute(delete(ChainEventRow).where(ChainEventRow.block_number >= first_bad))
        session.execute(delete(ChainBlockRow).where(ChainBlockRow.number >= first_bad))
        cursor.next_block = min(cursor.next_block, first_bad)
        return first_bad

    def _read(self, session: Session, start: int, end: int, touched: set[str]) -> int:
        hashes = {
            n: self.source.block_hash(n) for n in range(max(start, end - self.reorg_depth + 1), end + 1)
        }
        logs = self.source.logs(start, end)
        for entry in logs:
            known = hashes.get(entry.block_number)
            if known is not None and known != entry.block_hash:
                raise ChainMoved(f"block {entry.block_number} changed while reading; retrying next poll")
        # Re-reading a range (after a crash between read and commit is impossible: one transaction) is
        # still made idempotent by clearing it first.
        session.execute(
            delete(ChainEventRow).where(
                ChainEventRow.block_number >= start, ChainEventRow.block_number <= end
            )
        )
        count = 0
        for entry in logs:
            operator = _operator_of(entry)
            if operator is None or entry.name not in STAKING_EVENTS:
                continue
            session.add(
                ChainEventRow(
                    block_number=entry.block_number,
                    log_index=entry.log_index,
                    block_hash=entry.block_hash,
                    tx_hash=entry.tx_hash,
                    name=entry.name,
                    operator=operator,
                    args=entry.args,
                    block_time=entry.block_time,
                )
            )
            touched.add(operator)
            count += 1
        for number, block_hash in hashes.items():
            if block_hash is not None:
                session.merge(ChainBlockRow(number=number, hash=block_hash))
        session.flush()
        return count

    def _refold(self, session: Session, operators: set[str]) -> None:
        for operator in sorted(operators):
            events = session.scalars(
                select(ChainEventRow)
                .where(ChainEventRow.operator == operator)
                .order_by(ChainEventRow.block_number, ChainEventRow.log_index)
            ).all()
            session.merge(fold(operator, events))


__all__ = ["STAKING_EVENTS", "ChainLog", "ChainMoved", "EventSource", "Indexer", "PollResult", "fold"]
