"""The market's HTTP API in-process on SQLite: heartbeats, directory, quotes, jobs, receipts, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from market.app import create_app
from market.settings import MarketSettings
from protocol.chain import Deployment
from protocol.eip712 import Domain
from tests.unit.market.helpers import CLIENT, COURT, MODEL_ID, Seeder, heartbeat, peer_id, signed_receipt


def test_healthz_and_metrics_answer(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "sqlite"}
    assert "market_quotes_total" in client.get("/metrics").text


def test_bonded_node_with_fresh_heartbeat_is_routable(seeder: Seeder) -> None:
    seeder.model()
    ack = seeder.node(0, 0, 8)
    assert ack["routable"] is True and ack["reason"] is None
    nodes = seeder.client.get("/v1/nodes", params={"model_id": MODEL_ID}).json()
    assert [n["peer_id"] for n in nodes] == [peer_id(0)]
    assert nodes[0]["bonded"] and nodes[0]["routable"] and nodes[0]["reason"] is None


def test_unbonded_node_is_accepted_but_not_routable(seeder: Seeder) -> None:
    seeder.model()
    ack = seeder.node(0, 0, 8, bond=False)
    assert ack["routable"] is False
    assert "NodeStaking.register" in ack["reason"]
    # the directory says why too, for clients and for an operator who did not read the ack
    (node,) = seeder.client.get("/v1/nodes", params={"model_id": MODEL_ID}).json()
    assert node["routable"] is False and node["reason"] == ack["reason"]


def test_heartbeat_layers_must_match_the_on_chain_registration(seeder: Seeder) -> None:
    seeder.model()
    seeder.bond(0, 0, 4)
    response = seeder.client.post("/v1/nodes/heartbeat", json=heartbeat(0, 0, 8))
    assert response.status_code == 200
    assert "differ from the on-chain registration" in response.json()["reason"]


def test_heartbeat_with_forged_signature_is_422(seeder: Seeder) -> None:
    seeder.model()
    body = heartbeat(0, 0, 8)
    body["heartbeat"]["price_per_token"] = 1
    response = seeder.client.post("/v1/nodes/heartbeat", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "bad_signature"


def test_replayed_heartbeat_is_409(seeder: Seeder) -> None:
    seeder.model()
    body = heartbeat(0, 0, 8)
    assert seeder.client.post("/v1/nodes/heartbeat", json=body).status_code == 200
    again = seeder.client.post("/v1/nodes/heartbeat", json=body)
    assert again.status_code == 409 and again.json()["error"] == "replayed_heartbeat"


def test_heartbeat_from_a_skewed_clock_or_unknown_model_says_what_to_fix(seeder: Seeder) -> None:
    seeder.model()
    old = seeder.client.post(
        "/v1/nodes/heartbeat", json=heartbeat(0, 0, 8, timestamp=int(time.time()) - 3600)
    )
    assert old.status_code == 422 and "clock" in old.json()["message"]
    other = seeder.client.post("/v1/nodes/heartbeat", json=heartbeat(1, 0, 8, model_id="0x" + "cd" * 32))
    assert other.status_code == 422 and other.json()["error"] == "unknown_model"
    wide = seeder.client.post("/v1/nodes/heartbeat", json=heartbeat(2, 0, 9))
    assert wide.status_code == 422 and "8 layers" in wide.json()["message"]


def test_malformed_heartbeat_is_422_naming_the_field(client: TestClient) -> None:
    body = heartbeat(0, 0, 8)
    body["heartbeat"]["layer_end"] = 0
    response = client.post("/v1/nodes/heartbeat", json=body)
    assert response.status_code == 422
    assert "layer_end" in response.json()["message"]


def test_quote_routes_over_a_chain_that_covers_the_model(seeder: Seeder) -> None:
    seeder.model(8)
    seeder.node(0, 0, 5)
    seeder.node(1, 3, 8)
    seeder.node(2, 0, 8, step_ms=100.0)
    response = seeder.client.post(
        "/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 50, "alternates": 1}
    )
    assert response.status_code == 201, response.text
    quote = response.json()
    hops = quote["route"]["hops"]
    assert [(h["layer_start"], h["layer_end"]) for h in hops] == [(0, 5), (5, 8)]
    assert quote["price_per_token"] == 200 and quote["max_cost"] == 200 * 50
    assert [h["peer_id"] for h in quote["alternates"][0]["hops"]] == [peer_id(2)]
    job = seeder.client.get(f"/v1/jobs/{quote['job_id']}").json()
    assert job["status"] == "quoted" and job["route"] == quote["route"]


def test_quote_for_unknown_model_is_404_and_for_uncovered_model_is_422(seeder: Seeder) -> None:
    unknown = seeder.client.post("/v1/quotes", json={"model_id": "0x" + "ee" * 32, "max_tokens": 5})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_model"
    seeder.model(8)
    seeder.node(0, 0, 4)
    gap = seeder.client.post("/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 5})
    assert gap.status_code == 422 and gap.json()["error"] == "no_route"
    assert "4, 5, 6, 7" in gap.json()["message"]


def test_price_cap_nobody_meets_is_422_with_the_cheapest_price(seeder: Seeder) -> None:
    seeder.model(8)
    seeder.node(0, 0, 8)
    response = seeder.client.post(
        "/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 5, "max_price_per_token": 99}
    )
    assert response.status_code == 422 and response.json()["error"] == "price_cap"
    assert "at least 100" in response.json()["message"]


def test_stale_node_drops_out_of_routes(seeder: Seeder, market_settings: object) -> None:
    seeder.model(8)
    seeder.node(0, 0, 8)
    seeder.state.settings.heartbeat_ttl_s = -1  # every heartbeat is now too old
    response = seeder.client.post("/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 5})
    assert response.status_code == 422


def test_job_progress_and_its_rules(seeder: Seeder) -> None:
    seeder.model(8)
    seeder.node(0, 0, 8)
    job = seeder.client.post("/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 10}).json()["job_id"]
    running = seeder.client.post(f"/v1/jobs/{job}/progress", json={"status": "running", "tokens": 4})
    assert running.json()["tokens"] == 4 and running.json()["status"] == "running"
    back = seeder.client.post(f"/v1/jobs/{job}/progress", json={"status": "running", "tokens": 3})
    assert back.status_code == 409
    too_many = seeder.client.post(f"/v1/jobs/{job}/progress", json={"status": "running", "tokens": 11})
    assert too_many.status_code == 422
    done = seeder.client.post(f"/v1/jobs/{job}/progress", json={"status": "completed", "tokens": 10})
    assert done.json()["status"] == "completed"
    reopen = seeder.client.post(f"/v1/jobs/{job}/progress", json={"status": "running", "tokens": 10})
    assert reopen.status_code == 409


@pytest.fixture
def court_client(tmp_path: Path) -> Iterator[TestClient]:
    """A market that knows the deployment, so it verifies receipt signatures under the court's domain."""
    contracts = {name: "0x" + f"{i + 1:040x}" for i, name in enumerate(["MarketToken", "NodeStaking"])}
    contracts["SpotCheckCourt"] = COURT.verifying_contract
    path = Deployment(31337, 1, CLIENT, contracts).save(tmp_path / "deployments")
    settings = MarketSettings(data_dir=tmp_path, planner_refresh_s=0.0, deployment_file=path)
    with TestClient(create_app(settings)) as client:
        yield client


def test_signed_receipts_are_verified_stored_once_and_checked_against_the_route(
    court_client: TestClient,
) -> None:
    seeder = Seeder(court_client)
    seeder.model(8)
    seeder.node(0, 0, 8)
    quote = court_client.post("/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 10}).json()
    job, hop = quote["job_id"], quote["route"]["hops"][0]
    body = signed_receipt(hop, 0)
    first = court_client.post(f"/v1/jobs/{job}/receipts", json=body)
    again = court_client.post(f"/v1/jobs/{job}/receipts", json=body)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json()["id"] == again.json()["id"] and first.json()["signature_verified"] is True
    assert court_client.get(f"/v1/jobs/{job}/receipts").json() == [body]
    assert court_client.get(f"/v1/jobs/{job}").json()["receipts"] == 1

    forged = signed_receipt(hop, 5, step_start=4, step_end=8)  # signed by another key
    response = court_client.post(f"/v1/jobs/{job}/receipts", json=forged)
    assert response.status_code == 422 and response.json()["error"] == "bad_signature"
    other_domain = signed_receipt(hop, 0, 4, 8, domain=Domain(1, COURT.verifying_contract))
    assert court_client.post(f"/v1/jobs/{job}/receipts", json=other_domain).json()["error"] == "bad_signature"
    cheaper = {**signed_receipt(hop, 0, 4, 8), "price_per_token": 1}
    assert court_client.post(f"/v1/jobs/{job}/receipts", json=cheaper).json()["error"] == "receipt_mismatch"
    stranger = {**signed_receipt(hop, 0, 4, 8), "peer_id": peer_id(9)}
    assert court_client.post(f"/v1/jobs/{job}/receipts", json=stranger).json()["error"] == "not_a_hop"


def test_receipts_without_a_deployment_are_stored_marked_unverified(seeder: Seeder) -> None:
    seeder.model(8)
    seeder.node(0, 0, 8)
    quote = seeder.client.post("/v1/quotes", json={"model_id": MODEL_ID, "max_tokens": 10}).json()
    response = seeder.client.post(
        f"/v1/jobs/{quote['job_id']}/receipts", json=signed_receipt(quote["route"]["hops"][0], 0)
    )
    assert response.status_code == 201 and response.json()["signature_verified"] is False


def test_unknown_job_is_404(client: TestClient) -> None:
    response = client.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404 and response.json()["error"] == "unknown_job"


def test_model_registration_is_idempotent_and_conflicts_are_409(seeder: Seeder) -> None:
    seeder.model(8)
    seeder.model(8)
    clash = seeder.client.post("/v1/models", json={"model_id": MODEL_ID, "name": "x", "num_layers": 9})
    assert clash.status_code == 409


def test_admin_token_guards_model_registration(client: TestClient) -> None:
    client.app.state.market.settings.admin_token = "s3cret"  # type: ignore[attr-defined]
    body = {"model_id": MODEL_ID, "name": "tiny", "num_layers": 8}
    assert client.post("/v1/models", json=body).status_code == 401
    ok = client.post("/v1/models", json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 201


def test_allocation_advice_points_at_the_thinnest_layers(seeder: Seeder) -> None:
    seeder.model(12)
    seeder.node(0, 0, 8)
    seeder.node(1, 0, 8)
    advice = seeder.client.get(f"/v1/models/{MODEL_ID}/allocation", params={"max_layers": 4}).json()
    assert (advice["layer_start"], advice["layer_end"]) == (8, 12)
    assert advice["throughput_before"][8] == 0.0
