"""What the dashboard page shows, computed from the database (the template only lays it out).

Per model: the layer-coverage map (one row per node, one column per layer; a cell per layer a node serves,
coloured green→amber→red by load when routable, grey when not), the count of routable nodes per layer, the
node table, recent jobs and spot-check verdicts, and tokens/s per minute over the last half hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from market.directory import DirectoryEntry, entries, pool_node
from market.models import JobRow, ModelRow, SpotCheckRow, TokenTallyRow
from market.settings import MarketSettings

MAX_MAP_ROWS = 200
WINDOW_S = 30 * 60
BUCKET_S = 60


def load_colour(utilisation: float, routable: bool) -> str:
    """Cell colour: grey when not routable, else a hue from green (idle) to red (saturated)."""
    if not routable:
        return "hsl(0, 0%, 72%)"
    hue = 120 * (1.0 - min(max(utilisation, 0.0), 1.0))
    return f"hsl({hue:.0f}, 70%, 45%)"


@dataclass
class CoverageRow:
    peer_id: str
    layer_start: int
    layer_end: int
    colour: str
    routable: bool
    title: str


@dataclass
class ModelPanel:
    model_id: str
    name: str
    num_layers: int
    coverage: list[int]
    rows: list[CoverageRow]
    hidden_rows: int
    nodes: list[DirectoryEntry]
    jobs: list[JobRow]
    spotchecks: list[SpotCheckRow]
    tokens_per_s: list[float]
    complete: bool = field(default=False)


def _tokens_per_s(session: Session, model_id: str, now: int) -> list[float]:
    since = now - WINDOW_S
    buckets = [0.0] * (WINDOW_S // BUCKET_S)
    rows = session.execute(
        select(TokenTallyRow.at, func.sum(TokenTallyRow.tokens))
        .where(TokenTallyRow.model_id == model_id, TokenTallyRow.at > since)
        .group_by(TokenTallyRow.at)
    )
    for at, tokens in rows:
        index = min(len(buckets) - 1, (int(at) - since) // BUCKET_S)
        buckets[index] += float(tokens or 0) / BUCKET_S
    return buckets


def panels(session: Session, settings: MarketSettings, now: int) -> list[ModelPanel]:
    out = []
    for model in session.scalars(select(ModelRow).order_by(ModelRow.name)):
        found = entries(session, settings, now, model.model_id)
        coverage = [0] * model.num_layers
        rows = []
        for entry in found:
            n = entry.node
            if entry.routable:
                for layer in range(n.layer_start, min(n.layer_end, model.num_layers)):
                    coverage[layer] += 1
            utilisation = pool_node(n, settings).utilisation
            rows.append(
                CoverageRow(
                    peer_id=n.peer_id,
                    layer_start=n.layer_start,
                    layer_end=min(n.layer_end, model.num_layers),
                    colour=load_colour(utilisation, entry.routable),
                    routable=entry.routable,
                    title=f"{n.peer_id} layers [{n.layer_start}, {n.layer_end}) "
                    + ("routable" if entry.routable else f"not routable: {entry.reason}"),
                )
            )
        jobs = list(
            session.scalars(
                select(JobRow)
                .where(JobRow.model_id == model.model_id)
                .order_by(JobRow.created_at.desc())
                .limit(20)
            )
        )
        checks = list(
            session.scalars(
                select(SpotCheckRow)
                .join(JobRow, JobRow.job_id == SpotCheckRow.job_id)
                .where(JobRow.model_id == model.model_id)
                .order_by(SpotCheckRow.updated_at.desc())
                .limit(20)
            )
        )
        out.append(
            ModelPanel(
                model_id=model.model_id,
                name=model.name,
                num_layers=model.num_layers,
                coverage=coverage,
                rows=rows[:MAX_MAP_ROWS],
                hidden_rows=max(0, len(rows) - MAX_MAP_ROWS),
                nodes=found[:MAX_MAP_ROWS],
                jobs=jobs,
                spotchecks=checks,
                tokens_per_s=_tokens_per_s(session, model.model_id, now),
                complete=all(c > 0 for c in coverage),
            )
        )
    return out


def sparkline(values: list[float], width: int = 360, height: int = 60) -> dict[str, Any]:
    """SVG polyline points for ``values`` scaled into ``width`` x ``height``."""
    top = max(values) if values and max(values) > 0 else 1.0
    step = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{height - v / top * (height - 4) - 2:.1f}" for i, v in enumerate(values)
    )
    return {"points": points, "max": top, "width": width, "height": height}


__all__ = ["CoverageRow", "ModelPanel", "load_colour", "panels", "sparkline"]
