"""The market's FastAPI app: ``create_app(settings)`` and a lifespan that opens and closes resources.

    app = create_app(MarketSettings(database_url="sqlite:///market.sqlite"))
    uvicorn.run(app)

The lifespan migrates the database (``auto_migrate``), opens the engine and the Celery app used to send
tasks, and disposes of both on shutdown. Errors become ``ApiError`` bodies: 4xx for requests that cannot
succeed as sent (``MarketRequestError``), 503 for a database or broker that cannot answer now.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from market.api import dashboard, health, jobs, models, nodes, spotchecks
from market.api.deps import MarketState, Metrics
from market.chain_source import court_domain
from market.db import Database, migrate
from market.directory import PoolCache
from market.errors import MarketRequestError, MarketUnavailable
from market.settings import MarketSettings
from market.worker import create_celery
from protocol.market_api import ApiError

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content=ApiError(error=code, message=message).model_dump())


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(settings: MarketSettings | None = None) -> FastAPI:
    """The market app for ``settings`` (read from env/TOML when None); nothing opens until startup."""
    settings = settings or MarketSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.resolved_database_url()
        if settings.auto_migrate:
            migrate(url)
        db = Database(url)
        celery = create_celery(settings)
        if settings.dev_trust_heartbeats:
            log.warning("dev_trust_heartbeats is on: nodes are routed to without on-chain stake")
        domain = court_domain(settings)
        if domain is None:
            log.warning("no deployment configured: receipt signatures are stored unverified")
        app.state.market = MarketState(settings, db, PoolCache(settings), celery, Metrics(), domain)
        try:
            yield
        finally:
            celery.close()
            db.dispose()

    app = FastAPI(
        title="Layermarket market",
        version="0.1.0",
        description="Node directory, route planner, jobs and spot checks of a Layermarket network.",
        lifespan=lifespan,
    )
    for module in (health, nodes, models, jobs, spotchecks, dashboard):
        app.include_router(module.router)

    @app.exception_handler(MarketRequestError)
    async def _request_error(_: Request, exc: MarketRequestError) -> JSONResponse:
        return _error(exc.status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(MarketUnavailable)
    async def _unavailable(_: Request, exc: MarketUnavailable) -> JSONResponse:
        return _error(503, exc.code, str(exc))

    @app.exception_handler(OperationalError)
    async def _database_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", exc)
        return _error(503, "database_unavailable", "the market's database cannot answer now; retry")

    return app


__all__ = ["create_app"]
