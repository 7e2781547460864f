"""Quotes, job records and receipts: what a client's job leaves in the market.

A quote plans a route (``market.planner``) and records a job in state ``quoted``; the client then reports
progress (``running`` → ``completed``/``failed``, cumulative tokens) and forwards the hops' signed
receipts. Receipt ingestion is idempotent: the same (job, peer, step range) stored twice is one receipt.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from market.directory import PoolCache
from market.errors import Conflict, NotFound, Unprocessable
from market.models import JobRow, ModelRow, NodeRow, ReceiptRow, TokenTallyRow
from market.planner import NoCoverage, PlannedRoute, PriceCapTooLow
from market.settings import MarketSettings
from protocol.eip712 import Domain, SignatureError
from protocol.market_api import (
    Hop,
    JobProgress,
    JobRecord,
    JobStatus,
    Quote,
    QuoteRequest,
    ReceiptRecord,
    ReceiptSubmission,
    Route,
)
from protocol.receipts import recover_receipt_signer

# Steps count prompt tokens too (a prefill step range); allow a prompt this long beyond max_tokens.
MAX_PROMPT_STEPS = 1 << 20
_FINAL = {JobStatus.COMPLETED.value, JobStatus.FAILED.value}


def route_model(route: PlannedRoute) -> Route:
    return Route(
        hops=[
            Hop(
                peer_id=h.node.peer_id,
                multiaddrs=list(h.node.multiaddrs),
                operator=h.node.operator,
                layer_start=h.layer_start,
                layer_end=h.layer_end,
                price_per_token=h.node.price_per_token,
                expected_ms=round(h.node.expected_ms, 3),
            )
            for h in route.hops
        ],
        price_per_token=route.price_per_token,
        expected_ms_per_token=round(route.expected_ms_per_token, 3),
    )


def create_quote(
    session: Session, request: QuoteRequest, pools: PoolCache, settings: MarketSettings, now: int
) -> Quote:
    """Plan a route for ``request`` and record the job; 404 for an unknown model, 422 if none fits."""
    model = session.get(ModelRow, request.model_id)
    if model is None:
        raise NotFound(
            f"unknown model {request.model_id}; GET /v1/models lists the known ones", "unknown_model"
        )
    pool = pools.get(session, model, now)
    try:
        plan = pool.route(
            max_price_per_token=request.max_price_per_token,
            alternates=request.alternates,
            exclude_peers=request.exclude_peers,
        )
    except NoCoverage as exc:
        raise Unprocessable(
            f"no route covers model {model.name} now: {exc}; retry when more nodes are live", "no_route"
        ) from exc
    except PriceCapTooLow as exc:
        raise Unprocessable(str(exc), "price_cap") from exc
    primary = route_model(plan.primary)
    alternates = [route_model(r) for r in plan.alternates]
    job_id = str(uuid.uuid4())
    price = primary.price_per_token
    session.add(
        JobRow(
            job_id=job_id,
            model_id=model.model_id,
            status=JobStatus.QUOTED.value,
            route=primary.model_dump(mode="json"),
            alternates=[a.model_dump(mode="json") for a in alternates],
            price_per_token=str(price),
            max_tokens=request.max_tokens,
            max_cost=str(price * request.max_tokens),
            tokens=0,
            client=request.client,
            created_at=now,
            updated_at=now,
        )
    )
    # Load the heartbeats cannot show yet: the reputation pass resets the count.
    session.execute(
        update(NodeRow)
        .where(NodeRow.operator.in_([h.operator for h in primary.hops]))
        .values(recent_quotes=NodeRow.recent_quotes + 1)
    )
    return Quote(
        job_id=job_id,
        model_id=model.model_id,
        route=primary,
        alternates=alternates,
        price_per_token=price,
        max_cost=price * request.max_tokens,
        expires_at=now + settings.quote_ttl_s,
    )


def _job(session: Session, job_id: str, lock: bool = False) -> JobRow:
    job = session.get(JobRow, job_id, with_for_update=lock)
    if job is None:
        raise NotFound(f"unknown job {job_id}; jobs are created by POST /v1/quotes", "unknown_job")
    return job


def job_record(session: Session, job_id: str) -> JobRecord:
    job = _job(session, job_id)
    receipts = session.scalar(select(func.count()).select_from(ReceiptRow).where(ReceiptRow.job_id == job_id))
    return JobRecord(
        job_id=job.job_id,
        model_id=job.model_id,
        status=JobStatus(job.status),
        route=Route.model_validate(job.route),
        price_per_token=int(job.price_per_token),
        max_tokens=job.max_tokens,
        max_cost=int(job.max_cost),
        tokens=job.tokens,
        receipts=receipts or 0,
        created_at=job.created_at,
        updated_at=job.updated_at,
        error=job.error,
    )


def record_progress(session: Session, job_id: str, progress: JobProgress, now: int) -> JobRecord:
    """Advance a job; tokens never decrease and a finished job stays finished (409 otherwise)."""
    job = _job(session, job_id, lock=True)
    if job.status in _FINAL and progress.status.value != job.status:
        raise Conflict(f"job {job_id} is already {job.status}", "job_finished")
    if progress.status == JobStatus.QUOTED:
        raise Unprocessable("progress status must be running, completed or failed", "bad_status")
    if progress.tokens < job.tokens:
        raise Conflict(
            f"tokens go from {job.tokens} down to {progress.tokens}; send the cumulative count", "tokens"
        )
    if progress.tokens > job.max_tokens:
        raise Unprocessable(
            f"tokens {progress.tokens} exceed the quoted max_tokens {job.max_tokens}", "tokens"
        )
    delta = progress.tokens - job.tokens
    if delta:
        session.add(TokenTallyRow(model_id=job.model_id, at=now, tokens=delta))
    job.tokens = progress.tokens
    job.status = progress.status.value
    job.error = progress.error
    job.updated_at = now
    session.flush()
    return job_record(session, job_id)


def _hop_of(job: JobRow, peer_id: str) -> dict[str, Any] | None:
    for route in (job.route, *job.alternates):
        for hop in route["hops"]:
            if hop["peer_id"] == peer_id:
                return dict(hop)
    return None


def ingest_receipt(
    session: Session, job_id: str, receipt: ReceiptSubmission, domain: Domain | None, now: int
) -> ReceiptRecord:
    """Store a hop's signed receipt for ``job_id`` (idempotent).

    The receipt must name a hop of the job's routes with that hop's node, model, layers and price; its
    EIP-712 signature must recover to the node under the court's ``domain`` (when the market knows it).
    """
    job = _job(session, job_id)
    hop = _hop_of(job, receipt.peer_id)
    if hop is None or hop["operator"] != receipt.node:
        raise Unprocessable(
            f"peer {receipt.peer_id} with node {receipt.node} is not a hop of job {job_id}", "not_a_hop"
        )
    expected = (job.model_id, hop["layer_start"], hop["layer_end"], hop["price_per_token"])
    actual = (receipt.model_id, receipt.layer_start, receipt.layer_end, receipt.price_per_token)
    if actual != expected:
        raise Unprocessable(
            f"receipt (model, layer_start, layer_end, price) {actual} differs from the hop's {expected}",
            "receipt_mismatch",
        )
    if receipt.step_end > job.max_tokens + MAX_PROMPT_STEPS:
        raise Unprocessable(f"step_end {receipt.step_end} is beyond what job {job_id} can run", "steps")
    verified = False
    if domain is not None:
        try:
            signer = recover_receipt_signer(
                receipt.to_receipt(), bytes.fromhex(receipt.signature[2:]), domain
            )
        except SignatureError as exc:
            raise Unprocessable(f"receipt signature is invalid: {exc}", "bad_signature") from exc
        if signer != receipt.node:
            raise Unprocessable(f"receipt is signed by {signer}, not by node {receipt.node}", "bad_signature")
        verified = True
    existing = session.scalars(
        select(ReceiptRow).where(
            ReceiptRow.job_id == job_id,
            ReceiptRow.peer_id == receipt.peer_id,
            ReceiptRow.step_start == receipt.step_start,
            ReceiptRow.step_end == receipt.step_end,
        )
    ).first()
    if existing is None:
        existing = ReceiptRow(
            job_id=job_id,
            peer_id=receipt.peer_id,
            operator=receipt.node,
            session_id=receipt.session_id.lower(),
            model_id=receipt.model_id,
            layer_start=receipt.layer_start,
            layer_end=receipt.layer_end,
            step_start=receipt.step_start,
            step_end=receipt.step_end,
            tokens=receipt.tokens,
            price_per_token=str(receipt.price_per_token),
            input_digest=receipt.input_digest.lower(),
            output_commitment=receipt.output_commitment.lower(),
            client=receipt.client,
            signature=receipt.signature,
            signature_verified=verified,
            received_at=now,
        )
        session.add(existing)
        session.flush()
    elif existing.signature != receipt.signature:
        raise Conflict(
            "a different receipt for the same job, peer and steps is already stored", "receipt_differs"
        )
    return ReceiptRecord(
        id=existing.id,
        job_id=job_id,
        peer_id=existing.peer_id,
        step_start=existing.step_start,
        step_end=existing.step_end,
        tokens=existing.tokens,
        signature_verified=existing.signature_verified,
    )


def list_receipts(session: Session, job_id: str) -> list[ReceiptSubmission]:
    _job(session, job_id)
    rows = session.scalars(
        select(ReceiptRow).where(ReceiptRow.job_id == job_id).order_by(ReceiptRow.step_start, ReceiptRow.id)
    )
    return [
        ReceiptSubmission(
            peer_id=r.peer_id,
            node=r.operator,
            session_id=r.session_id,
            model_id=r.model_id,
            layer_start=r.layer_start,
            layer_end=r.layer_end,
            step_start=r.step_start,
            step_end=r.step_end,
            input_digest=r.input_digest,
            output_commitment=r.output_commitment,
            tokens=r.tokens,
            price_per_token=int(r.price_per_token),
            client=r.client,
            signature=r.signature,
        )
        for r in rows
    ]


__all__ = ["create_quote", "ingest_receipt", "job_record", "list_receipts", "record_progress", "route_model"]
