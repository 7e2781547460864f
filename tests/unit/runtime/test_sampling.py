"""Sampling: the parameters' validation, transformers-equivalent processors, and re-derivable draws."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from node.sampling import sample, session_seed
from protocol.sampling import SamplingParams
from tests.unit.runtime.conftest import PROMPT


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": -1.0},
        {"temperature": float("nan")},
        {"top_k": -1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"repetition_penalty": 0.0},
        {"stop_token_ids": (-3,)},
        {"seed": -1},
        {"max_new_tokens": 0},
    ],
)
def test_invalid_sampling_params_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SamplingParams(**kwargs)


def test_sampling_params_round_trip_through_plain_data() -> None:
    params = SamplingParams(temperature=0.7, top_k=40, top_p=0.9, stop_token_ids=[2, 3], seed=5)  # type: ignore[arg-type]
    assert params.stop_token_ids == (2, 3)
    assert SamplingParams.from_dict(params.to_dict()) == params
    with pytest.raises(ValueError, match="unknown"):
        SamplingParams.from_dict({"temprature": 1.0})


def test_greedy_is_argmax_and_top_k_one_is_greedy_at_any_temperature() -> None:
    logits = torch.randn(500, generator=torch.Generator().manual_seed(0))
    best = int(torch.argmax(logits))
    assert sample(logits, SamplingParams(), seed=1, position=0) == best
    for position in range(20):
        assert sample(logits, SamplingParams(temperature=5.0, top_k=1), seed=1, position=position) == best
        assert sample(logits, SamplingParams(temperature=5.0, top_p=1e-6), seed=1, position=position) == best


def test_repetition_penalty_matches_transformers() -> None:
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    logits = torch.randn(100, generator=torch.Generator().manual_seed(1))
    context = [int(torch.argmax(logits)), 5, 5, 17]
    ours = sample(logits, SamplingParams(repetition_penalty=3.0), seed=0, position=0, context=context)
    theirs = RepetitionPenaltyLogitsProcessor(3.0)(torch.tensor([context]), logits[None].clone())
    assert ours == int(torch.argmax(theirs))


def test_a_sampled_token_is_rederived_from_logits_seed_and_position() -> None:
    logits = torch.randn(1000, generator=torch.Generator().manual_seed(2))
    params = SamplingParams(temperature=1.0, top_p=0.95, seed=11)
    draws = [sample(logits, params, seed=11, position=p) for p in range(64)]
    assert draws == [sample(logits.clone(), params, seed=11, position=p) for p in range(64)]
    assert len(set(draws)) > 10  # positions draw independently
    assert draws != [sample(logits, params, seed=12, position=p) for p in range(64)]


def test_top_k_never_samples_outside_the_k_best() -> None:
    logits = torch.randn(300, generator=torch.Generator().manual_seed(3))
    allowed = set(torch.topk(logits, 5).indices.tolist())
    params = SamplingParams(temperature=2.0, top_k=5)
    assert {sample(logits, params, seed=0, position=p) for p in range(200)} <= allowed


def test_session_seed_is_the_clients_or_derived_from_the_session_id() -> None:
    assert session_seed(SamplingParams(seed=9), "x") == 9
    assert session_seed(SamplingParams(), "x") == session_seed(SamplingParams(), "x")
    assert session_seed(SamplingParams(), "x") != session_seed(SamplingParams(), "y")


def test_runtime_samples_are_rederivable_from_full_model_logits(
    tiny_llama: Path, load_runtime: Callable[..., Any]
) -> None:
    from transformers import AutoModelForCausalLM

    params = SamplingParams(temperature=0.9, top_k=50, repetition_penalty=1.2, seed=3)
    rt = load_runtime(tiny_llama, (0, 8))
    rt.open("s", 64, params)
    tokens = []
    x = torch.tensor(PROMPT)
    for _ in range(12):
        tokens.append(rt.step("s", x).tokens[0])
        x = torch.tensor(tokens[-1:])
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    sequence = PROMPT + tokens
    with torch.no_grad():
        logits = model(torch.tensor([sequence])).logits[0]  # (T, V)
    for i, token in enumerate(tokens):
        position = len(PROMPT) + i
        rederived = sample(
            logits[position - 1], params, seed=3, position=position, context=sequence[:position]
        )
        assert rederived == token
