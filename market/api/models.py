"""``/v1/models``: the models the market routes for, their coverage, and allocation advice."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from market.api.deps import Admin, DbSession, Now, State
from market.errors import Conflict, NotFound
from market.models import ModelRow
from protocol.market_api import AllocationAdvice, ApiError, ModelRegistration, ModelView

router = APIRouter(prefix="/v1/models", tags=["models"])
ModelIdPath = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]


def _model(session: Session, model_id: str) -> ModelRow:
    model = session.get(ModelRow, model_id.lower())
    if model is None:
        raise NotFound(f"unknown model {model_id}; GET /v1/models lists the known ones", "unknown_model")
    return model


def _view(state: State, session: Session, model: ModelRow, now: int) -> ModelView:
    pool = state.pools.get(session, model, now)
    return ModelView(
        model_id=model.model_id,
        name=model.name,
        num_layers=model.num_layers,
        coverage=pool.coverage,
        complete=all(c > 0 for c in pool.coverage),
    )


@router.post(
    "", response_model=ModelView, status_code=201, dependencies=[Admin],
    responses={401: {"model": ApiError}, 409: {"model": ApiError}},
)  # fmt: skip
def register_model(body: ModelRegistration, state: State, session: DbSession, now: Now) -> ModelView:
    """Register a model (idempotent for the same id and layer count; 409 if the layer count differs)."""
    existing = session.get(ModelRow, body.model_id)
    if existing is not None:
        if existing.num_layers != body.num_layers:
            raise Conflict(
                f"model {body.model_id} is registered with {existing.num_layers} layers, "
                f"not {body.num_layers}",
                "model_exists",
            )
        return _view(state, session, existing, now)
    model = ModelRow(model_id=body.model_id, name=body.name, num_layers=body.num_layers, created_at=now)
    session.add(model)
    session.flush()
    state.pools.invalidate(model.model_id)
    return _view(state, session, model, now)


@router.get("", response_model=list[ModelView])
def list_models(state: State, session: DbSession, now: Now) -> list[ModelView]:
    return [_view(state, session, m, now) for m in session.scalars(select(ModelRow).order_by(ModelRow.name))]


@router.get("/{model_id}", response_model=ModelView, responses={404: {"model": ApiError}})
def get_model(model_id: ModelIdPath, state: State, session: DbSession, now: Now) -> ModelView:
    return _view(state, session, _model(session, model_id), now)


@router.get("/{model_id}/allocation", response_model=AllocationAdvice, responses={404: {"model": ApiError}})
def allocation(
    model_id: ModelIdPath,
    state: State,
    session: DbSession,
    now: Now,
    max_layers: Annotated[int, Query(ge=1, le=65_535, description="layers the joining node can hold")],
) -> AllocationAdvice:
    """Which layers a joining node that can hold ``max_layers`` layers should serve: the thinnest window."""
    model = _model(session, model_id)
    pool = state.pools.get(session, model, now)
    start, end = pool.allocation(max_layers)
    return AllocationAdvice(
        model_id=model.model_id, layer_start=start, layer_end=end, throughput_before=pool.throughput()
    )
