"""``/v1/quotes`` and ``/v1/jobs``: routes for clients, job records, receipts."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path

from market import jobs
from market.api.deps import DbSession, Now, State
from market.errors import MarketRequestError
from protocol.market_api import (
    ApiError,
    JobProgress,
    JobRecord,
    Quote,
    QuoteRequest,
    ReceiptRecord,
    ReceiptSubmission,
)

router = APIRouter(tags=["jobs"])
JobIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiError},
    409: {"model": ApiError},
    422: {"model": ApiError},
}


@router.post("/v1/quotes", response_model=Quote, status_code=201, responses=_ERRORS)
def quote(body: QuoteRequest, state: State, session: DbSession, now: Now) -> Quote:
    """Plan a route for a job and record the job; the answer carries alternates for failover."""
    started = time.perf_counter()
    try:
        result = jobs.create_quote(session, body, state.pools, state.settings, now)
    except MarketRequestError as exc:
        state.metrics.quotes.labels(result=exc.code).inc()
        raise
    state.metrics.planning.observe(time.perf_counter() - started)
    state.metrics.quotes.labels(result="ok").inc()
    return result


@router.get("/v1/jobs/{job_id}", response_model=JobRecord, responses=_ERRORS)
def get_job(job_id: JobIdPath, session: DbSession) -> JobRecord:
    return jobs.job_record(session, job_id)


@router.post("/v1/jobs/{job_id}/progress", response_model=JobRecord, responses=_ERRORS)
def progress(job_id: JobIdPath, body: JobProgress, session: DbSession, now: Now) -> JobRecord:
    """Cumulative tokens and status of a running job (tokens never decrease; finished jobs stay finished)."""
    return jobs.record_progress(session, job_id, body, now)


@router.post("/v1/jobs/{job_id}/receipts", response_model=ReceiptRecord, status_code=201, responses=_ERRORS)
def receipt(
    job_id: JobIdPath, body: ReceiptSubmission, state: State, session: DbSession, now: Now
) -> ReceiptRecord:
    """Store a hop's signed EIP-712 receipt for this job (the same receipt twice is stored once)."""
    return jobs.ingest_receipt(session, job_id, body, state.receipt_domain, now)


@router.get("/v1/jobs/{job_id}/receipts", response_model=list[ReceiptSubmission], responses=_ERRORS)
def receipts(job_id: JobIdPath, session: DbSession) -> list[ReceiptSubmission]:
    return jobs.list_receipts(session, job_id)
