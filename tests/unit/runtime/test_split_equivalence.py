"""K in-process stages chained give the full model's greedy tokens, for every family and boundary."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

from protocol.sampling import SamplingParams
from tests.unit.runtime.conftest import FAMILIES, PROMPT

NEW_TOKENS = 64
# K = 2 at every boundary of the 8-layer tiny models, and K = 4 splits that together cross every boundary
SPLITS = [(0, b, 8) for b in range(1, 8)] + [(0, 2, 4, 6, 8), (0, 1, 3, 5, 8), (0, 3, 6, 7, 8)]


@cache
def _reference(path: Path) -> list[int]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path)
    prompt = torch.tensor([PROMPT])
    out = model.generate(prompt, max_new_tokens=NEW_TOKENS, do_sample=False)
    return [int(t) for t in out[0, len(PROMPT) :]]


def _chain_generate(runtimes: list[Any], n: int) -> list[int]:
    for rt in runtimes:
        rt.open("s", len(PROMPT) + n, SamplingParams(max_new_tokens=n))
    x: torch.Tensor = torch.tensor(PROMPT)
    tokens: list[int] = []
    for _ in range(n):
        for rt in runtimes:
            out = rt.step("s", x)
            x = out.hidden if out.hidden is not None else x
        tokens.append(out.tokens[0])
        x = torch.tensor(out.tokens)
    return tokens


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("bounds", SPLITS, ids=lambda b: "-".join(map(str, b)))
def test_split_stages_give_full_model_greedy_tokens(
    family: str, bounds: tuple[int, ...], model_dir: Callable[[str], Path], load_runtime: Callable[..., Any]
) -> None:
    path = model_dir(family)
    reference = _reference(path)
    assert len(reference) == NEW_TOKENS, "the reference stopped early at EOS; pick another prompt"
    runtimes = [load_runtime(path, (a, b)) for a, b in itertools.pairwise(bounds)]
    assert [rt.spec.is_first for rt in runtimes] == [True] + [False] * (len(runtimes) - 1)
    assert [rt.spec.is_last for rt in runtimes] == [False] * (len(runtimes) - 1) + [True]
    assert _chain_generate(runtimes, NEW_TOKENS) == reference


def test_single_stage_in_bf16_tracks_the_full_model(
    model_dir: Callable[[str], Path], load_runtime: Callable[..., Any]
) -> None:
    """bf16 is not bit-exact, but its first tokens agree with fp32 on these models."""
    path = model_dir("llama")
    rt = load_runtime(path, (0, 8), dtype="bfloat16")
    assert rt.spec.dtype == "bfloat16"
    assert _chain_generate([rt], 8)[:4] == _reference(path)[:4]
