"""``market-server``: run the market's API, its Celery worker, and one-off maintenance commands.

    market-server serve                 # API + dashboard on settings.host:port (uvicorn)
    market-server worker --beat         # Celery worker (and the periodic scheduler)
    market-server migrate               # Alembic migrations to head
    market-server add-model 0xab.. tiny-llama 32

Settings come from ``[market]`` in layermarket.toml or ``LAYERMARKET_MARKET_*`` (see market/settings.py).
"""

from __future__ import annotations

import click

from market.settings import MarketSettings
from protocol.cli import command_group, echo, run

group = command_group("market-server", "Run the Layermarket market: node directory, routes, jobs, dashboard.")


@group.command()
@click.option("--host", default=None, help="Listen address (default: settings.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: settings.port).")
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the HTTP API and the dashboard."""
    import uvicorn

    settings = MarketSettings()
    from market.db import migrate

    if settings.auto_migrate:
        migrate(settings.resolved_database_url())
    if workers > 1:
        uvicorn.run(
            "market.cli:_app_from_env",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
        )
        return
    from market.app import create_app

    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


def _app_from_env() -> object:
    from market.app import create_app

    return create_app(MarketSettings())


@group.command()
@click.option("--beat/--no-beat", default=False, help="Also run the periodic scheduler (one per deployment).")
@click.option(
    "--concurrency",
    type=int,
    default=2,
    show_default=True,
    help="Threads (ignored with the embedded broker).",
)
def worker(beat: bool, concurrency: int) -> None:
    """Run a Celery worker for the market's tasks (indexing, probes, reputation, spot-check dispatch)."""
    from market.db import migrate as run_migrations
    from market.worker import create_celery

    settings = MarketSettings()
    if settings.auto_migrate:
        run_migrations(settings.resolved_database_url())
    app = create_celery(settings)
    if settings.resolved_broker_url().startswith("sqla+"):
        # kombu's SQLAlchemy transport shares sessions between the consumer and publishing threads:
        # with the embedded broker, one thread does everything.
        argv = ["worker", "--pool=solo", "-Q", settings.task_queue]
    else:
        argv = ["worker", "--pool=threads", f"--concurrency={concurrency}", "-Q", settings.task_queue]
    if beat:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # beat's schedule state lives with the rest of the market's files, not in the working directory
        argv += ["--beat", f"--schedule={settings.data_dir / 'celerybeat-schedule'}"]
    app.worker_main(argv)


@group.command()
def migrate() -> None:
    """Upgrade the database to the latest schema."""
    from market.db import migrate as run_migrations

    settings = MarketSettings()
    run_migrations(settings.resolved_database_url())
    echo(f"migrated {settings.resolved_database_url().split('@')[-1]}")


@group.command("add-model")
@click.argument("model_id")
@click.argument("name")
@click.argument("num_layers", type=int)
def add_model(model_id: str, name: str, num_layers: int) -> None:
    """Register a model the market routes for (idempotent)."""
    import time

    from market.db import Database
    from market.db import migrate as run_migrations
    from market.models import ModelRow
    from protocol.errors import ConfigurationError
    from protocol.market_api import ModelRegistration

    try:
        body = ModelRegistration(model_id=model_id, name=name, num_layers=num_layers)
    except ValueError as exc:
        raise ConfigurationError(f"bad model: {exc}") from exc
    settings = MarketSettings()
    url = settings.resolved_database_url()
    run_migrations(url)
    db = Database(url)
    with db.session() as session:
        existing = session.get(ModelRow, body.model_id)
        if existing is not None and existing.num_layers != body.num_layers:
            raise ConfigurationError(f"{body.model_id} is registered with {existing.num_layers} layers")
        if existing is None:
            session.add(
                ModelRow(
                    model_id=body.model_id, name=name, num_layers=num_layers, created_at=int(time.time())
                )
            )
    db.dispose()
    echo(f"model {body.model_id} ({name}, {num_layers} layers) registered")


@group.command()
def index() -> None:
    """Run the chain indexer until it reaches the chain's head (what market.index.poll does periodically)."""
    from market.tasks import TaskContext
    from protocol.errors import ConfigurationError

    indexer = TaskContext(MarketSettings()).indexer()
    if indexer is None:
        raise ConfigurationError("no chain configured: set chain_rpc_url and deployment_file in [market]")
    echo(f"indexed {indexer.catch_up()} events")


def main() -> None:
    run(group)


__all__ = ["group", "main"]
