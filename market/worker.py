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

from datetime import timedelta

from celery import Celery

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
    context = context or TaskContext(settings)
    register_tasks(app, context)
    app.market_context = context  # closed by whoever stops the worker
    return app


__all__ = ["create_celery"]
