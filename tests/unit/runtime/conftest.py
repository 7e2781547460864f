"""Fixtures of the stage-runtime tests: tiny models by family, and runtimes that are always shut down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

FAMILIES = ("llama", "qwen2", "mistral")
PROMPT = [5, 17, 42, 99, 7, 300, 12, 64, 901]


@pytest.fixture
def model_dir(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``model_dir("qwen2")`` -> the cached tiny model of that family."""

    def get(family: str) -> Path:
        path: Path = request.getfixturevalue(f"tiny_{family}")
        return path

    return get


@pytest.fixture
def load_runtime() -> Iterator[Callable[..., Any]]:
    """``load_runtime(model_dir, (a, b), **kwargs)`` -> a StageRuntime shut down after the test."""
    from node.runtime import StageRuntime

    loaded: list[StageRuntime] = []

    def load(path: Path, layers: tuple[int, int], **kwargs: Any) -> StageRuntime:
        kwargs.setdefault("kv_budget_bytes", 256 << 20)
        rt = StageRuntime.load(path, layers, **kwargs)
        loaded.append(rt)
        return rt

    yield load
    for rt in loaded:
        rt.shutdown()
