"""API, planner and Celery tasks end to end on each backend (SQLite + embedded broker; PostgreSQL + Redis).

A real Celery worker (a thread, consuming from the backend's broker) runs the tasks; nothing is eager.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from kombu import Connection

from market.worker import create_celery
from tests.integration.market.conftest import Backend
from tests.unit.market.helpers import MODEL_ID, Seeder, peer_id, signed_receipt
from tests.unit.market.test_tasks import wait_for

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]


@pytest.fixture
def worker(seeder: Seeder) -> Iterator[Celery]:
    app = create_celery(seeder.state.settings)
    seeder.state.celery = app
    with app.connection_for_write() as connection:
        assert connection.default_channel is not None  # the broker opens, or the test fails here
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10):
        yield app
    app.market_context.close()  # type: ignore[attr-defined]
    app.close()


def test_job_life_from_heartbeat_to_spot_check_verdict(
    backend: Backend, seeder: Seeder, worker: Celery
) -> None:
    client = seeder.client
    seeder.model(8)
    seeder.node(0, 0, 5, price_per_token=30)
    seeder.node(1, 3, 8, price_per_token=30)
    seeder.node(2, 0, 8, step_ms=3.0, price_per_token=500)
    fast = client.post("/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 16}).json()
    assert [h["peer_id"] for h in fast["route"]["hops"]] == [peer_id(2)]
    capped = client.post(
        "/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 16, "max_price_per_token": 100}
    ).json()
    assert [h["peer_id"] for h in capped["route"]["hops"]] == [peer_id(0), peer_id(1)]
    assert capped["price_per_token"] == 60 and capped["max_cost"] == 960

    job = capped["job_id"]
    hop = capped["route"]["hops"][0]
    receipt = signed_receipt(hop, 0, 0, 16)
    assert client.post(f"/v1/jobs/{job}/receipts", json=receipt).status_code == 201
    assert client.post(f"/v1/jobs/{job}/receipts", json=receipt).status_code == 201
    done = client.post(f"/v1/jobs/{job}/progress", json={"status": "completed", "tokens": 16}).json()
    assert done["status"] == "completed" and done["receipts"] == 1

    transcript = {"token_ids": list(range(20)), "prompt_len": 4, "seed": 1}
    check = client.post("/v1/spotchecks", json={"job_id": job, "transcript": transcript}).json()
    wait_for(
        lambda: client.get(f"/v1/spotchecks/{check['id']}").json()["status"] == "dispatched",
        what=f"spot-check dispatch on {backend.name}",
    )
    settings = seeder.state.settings
    with Connection(settings.resolved_broker_url()) as connection:
        message = connection.SimpleQueue(settings.spotcheck_queue).get(timeout=10)
        assert message.headers["task"] == settings.validator_task
        message.ack()
    verdict = {"passed": False, "offending_peers": [peer_id(1)], "detail": "boundary 5 out of tolerance"}
    assert client.post(f"/v1/spotchecks/{check['id']}/verdict", json=verdict).json()["status"] == "failed"
    nodes = {n["peer_id"]: n for n in client.get("/v1/nodes").json()}
    assert nodes[peer_id(1)]["reliability"] < nodes[peer_id(0)]["reliability"]


def test_reputation_and_probe_tasks_update_the_directory(seeder: Seeder, worker: Celery) -> None:
    seeder.model(8)
    seeder.node(0, 0, 8, multiaddrs=["/ip4/127.0.0.1/tcp/1"])  # nothing listens on port 1
    worker.send_task("market.probe.sweep")
    wait_for(lambda: seeder.client.get("/v1/nodes").json()[0]["reliability"] == 0.5, what="probe failure")
    seeder.state.settings.heartbeat_ttl_s = -1
    worker.send_task("market.reputation.update")
    wait_for(lambda: seeder.client.get("/v1/nodes").json()[0]["reliability"] < 0.5, what="uptime decay")


def test_uint256_prices_survive_the_database(seeder: Seeder) -> None:
    seeder.model(4)
    huge = 2**255 + 12345
    seeder.node(0, 0, 4, price_per_token=huge, bond=False)
    assert seeder.client.get("/v1/nodes").json()[0]["price_per_token"] == huge
    assert uuid.UUID(str(uuid.uuid4()))  # keeps the import honest for the next test author
