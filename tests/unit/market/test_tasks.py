"""Celery tasks run by a real worker on the embedded broker (kombu's SQLAlchemy transport on SQLite).

No eager mode: the API sends tasks to the broker, a worker thread consumes them, and the test waits on
their effects in the database with a deadline.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from fastapi.testclient import TestClient
from kombu import Connection

from market.models import NodeRow
from tests.unit.market.helpers import MODEL_ID, Seeder

pytestmark = [
    pytest.mark.timeout(90),
    # kombu's SQLAlchemy transport declares its tables with lazy="noload", deprecated in SQLAlchemy 2.1.
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]


def wait_for(condition: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def worker(seeder: Seeder) -> Iterator[Celery]:
    state = seeder.state
    state.settings.task_queue = f"market-{uuid.uuid4().hex[:8]}"
    state.settings.spotcheck_queue = f"spotcheck-{uuid.uuid4().hex[:8]}"
    from market.worker import create_celery

    app = create_celery(state.settings)
    state.celery = app  # the API sends through the same broker the worker reads
    with app.connection_for_write() as connection:  # fail here, loudly, if the broker cannot be opened:
        assert (
            connection.default_channel is not None
        )  # a worker thread that dies at start makes start_worker wait forever
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10):
        yield app
    app.market_context.close()  # type: ignore[attr-defined]
    app.close()


def _spot_check(client: TestClient) -> int:
    quote = client.post("/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 4}).json()
    body = {
        "job_id": quote["job_id"],
        "transcript": {"token_ids": [1, 2, 3, 4, 5], "prompt_len": 2, "seed": 7},
    }
    response = client.post("/v1/spotchecks", json=body)
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def test_spot_check_is_dispatched_to_the_validator_task_by_name(seeder: Seeder, worker: Celery) -> None:
    seeder.model(8)
    seeder.node(0, 0, 8)
    spotcheck_id = _spot_check(seeder.client)

    def dispatched() -> bool:
        return seeder.client.get(f"/v1/spotchecks/{spotcheck_id}").json()["status"] == "dispatched"

    wait_for(dispatched, what="market.spotcheck.dispatch to run")
    settings = seeder.state.settings
    with Connection(settings.resolved_broker_url()) as conn:
        message = conn.SimpleQueue(settings.spotcheck_queue).get(timeout=10)
        assert message.headers["task"] == settings.validator_task
        assert message.headers["argsrepr"].startswith(f"[{spotcheck_id}, ")
        message.ack()
    transcript = seeder.client.get(f"/v1/spotchecks/{spotcheck_id}/transcript").json()
    assert transcript["token_ids"] == [1, 2, 3, 4, 5]


def test_failed_verdict_lowers_the_offenders_reliability(seeder: Seeder) -> None:
    seeder.model(8)
    seeder.node(0, 0, 8)
    spotcheck_id = _spot_check(seeder.client)
    peer = seeder.client.get("/v1/nodes").json()[0]["peer_id"]
    verdict = {"passed": False, "offending_peers": [peer], "detail": "layer 3 fingerprint out of tolerance"}
    response = seeder.client.post(f"/v1/spotchecks/{spotcheck_id}/verdict", json=verdict)
    assert response.json()["status"] == "failed"
    assert seeder.client.post(f"/v1/spotchecks/{spotcheck_id}/verdict", json=verdict).status_code == 200
    flipped = seeder.client.post(f"/v1/spotchecks/{spotcheck_id}/verdict", json={"passed": True})
    assert flipped.status_code == 409
    assert seeder.client.get("/v1/nodes").json()[0]["reliability"] < 0.2


def test_probe_sweep_measures_reachable_nodes_and_counts_failures(seeder: Seeder, worker: Celery) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        seeder.model(8)
        seeder.node(0, 0, 8, multiaddrs=[f"/ip4/127.0.0.1/tcp/{port}"])
        seeder.node(1, 0, 8, multiaddrs=[f"/ip4/127.0.0.1/tcp/{closed_port}"])
        worker.send_task("market.probe.sweep")

        def probed() -> list[NodeRow] | None:
            with seeder.state.db.session() as session:
                rows = sorted(session.query(NodeRow).all(), key=lambda n: n.multiaddrs[0])
                done = [r for r in rows if r.rtt_ms is not None or r.probe_failures > 0]
                return rows if len(done) == 2 else None

        rows = wait_for(probed, what="both probes")
        by_port = {int(r.multiaddrs[0].rsplit("/", 1)[1]): r for r in rows}  # type: ignore[attr-defined]
        assert by_port[port].rtt_ms is not None and by_port[port].probe_failures == 0
        assert by_port[closed_port].probe_failures == 1 and by_port[closed_port].reliability == 0.5
    finally:
        listener.close()


def test_reputation_pass_decays_silent_nodes_and_resets_quote_load(seeder: Seeder, worker: Celery) -> None:
    seeder.model(8)
    seeder.node(0, 0, 8)
    seeder.client.post("/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 4})
    seeder.state.settings.heartbeat_ttl_s = -1  # the node now counts as silent
    worker.send_task("market.reputation.update")

    def decayed() -> bool:
        with seeder.state.db.session() as session:
            node = session.query(NodeRow).one()
            return node.uptime < 1.0 and node.recent_quotes == 0

    wait_for(decayed, what="market.reputation.update to run")
