"""Background work as Celery tasks, each with an explicit name, small arguments and an idempotent body.

- ``market.index.poll``: one indexer poll (chain events → operators); the cursor and the events move in
  one transaction.
- ``market.probe.sweep``: sends ``market.probe.node`` for every live node.
- ``market.probe.node``: TCP-connect RTT to one node, smoothed into ``rtt_ms``.
- ``market.reputation.update``: uptime, probes and spot checks → reliability; resets recent-quote load.
- ``market.spotcheck.dispatch``: sends one queued spot check to the validators' task; only
  ``queued → dispatched`` once.
- ``market.spotcheck.sweep``: re-dispatches spot checks still queued after a minute (broker was down).

The validator's task is sent *by name* (``settings.validator_task``) to ``settings.spotcheck_queue`` with
``(spotcheck_id, job_id, market_url)``; the validator reads the transcript and receipts over HTTP.
Dispatch sends first and then marks the spot check dispatched: a crash in between sends it twice (the
validator must treat a spot-check id idempotently), never zero times.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from celery import Celery
from sqlalchemy import select

from market import reputation, spotchecks
from market.db import Database, migrate
from market.indexer import EventSource, Indexer
from market.models import NodeRow
from market.probes import probe_rtt_ms, smoothed
from market.settings import MarketSettings
from protocol.errors import TransientError

log = logging.getLogger(__name__)

RETRY = {"autoretry_for": (TransientError, ConnectionError), "retry_backoff": 2, "retry_backoff_max": 60,
         "max_retries": 8, "retry_jitter": True}  # fmt: skip


F = TypeVar("F", bound=Callable[..., Any])


def _task(app: Celery, name: str) -> Callable[[F], F]:
    """``app.task`` with the market's defaults (acks late, retry transient errors with backoff), typed."""
    return cast(Callable[[F], F], app.task(name=name, shared=False, acks_late=True, **RETRY))


class TaskContext:
    """What tasks share in one worker process: settings, a lazily opened database, the event source."""

    def __init__(
        self, settings: MarketSettings, event_source: Callable[[], EventSource | None] | None = None
    ) -> None:
        self.settings = settings
        self._db: Database | None = None
        self._event_source_factory = event_source
        self._indexer: Indexer | None = None
        # Worker threads open the database on first use; Alembic's migration context is process-global,
        # so the first opening (and its migration) must happen once, under a lock.
        self._lock = threading.Lock()

    @property
    def db(self) -> Database:
        with self._lock:
            if self._db is None:
                url = self.settings.resolved_database_url()
                if self.settings.auto_migrate:
                    migrate(url)
                self._db = Database(url)
            return self._db

    def close(self) -> None:
        """Dispose of the database engine (the worker's shutdown, or a test's)."""
        if self._db is not None:
            self._db.dispose()
            self._db = None
        self._indexer = None

    def indexer(self) -> Indexer | None:
        db = self.db
        with self._lock:
            return self._make_indexer(db)

    def _make_indexer(self, db: Database) -> Indexer | None:
        if self._indexer is None:
            factory = self._event_source_factory
            if factory is None:
                from market.chain_source import source_from_settings

                factory = lambda: source_from_settings(self.settings)  # noqa: E731
            source = factory()
            if source is None:
                return None
            self._indexer = Indexer(db, source, self.settings.reorg_depth, self.settings.index_batch_blocks)
        return self._indexer


def register_tasks(app: Celery, ctx: TaskContext) -> None:
    """Register every market task on ``app`` (names are the contract; see the module table)."""

    @_task(app, "market.index.poll")
    def index_poll() -> dict[str, Any]:
        indexer = ctx.indexer()
        if indexer is None:
            log.warning("market.index.poll: no chain configured (chain_rpc_url); nothing indexed")
            return {"indexed": False}
        result = indexer.poll()
        return {"from": result.read_from, "to": result.read_to, "events": result.events,
                "reorged_from": result.reorged_from}  # fmt: skip

    @_task(app, "market.probe.sweep")
    def probe_sweep() -> int:
        now = int(time.time())
        with ctx.db.session() as session:
            operators = list(
                session.scalars(
                    select(NodeRow.operator).where(NodeRow.last_seen >= now - ctx.settings.heartbeat_ttl_s)
                )
            )
        for operator in operators:
            app.send_task("market.probe.node", args=[operator])
        return len(operators)

    @_task(app, "market.probe.node")
    def probe_node(operator: str) -> float | None:
        with ctx.db.session() as session:
            node = session.get(NodeRow, operator)
            addrs = list(node.multiaddrs) if node else []
        if not addrs:
            return None
        rtt = probe_rtt_ms(addrs, ctx.settings.probe_timeout_s)
        with ctx.db.session() as session:
            node = session.get(NodeRow, operator, with_for_update=True)
            if node is None:
                return None
            if rtt is None:
                node.probe_failures += 1
            else:
                node.probe_failures = 0
                node.rtt_ms = smoothed(node.rtt_ms, rtt)
            node.reliability = reputation.reliability(node)
        return rtt

    @_task(app, "market.reputation.update")
    def reputation_update() -> int:
        with ctx.db.session() as session:
            return reputation.update_all(session, int(time.time()), ctx.settings.heartbeat_ttl_s)

    @_task(app, "market.spotcheck.dispatch")
    def spotcheck_dispatch(spotcheck_id: int) -> bool:
        with ctx.db.session() as session:
            row = session.get(spotchecks.SpotCheckRow, spotcheck_id)
            if row is None or row.status != spotchecks.SpotCheckStatus.QUEUED.value:
                return False
            job_id = row.job_id
        app.send_task(
            ctx.settings.validator_task,
            args=[spotcheck_id, job_id, ctx.settings.public_url],
            queue=ctx.settings.spotcheck_queue,
        )
        with ctx.db.session() as session:
            return spotchecks.mark_dispatched(session, spotcheck_id, int(time.time()))

    @_task(app, "market.spotcheck.sweep")
    def spotcheck_sweep() -> int:
        with ctx.db.session() as session:
            ids = spotchecks.queued_ids(session, older_than=int(time.time()) - 60)
        for spotcheck_id in ids:
            app.send_task("market.spotcheck.dispatch", args=[spotcheck_id])
        return len(ids)


__all__ = ["RETRY", "TaskContext", "register_tasks"]
