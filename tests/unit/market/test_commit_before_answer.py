"""A write the market answers is already committed: the next request (any process) sees it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import trio
from sqlalchemy import func, select

from market.app import create_app
from market.db import Database
from market.models import JobRow
from market.settings import MarketSettings
from tests.unit.market.helpers import MODEL_ID, heartbeat


def test_a_quotes_job_is_committed_before_the_answer_starts(tmp_path: Path) -> None:
    settings = MarketSettings(data_dir=tmp_path, dev_trust_heartbeats=True, planner_refresh_s=0.0)
    app = create_app(settings)
    jobs_when_answered: list[int] = []
    reader = Database(settings.resolved_database_url())

    async def receive() -> dict[str, Any]:
        body = json.dumps({"model_id": MODEL_ID, "max_tokens": 4}).encode()
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 201
            with reader.session() as session:  # another connection, as another request would use
                jobs_when_answered.append(session.scalar(select(func.count()).select_from(JobRow)) or 0)

    async def main() -> None:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://market") as http,
        ):
            model = {"model_id": MODEL_ID, "name": "tiny", "num_layers": 8}
            assert (await http.post("/v1/models", json=model)).status_code == 201
            assert (await http.post("/v1/nodes/heartbeat", json=heartbeat(0, 0, 8))).status_code == 200
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/v1/quotes",
                "raw_path": b"/v1/quotes",
                "query_string": b"",
                "root_path": "",
                "headers": [(b"host", b"market"), (b"content-type", b"application/json")],
                "client": ("127.0.0.1", 50000),
                "server": ("market", 80),
            }
            with trio.fail_after(30):
                await app(scope, receive, send)

    trio.run(main)
    reader.dispose()
    assert jobs_when_answered == [1]
