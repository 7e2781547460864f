"""Concurrent decode steps run as one batched forward, with the results of running each alone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from protocol.sampling import SamplingParams

PROMPTS = [
    [5, 17, 42],
    [300, 12, 64, 901, 7, 8, 9],
    [1000],
    [44, 55, 66, 77, 88],
    [2, 3],
    [600, 700, 800, 900],
]
NEW_TOKENS = 24


def _generate(rt: Any, sid: str, prompt: list[int]) -> list[int]:
    x = torch.tensor(prompt)
    out_tokens = []
    for _ in range(NEW_TOKENS):
        out = rt.step(sid, x)
        out_tokens.append(out.tokens[0])
        x = torch.tensor(out.tokens)
    return out_tokens


def test_concurrent_sessions_are_batched_and_get_their_solo_greedy_tokens(
    tiny_qwen2: Path, load_runtime: Callable[..., Any]
) -> None:
    solo = load_runtime(tiny_qwen2, (0, 8))
    expected = []
    for i, prompt in enumerate(PROMPTS):
        solo.open(f"solo{i}", 64, SamplingParams())
        expected.append(_generate(solo, f"solo{i}", prompt))
    assert solo.stats()["mean_batch"] == 1.0

    rt = load_runtime(tiny_qwen2, (0, 8), batch_window_ms=20.0)
    results: dict[int, list[int]] = {}
    for i in range(len(PROMPTS)):
        rt.open(f"s{i}", 64, SamplingParams())

    def worker(i: int) -> None:
        results[i] = _generate(rt, f"s{i}", PROMPTS[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(PROMPTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [results[i] for i in range(len(PROMPTS))] == expected
    assert rt.stats()["mean_batch"] > 2.0, rt.stats()


def test_batched_middle_stage_hidden_states_match_solo_within_float_tolerance(
    tiny_mistral: Path, load_runtime: Callable[..., Any]
) -> None:
    first = load_runtime(tiny_mistral, (0, 2))
    middle = load_runtime(tiny_mistral, (2, 6), batch_window_ms=50.0)
    solo = load_runtime(tiny_mistral, (2, 6))
    streams = []  # per session: the first stage's hidden states for a prefill then 8 decode steps
    for i, prompt in enumerate(PROMPTS[:4]):
        first.open(f"s{i}", 32)
        steps = [first.step(f"s{i}", torch.tensor(prompt)).hidden]
        for t in range(8):
            steps.append(first.step(f"s{i}", torch.tensor([100 + 7 * t + i])).hidden)
        streams.append(steps)
    solo_out = []
    for i, steps in enumerate(streams):
        solo.open(f"s{i}", 32)
        solo_out.append([solo.step(f"s{i}", h).hidden for h in steps])
    batched_out: dict[int, list[torch.Tensor]] = {}
    for i in range(len(streams)):
        middle.open(f"s{i}", 32)

    def worker(i: int) -> None:
        batched_out[i] = [middle.step(f"s{i}", h).hidden for h in streams[i]]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(streams))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for i in range(len(streams)):
        for got, want in zip(batched_out[i], solo_out[i], strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert middle.stats()["mean_batch"] > 1.5, middle.stats()


def test_batched_cache_sees_a_rollback_and_a_solo_step_of_a_member(
    tiny_llama: Path, load_runtime: Callable[..., Any]
) -> None:
    """Steady-state decode reuses the gathered batch cache; a member's rollback and a step it ran alone
    in between must be seen by the next batched step."""
    rt = load_runtime(tiny_llama, (0, 4), batch_window_ms=5000.0)  # flushes when all 3 sessions wait
    solo = load_runtime(tiny_llama, (0, 4))
    sids = ["a", "b", "c"]
    for sid in sids:
        rt.open(sid, 32)
    fed: dict[str, list[int]] = {sid: [] for sid in sids}

    def round_(inputs: dict[str, list[int]]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}

        def one(sid: str) -> None:
            out[sid] = rt.step(sid, torch.tensor(inputs[sid])).hidden

        threads = [threading.Thread(target=one, args=(sid,)) for sid in sids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        for sid in sids:
            fed[sid] += inputs[sid]
        return out

    round_({sid: PROMPTS[i] for i, sid in enumerate(sids)})  # prefills run one by one
    for k in range(4):
        round_({sid: [50 + 10 * k + i] for i, sid in enumerate(sids)})
    rt.rollback("a", 2)
    fed["a"] = fed["a"][:-2]
    rt.step("a", torch.tensor([700, 701]))  # two tokens: runs alone, outside the batch
    fed["a"] += [700, 701]
    batches_before = rt.stats()["batches"]
    last = {}
    for k in range(3):
        last = round_({sid: [900 + k + i] for i, sid in enumerate(sids)})
    assert rt.stats()["batches"] - batches_before == 3  # still batched: one forward per round
    for sid in sids:
        solo.open(sid, 32)
        want = solo.step(sid, torch.tensor(fed[sid])).hidden[-1]
        torch.testing.assert_close(last[sid][-1], want, rtol=1e-4, atol=1e-4)
