"""Spot checks: a client's sampled transcript, queued for a validator, and the verdict that comes back.

Life of a spot check: ``queued`` (stored by ``POST /v1/spotchecks``) → ``dispatched`` (the Celery task
``market.spotcheck.dispatch`` sent it to the validators' queue *by task name*; the market never imports the
validator) → ``passed`` or ``failed`` (the validator's ``POST /v1/spotchecks/{id}/verdict``). A failed
verdict counts against every offending node's reputation at once; slashing itself happens on-chain through
the court, and reaches the directory through the indexer.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from market import reputation
from market.errors import Conflict, NotFound, Unprocessable
from market.models import JobRow, NodeRow, SpotCheckRow
from protocol.market_api import (
    SpotCheckRecord,
    SpotCheckRequest,
    SpotCheckStatus,
    SpotCheckVerdict,
    Transcript,
)

_DECIDED = {SpotCheckStatus.PASSED.value, SpotCheckStatus.FAILED.value}


def record(row: SpotCheckRow) -> SpotCheckRecord:
    return SpotCheckRecord(
        id=row.id,
        job_id=row.job_id,
        status=SpotCheckStatus(row.status),
        offending_peers=list(row.offending_peers),
        detail=row.detail,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def submit(session: Session, request: SpotCheckRequest, now: int) -> SpotCheckRow:
    job = session.get(JobRow, request.job_id)
    if job is None:
        raise NotFound(
            f"unknown job {request.job_id}; spot checks name a job from POST /v1/quotes", "unknown_job"
        )
    if request.transcript.prompt_len + job.max_tokens < len(request.transcript.token_ids):
        raise Unprocessable(
            "the transcript has more generated tokens than the job's max_tokens", "transcript"
        )
    row = SpotCheckRow(
        job_id=job.job_id,
        transcript=request.transcript.model_dump(mode="json"),
        status=SpotCheckStatus.QUEUED.value,
        offending_peers=[],
        detail="",
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, spotcheck_id: int) -> SpotCheckRow:
    row = session.get(SpotCheckRow, spotcheck_id)
    if row is None:
        raise NotFound(f"unknown spot check {spotcheck_id}", "unknown_spotcheck")
    return row


def transcript(session: Session, spotcheck_id: int) -> Transcript:
    return Transcript.model_validate(get(session, spotcheck_id).transcript)


def mark_dispatched(session: Session, spotcheck_id: int, now: int) -> bool:
    """Move ``queued`` → ``dispatched``; False when another run already did (idempotent under acks_late)."""
    result = session.execute(
        update(SpotCheckRow)
        .where(SpotCheckRow.id == spotcheck_id, SpotCheckRow.status == SpotCheckStatus.QUEUED.value)
        .values(status=SpotCheckStatus.DISPATCHED.value, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def queued_ids(session: Session, older_than: int) -> list[int]:
    rows = session.scalars(
        select(SpotCheckRow.id).where(
            SpotCheckRow.status == SpotCheckStatus.QUEUED.value, SpotCheckRow.created_at <= older_than
        )
    )
    return list(rows)


def apply_verdict(session: Session, spotcheck_id: int, verdict: SpotCheckVerdict, now: int) -> SpotCheckRow:
    """Record a validator's verdict once; the same verdict again is a no-op, a different one a 409."""
    row = session.get(SpotCheckRow, spotcheck_id, with_for_update=True)
    if row is None:
        raise NotFound(f"unknown spot check {spotcheck_id}", "unknown_spotcheck")
    status = SpotCheckStatus.PASSED.value if verdict.passed else SpotCheckStatus.FAILED.value
    if row.status in _DECIDED:
        if row.status == status and sorted(row.offending_peers) == sorted(verdict.offending_peers):
            return row
        raise Conflict(f"spot check {spotcheck_id} already has the verdict {row.status}", "verdict_exists")
    if verdict.passed and verdict.offending_peers:
        raise Unprocessable("a passed verdict cannot name offending peers", "verdict")
    job = session.get(JobRow, row.job_id)
    primary = {h["peer_id"] for h in (job.route["hops"] if job else [])}
    hops = set(primary)
    for route in job.alternates if job else []:
        hops.update(h["peer_id"] for h in route["hops"])
    unknown = sorted(set(verdict.offending_peers) - hops)
    if unknown:
        raise Unprocessable(f"offending peers {unknown} are not hops of job {row.job_id}", "verdict")
    row.status = status
    row.offending_peers = sorted(verdict.offending_peers)
    row.detail = verdict.detail
    row.validator = verdict.validator
    row.updated_at = now
    judged = primary if verdict.passed else set(verdict.offending_peers)
    for node in session.scalars(select(NodeRow).where(NodeRow.peer_id.in_(judged)).with_for_update()):
        if verdict.passed:
            node.spot_passed += 1
        else:
            node.spot_failed += 1
        node.reliability = reputation.reliability(node)
    session.flush()
    return row


__all__ = [
    "SpotCheckRow",
    "SpotCheckStatus",
    "apply_verdict",
    "get",
    "mark_dispatched",
    "queued_ids",
    "record",
    "submit",
    "transcript",
]
