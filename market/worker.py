"""The market's Celery app: broker from settings, embedded SQLite broker when none is configured.

``create_celery(settings)`` builds the app and registers the tasks of ``market.tasks`` under explicit
names; ``market-server worker`` runs it. Nothing is created at import time::

    app = create_celery(MarketSettings())
    app.send_task("market.spotcheck.dispatch", args=[42])

Broker: ``broker_url`` (Redis or RabbitMQ) in production; without one, kombu's SQLAlchemy transport on a
SQLite file under ``data_dir`` (``sqla+sqlite:///...``), so a single machine needs no broker server; it
polls once a second (kombu passes its transport options to ``create_engine`` too, so a shorter
``polling_interval`` cannot be set there). Every
task acks late (a worker killed mid-task leaves the message for another) and is idempotent; results are
ignored: tasks write their effects to the database, which is what the API reads.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

from celery import Celery
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.transport.sqlalchemy import Channel as SqlaChannel
from sqlalchemy.exc import SADeprecationWarning

from market.settings import MarketSettings
from market.tasks import TaskContext, register_tasks


def create_celery(settings: MarketSettings, context: TaskContext | None = None) -> Celery:
    broker = settings.resolved_broker_url()
    if broker.startswith("sqla+sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = Celery("market", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.task_queue,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        timezone="UTC",
    )
    schedule = {
        "probe": {"task": "market.probe.sweep", "schedule": timedelta(seconds=settings.probe_interval_s)},
        "reputation": {
            "task": "market.reputation.update",
            "schedule": timedelta(seconds=settings.reputation_interval_s),
        },
        "spotcheck-sweep": {"task": "market.spotcheck.sweep", "schedule": timedelta(seconds=60)},
    }
    if settings.chain_rpc_url:
        schedule["index"] = {
            "task": "market.index.poll",
            "schedule": timedelta(seconds=settings.index_interval_s),
        }
    app.conf.beat_schedule = schedule
    if broker.startswith("sqla+"):
        _declare_queues(broker, (settings.task_queue, settings.spotcheck_queue))
    context = context or TaskContext(settings)
    register_tasks(app, context)
    app.market_context = context  # closed by whoever stops the worker
    return app


def _declare_queues(broker: str, names: tuple[str, ...]) -> None:
    """Create the embedded broker's queue rows once, from one thread, before anything else runs.

    kombu's SQLAlchemy transport creates a queue's row on first use and does not roll back when two
    processes race to create it (the embedded beat and the consumer do, on a fresh broker file): the
    loser's session stays broken and every later publish from it fails. Declaring first removes the race.
    """
    with warnings.catch_warnings(), Connection(broker) as connection:  # not the app's pools
        # kombu's table mappings use lazy="noload", deprecated in SQLAlchemy 2.1; they are configured once
        # per process, here, so the warning (kombu's to fix, not ours) is silenced here only.
        warnings.filterwarnings(
            "ignore", message="The ``noload`` loader strategy", category=SADeprecationWarning
        )
        channel = connection.channel()
        for name in names:
            Queue(name, Exchange(name, type="direct"), routing_key=name)(channel).declare()
        channel.close()
        hostname = connection.hostname
    # The transport caches its engine per URL at class level; an SQLite engine must not survive into the
    # process the worker forks for the embedded beat (SQLite connections do not cross a fork): drop it,
    # and the first real use opens a new one.
    cached = SqlaChannel._engines.pop(hostname, None)
    if cached is not None:
        cached[0].dispose()


__all__ = ["create_celery"]
