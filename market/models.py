"""The market's tables (SQLAlchemy 2, the same on SQLite and PostgreSQL).

Token amounts are uint256 on-chain, wider than any SQL integer: they are stored as decimal strings and
compared in Python. Times are Unix seconds (int) so SQLite and PostgreSQL agree without time zones.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class ModelRow(Base):
    """A model the market routes for: its id and how many decoder layers a route must cover."""

    __tablename__ = "models"

    model_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    num_layers: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger)


class OperatorRow(Base):
    """An operator's on-chain state, folded from its staking and court events by the indexer."""

    __tablename__ = "operators"

    operator: Mapped[str] = mapped_column(String(42), primary_key=True)
    bonded: Mapped[str] = mapped_column(String(80), default="0")
    unbonding: Mapped[str] = mapped_column(String(80), default="0")
    slashed: Mapped[str] = mapped_column(String(80), default="0")
    jailed_until: Mapped[int] = mapped_column(BigInteger, default=0)
    registered: Mapped[bool] = mapped_column(Boolean, default=False)
    peer_id_hex: Mapped[str | None] = mapped_column(String(260), nullable=True)
    model_id: Mapped[str | None] = mapped_column(String(66), nullable=True)
    layer_start: Mapped[int | None] = mapped_column(Integer, nullable=True)
    layer_end: Mapped[int | None] = mapped_column(Integer, nullable=True)
    price_per_token: Mapped[str | None] = mapped_column(String(80), nullable=True)
    updated_block: Mapped[int] = mapped_column(BigInteger, default=0)


class ChainEventRow(Base):
    """One indexed log; the operators table is always a fold over these (so a reorg can be undone)."""

    __tablename__ = "chain_events"
    __table_args__ = (Index("ix_chain_events_operator_order", "operator", "block_number", "log_index"),)

    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_hash: Mapped[str] = mapped_column(String(66))
    tx_hash: Mapped[str] = mapped_column(String(66))
    name: Mapped[str] = mapped_column(String(64))
    operator: Mapped[str] = mapped_column(String(42))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    block_time: Mapped[int] = mapped_column(BigInteger, default=0)


class ChainBlockRow(Base):
    """Hashes of the most recent blocks read, to notice a reorg by comparing hashes."""

    __tablename__ = "chain_blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))


class ChainCursorRow(Base):
    """Where the indexer resumes: the next block to read, per (chain, staking contract)."""

    __tablename__ = "chain_cursor"

    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    next_block: Mapped[int] = mapped_column(BigInteger)


class NodeRow(Base):
    """A serving node's latest heartbeat, probes and reputation; one per operator (as on-chain)."""

    __tablename__ = "nodes"
    __table_args__ = (Index("ix_nodes_model", "model_id"),)

    operator: Mapped[str] = mapped_column(String(42), primary_key=True)
    peer_id: Mapped[str] = mapped_column(String(128), unique=True)
    model_id: Mapped[str] = mapped_column(String(66))
    layer_start: Mapped[int] = mapped_column(Integer)
    layer_end: Mapped[int] = mapped_column(Integer)
    multiaddrs: Mapped[list[Any]] = mapped_column(JSON)
    price_per_token: Mapped[str] = mapped_column(String(80))
    step_ms: Mapped[float] = mapped_column(Float)
    free_sessions: Mapped[int] = mapped_column(Integer)
    kv_free_bytes: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[str] = mapped_column(String(64))
    heartbeat_ts: Mapped[int] = mapped_column(BigInteger)
    """The node's own timestamp of its last heartbeat (must increase)."""
    last_seen: Mapped[int] = mapped_column(BigInteger)
    """The market's clock when the last heartbeat arrived."""
    first_seen: Mapped[int] = mapped_column(BigInteger)
    rtt_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    probe_failures: Mapped[int] = mapped_column(Integer, default=0)
    uptime: Mapped[float] = mapped_column(Float, default=1.0)
    spot_passed: Mapped[int] = mapped_column(Integer, default=0)
    spot_failed: Mapped[int] = mapped_column(Integer, default=0)
    reliability: Mapped[float] = mapped_column(Float, default=1.0)
    recent_quotes: Mapped[int] = mapped_column(Integer, default=0)
    """Routes handed out with this node since the last reputation pass (load the heartbeat cannot see yet)."""


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_model_created", "model_id", "created_at"),)

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(16))
    route: Mapped[dict[str, Any]] = mapped_column(JSON)
    alternates: Mapped[list[Any]] = mapped_column(JSON)
    price_per_token: Mapped[str] = mapped_column(String(80))
    max_tokens: Mapped[int] = mapped_column(Integer)
    max_cost: Mapped[str] = mapped_column(String(90))
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    client: Mapped[str | None] = mapped_column(String(42), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class TokenTallyRow(Base):
    """Tokens reported by job progress, per report: the dashboard's tokens/s over time."""

    __tablename__ = "token_tally"
    __table_args__ = (Index("ix_token_tally_model_at", "model_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(66))
    at: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int] = mapped_column(Integer)


class ReceiptRow(Base):
    __tablename__ = "receipts"
    __table_args__ = (Index("ux_receipts_step", "job_id", "peer_id", "step_start", "step_end", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id", ondelete="CASCADE"))
    peer_id: Mapped[str] = mapped_column(String(128))
    operator: Mapped[str] = mapped_column(String(42))
    session_id: Mapped[str] = mapped_column(String(66), default="")
    model_id: Mapped[str] = mapped_column(String(66), default="")
    layer_start: Mapped[int] = mapped_column(Integer, default=0)
    layer_end: Mapped[int] = mapped_column(Integer, default=0)
    step_start: Mapped[int] = mapped_column(BigInteger)
    step_end: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int] = mapped_column(BigInteger)
    price_per_token: Mapped[str] = mapped_column(String(80))
    input_digest: Mapped[str] = mapped_column(String(66))
    output_commitment: Mapped[str] = mapped_column(Text)
    client: Mapped[str] = mapped_column(String(42), default="")
    signature: Mapped[str] = mapped_column(String(132))
    signature_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[int] = mapped_column(BigInteger)


class SpotCheckRow(Base):
    __tablename__ = "spot_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id", ondelete="CASCADE"), index=True)
    transcript: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    offending_peers: Mapped[list[Any]] = mapped_column(JSON)
    detail: Mapped[str] = mapped_column(Text, default="")
    validator: Mapped[str | None] = mapped_column(String(42), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


__all__ = [
    "Base",
    "ChainBlockRow",
    "ChainCursorRow",
    "ChainEventRow",
    "JobRow",
    "ModelRow",
    "NodeRow",
    "OperatorRow",
    "ReceiptRow",
    "SpotCheckRow",
    "TokenTallyRow",
]
