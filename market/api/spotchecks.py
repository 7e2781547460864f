"""``/v1/spotchecks``: clients submit sampled transcripts; validators fetch them and report verdicts."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path

from market import spotchecks
from market.api.deps import Admin, DbSession, Now, State
from protocol.market_api import ApiError, SpotCheckRecord, SpotCheckRequest, SpotCheckVerdict, Transcript

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/spotchecks", tags=["spotchecks"])
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiError},
    409: {"model": ApiError},
    422: {"model": ApiError},
}


@router.post("", response_model=SpotCheckRecord, status_code=202, responses=_ERRORS)
def submit(body: SpotCheckRequest, state: State, session: DbSession, now: Now) -> SpotCheckRecord:
    """Queue a job's transcript for a validator (dispatched by the Celery task market.spotcheck.dispatch)."""
    row = spotchecks.submit(session, body, now)
    record = spotchecks.record(row)
    session.commit()  # the worker must see the row before the task can run
    try:
        state.celery.send_task("market.spotcheck.dispatch", args=[row.id])
    except Exception:  # broker down: the row stays queued and market.spotcheck.sweep sends it later
        log.exception("broker unavailable; spot check %d stays queued for the sweep", row.id)
    state.metrics.spotchecks.labels(event="queued").inc()
    return record


@router.get("/{spotcheck_id}", response_model=SpotCheckRecord, responses=_ERRORS)
def get(spotcheck_id: IdPath, session: DbSession) -> SpotCheckRecord:
    return spotchecks.record(spotchecks.get(session, spotcheck_id))


@router.get("/{spotcheck_id}/transcript", response_model=Transcript, responses=_ERRORS)
def transcript(spotcheck_id: IdPath, session: DbSession) -> Transcript:
    """What the validator re-runs (receipts: ``GET /v1/jobs/{job_id}/receipts``)."""
    return spotchecks.transcript(session, spotcheck_id)


@router.post(
    "/{spotcheck_id}/verdict", response_model=SpotCheckRecord, dependencies=[Admin], responses=_ERRORS
)
def verdict(
    spotcheck_id: IdPath, body: SpotCheckVerdict, state: State, session: DbSession, now: Now
) -> SpotCheckRecord:
    """A validator's verdict; a failed one lowers the offending nodes' reliability at once."""
    row = spotchecks.apply_verdict(session, spotcheck_id, body, now)
    state.metrics.spotchecks.labels(event=row.status).inc()
    return spotchecks.record(row)
