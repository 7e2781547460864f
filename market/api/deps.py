"""FastAPI dependencies: the app's state, a database session per request, the clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from celery import Celery
from fastapi import Depends, Header, Request
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.orm import Session

from market.db import Database
from market.directory import PoolCache
from market.errors import Unauthorized
from market.settings import MarketSettings
from protocol.eip712 import Domain


class Metrics:
    """The app's Prometheus metrics, in a registry of its own (several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.heartbeats = Counter(
            "market_heartbeats_total", "Heartbeats received, by result", ["result"], registry=self.registry
        )
        self.quotes = Counter(
            "market_quotes_total", "Quote requests, by result", ["result"], registry=self.registry
        )
        self.planning = Histogram(
            "market_route_planning_seconds",
            "Time to plan one route (with alternates)",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
            registry=self.registry,
        )
        self.spotchecks = Counter(
            "market_spotchecks_total", "Spot checks, by event", ["event"], registry=self.registry
        )


@dataclass
class MarketState:
    settings: MarketSettings
    db: Database
    pools: PoolCache
    celery: Celery
    metrics: Metrics
    receipt_domain: Domain | None = None
    """The court's EIP-712 domain receipts are verified under; None without a deployment."""


def get_state(request: Request) -> MarketState:
    state: MarketState = request.app.state.market
    return state


State = Annotated[MarketState, Depends(get_state)]


def get_session(state: State) -> Iterator[Session]:
    with state.db.session() as session:
        yield session


# scope="function": commit (or roll back) before the answer is sent. FastAPI's default ends a yield
# dependency after the response, so a client could read 201 for a quote whose job was not committed yet
# (its next request got 404), and a commit that failed would still have answered 201.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def get_now() -> int:
    return int(time.time())


Now = Annotated[int, Depends(get_now)]


def require_admin(state: State, authorization: Annotated[str | None, Header()] = None) -> None:
    token = state.settings.admin_token
    if token and authorization != f"Bearer {token}":
        raise Unauthorized("this endpoint needs 'Authorization: Bearer <admin token>'", "unauthorized")


Admin = Depends(require_admin)

__all__ = [
    "Admin",
    "DbSession",
    "MarketState",
    "Metrics",
    "Now",
    "State",
    "get_now",
    "get_session",
    "get_state",
]
