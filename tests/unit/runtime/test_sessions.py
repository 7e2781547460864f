"""KV sessions: budget and capacity refusal, expiry, rollback and replay, and bad requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from node.errors import CapacityError, RuntimeInputError, SessionNotFound
from protocol.errors import PermanentError, TransientError
from protocol.sampling import SamplingParams
from tests.unit.runtime.conftest import PROMPT


def _decode(rt: Any, sid: str, first: list[int], n: int) -> tuple[list[int], list[torch.Tensor]]:
    tokens, hidden = [], []
    x = torch.tensor(first)
    for _ in range(n):
        out = rt.step(sid, x)
        tokens.append(out.tokens[0] if out.tokens else -1)
        if out.hidden is not None:
            hidden.append(out.hidden)
        x = torch.tensor(out.tokens) if out.tokens else torch.tensor([7])
    return tokens, hidden


def test_open_beyond_the_kv_budget_is_refused_with_a_transient_capacity_error(
    tiny_llama: Path, load_runtime: Callable[..., Any]
) -> None:
    probe = load_runtime(tiny_llama, (0, 4))
    per_session = probe.sessions.layout.bytes_for(64)
    rt = load_runtime(tiny_llama, (0, 4), kv_budget_bytes=2 * per_session)
    rt.open("a", 64)
    rt.open("b", 64)
    with pytest.raises(CapacityError) as refused:
        rt.open("c", 64)
    assert isinstance(refused.value, TransientError)
    assert refused.value.needed == per_session and refused.value.available == 0
    assert rt.stats()["kv_bytes_used"] == 2 * per_session
    rt.close("a")
    rt.open("c", 64)  # capacity came back
    assert rt.stats()["sessions"] == 2


def test_idle_sessions_expire_and_active_ones_stay(
    tiny_llama: Path, load_runtime: Callable[..., Any]
) -> None:
    rt = load_runtime(tiny_llama, (0, 8), session_ttl_s=60.0)
    rt.open("idle", 32)
    rt.open("busy", 32, ttl_s=600.0)
    rt.step("busy", torch.tensor(PROMPT))
    assert rt.expire_idle(now=time.monotonic() + 30) == []
    assert rt.expire_idle(now=time.monotonic() + 61) == ["idle"]
    with pytest.raises(SessionNotFound):
        rt.step("idle", torch.tensor([1]))
    assert rt.stats()["sessions"] == 1


def test_rollback_then_redecode_gives_the_same_tokens_and_hidden_states(
    tiny_llama: Path, load_runtime: Callable[..., Any]
) -> None:
    first = load_runtime(tiny_llama, (0, 3))
    last = load_runtime(tiny_llama, (3, 8))
    for rt in (first, last):
        rt.open("s", 64, SamplingParams(max_new_tokens=50))

    def chain(x: torch.Tensor) -> tuple[torch.Tensor, int]:
        h = first.step("s", x).hidden
        assert h is not None
        return h, last.step("s", h).tokens[0]

    _, token = chain(torch.tensor(PROMPT))
    seen = []
    for _ in range(5):
        h, token = chain(torch.tensor([token]))
        seen.append((h.clone(), token))
    for rt in (first, last):
        rt.rollback("s", 3)
    token = seen[1][1]
    for h_before, t_before in seen[2:]:
        h, token = chain(torch.tensor([token]))
        assert token == t_before
        torch.testing.assert_close(h, h_before, rtol=0, atol=1e-6)


def test_positions_start_before_the_end_replays_from_there(
    tiny_llama: Path, load_runtime: Callable[..., Any]
) -> None:
    rt = load_runtime(tiny_llama, (0, 8))
    rt.open("s", 64)
    a = rt.step("s", torch.tensor(PROMPT)).tokens
    rt.step("s", torch.tensor(a))
    again = rt.step("s", torch.tensor(PROMPT), positions_start=0).tokens
    assert again == a
    with pytest.raises(RuntimeInputError, match="past its length"):
        rt.step("s", torch.tensor([1]), positions_start=len(PROMPT) + 5)


def test_bad_requests_raise_permanent_errors_naming_the_problem(
    tiny_llama: Path, load_runtime: Callable[..., Any]
) -> None:
    first = load_runtime(tiny_llama, (0, 4))
    middle = load_runtime(tiny_llama, (4, 6))
    first.open("s", 8)
    middle.open("s", 8)
    with pytest.raises(SessionNotFound):
        first.step("nope", torch.tensor([1]))
    with pytest.raises(RuntimeInputError, match="token ids"):
        first.step("s", torch.zeros(2, 256))
    with pytest.raises(RuntimeInputError, match=r"\[0, "):
        first.step("s", torch.tensor([10**6]))
    with pytest.raises(RuntimeInputError, match="max_length"):
        first.step("s", torch.arange(9))
    with pytest.raises(RuntimeInputError, match="hidden size"):
        middle.step("s", torch.zeros(2, 100))
    with pytest.raises(RuntimeInputError, match="already open"):
        first.open("s", 8)
    with pytest.raises(RuntimeInputError, match="roll back"):
        first.rollback("s", 1)
    with pytest.raises(SessionNotFound):
        first.close("nope")
    assert all(issubclass(e, PermanentError) for e in (RuntimeInputError, SessionNotFound))


def test_stop_tokens_and_max_new_tokens_finish_a_session(
    tiny_llama: Path, load_runtime: Callable[..., Any]
) -> None:
    rt = load_runtime(tiny_llama, (0, 8))
    rt.open("free", 64)
    tokens, _ = _decode(rt, "free", PROMPT, 4)
    rt.open("stop", 64, SamplingParams(stop_token_ids=(tokens[2],)))
    rt.open("short", 64, SamplingParams(max_new_tokens=2))
    finished = []
    x = torch.tensor(PROMPT)
    for _ in range(3):
        out = rt.step("stop", x)
        finished.append(out.finished)
        x = torch.tensor(out.tokens)
    assert finished == [False, False, True]
    assert rt.step("short", torch.tensor(PROMPT)).finished is False
    assert rt.step("short", torch.tensor([tokens[0]])).finished is True
    stats = rt.stats()
    assert stats["steps"] == 4 + 3 + 2 and stats["tokens_served"] == 3 * len(PROMPT) + 3 + 2 + 1
