"""Settings of the market service (``[market]`` in layermarket.toml, ``LAYERMARKET_MARKET_*``)."""

from __future__ import annotations

from pathlib import Path

from protocol.settings import LayermarketSettings


class MarketSettings(LayermarketSettings, section="market"):
    """Everything ``market-server`` and its Celery worker read; code receives this, never the env."""

    data_dir: Path = Path(".market")
    """Where the default SQLite database and the embedded broker's SQLite file live."""
    database_url: str | None = None
    """SQLAlchemy URL, e.g. ``postgresql+psycopg://market@db/market``; None: SQLite under ``data_dir``."""
    broker_url: str | None = None
    """Celery broker (``redis://...`` or ``amqp://...``); None: kombu's SQLAlchemy transport on SQLite."""
    auto_migrate: bool = True
    """Run the Alembic migrations to head when the app or worker starts."""
    admin_token: str | None = None
    """When set, ``POST /v1/models`` needs ``Authorization: Bearer <token>``."""

    host: str = "127.0.0.1"
    port: int = 9545
    public_url: str = "http://127.0.0.1:9545"
    """How validators reach this market (sent with spot-check tasks)."""

    heartbeat_interval_s: int = 10
    """Nodes are told to send a heartbeat this often."""
    heartbeat_ttl_s: int = 30
    """A node whose last heartbeat is older than this is not live."""
    heartbeat_max_skew_s: int = 60
    """Heartbeats timestamped further than this from the market's clock are refused."""
    quote_ttl_s: int = 60
    planner_refresh_s: float = 1.0
    """The planner's in-memory snapshot of a model's pool is rebuilt at most this often."""
    default_rtt_ms: float = 20.0
    """Latency assumed for a node that has not been probed yet."""
    spread_epsilon: float = 0.10
    """Replicas within this fraction of the best hop's cost share the load at random."""

    # chain indexer
    chain_rpc_url: str | None = None
    """JSON-RPC endpoint; None: no indexer, and no node is routable unless dev_trust_heartbeats."""
    deployment_file: Path | None = None
    """``deployments/<chainId>.json`` with the staking and court addresses and the deploy block."""
    reorg_depth: int = 12
    """Blocks re-read on every poll and reconciled by hash."""
    index_batch_blocks: int = 2_000
    dev_trust_heartbeats: bool = False
    """DEVELOPMENT ONLY: treat the operator of any validly signed heartbeat as bonded (no chain)."""

    # celery
    index_interval_s: float = 5.0
    probe_interval_s: float = 30.0
    reputation_interval_s: float = 30.0
    probe_timeout_s: float = 2.0
    validator_task: str = "validator.spotcheck.verify"
    """Celery task name the validator worker (market-validator) consumes; the market sends by name."""
    spotcheck_queue: str = "spotcheck"
    task_queue: str = "market"
    """Queue the market's own tasks go to (tests use a fresh name per test on a shared broker)."""

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'market.sqlite').resolve()}"

    def resolved_broker_url(self) -> str:
        if self.broker_url:
            return self.broker_url
        return f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"


__all__ = ["MarketSettings"]
