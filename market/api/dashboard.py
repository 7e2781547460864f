"""``/`` and ``/dashboard``: the server-rendered dashboard (no build step, no JavaScript)."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from market.api.deps import DbSession, Now, State
from market.dashboard import panels, sparkline

router = APIRouter(tags=["dashboard"])
_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]))


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(state: State, session: DbSession, now: Now) -> HTMLResponse:
    """Layer coverage, nodes, jobs, spot checks and tokens/s of every model."""
    models = panels(session, state.settings, now)
    html = (
        _environment()
        .get_template("dashboard.html")
        .render(
            models=models,
            sparks={m.model_id: sparkline(m.tokens_per_s) for m in models},
            now_text=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)),
            dev_trust=state.settings.dev_trust_heartbeats,
            refresh_s=10,
            cell_px=max(4, min(16, 800 // max((m.num_layers for m in models), default=1))),
        )
    )
    return HTMLResponse(html)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(state: State, session: DbSession, now: Now) -> HTMLResponse:
    return dashboard(state, session, now)
