"""Seed a live market over HTTP plus its database: a model, bonded nodes with heartbeats, jobs, a verdict."""

from __future__ import annotations

import httpx

from market.db import Database
from market.indexer import Indexer
from tests.e2e.market.conftest import LiveMarket
from tests.unit.market.helpers import MODEL_ID, ScriptedChain, heartbeat, registration_events

# (index, layer_start, layer_end): two replicas of the first half, one of the second, one stale gap filler.
NODES = [(0, 0, 16), (1, 0, 16), (2, 16, 32), (3, 8, 24)]


def seed(market: LiveMarket, num_layers: int = 32) -> str:
    with httpx.Client(base_url=market.url, timeout=10) as http:
        http.post("/v1/models", json={"model_id": MODEL_ID, "name": "tiny-llama", "num_layers": num_layers})
        db = Database(market.settings.resolved_database_url())
        chain = ScriptedChain()
        for index, start, end in NODES[:3]:  # node 3 never bonds: drawn grey, not routable
            chain.mine(*registration_events(index, start, end))
        Indexer(db, chain, reorg_depth=4).catch_up()
        db.dispose()
        for index, start, end in NODES:
            response = http.post("/v1/nodes/heartbeat", json=heartbeat(index, start, end))
            response.raise_for_status()
        quote = http.post("/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 64}).json()
        http.post(f"/v1/jobs/{quote['job_id']}/progress", json={"status": "completed", "tokens": 64})
        return str(quote["job_id"])
