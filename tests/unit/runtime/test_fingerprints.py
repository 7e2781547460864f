"""Fingerprints accept honest variants of a stage's computation and reject each way of cheating.

The reference is what a validator computes: the stage in float32 with sdpa, one prefill over the whole
sequence. Tolerances and the measurements behind them: docs/VERIFICATION.md.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.fingerprints import CHEATS, run_stage
from node.devnet.models import cached_model
from node.fingerprint import WindowAccumulator, commit
from protocol.fingerprints import (
    Fingerprint,
    FingerprintFormatError,
    WindowCommitment,
    compare,
)

STAGES = ((0, 4), (4, 8))
TOKENS = 64  # two fingerprint windows


@cache
def _inputs(model: Path) -> dict[tuple[int, int], tuple[torch.Tensor, Fingerprint]]:
    """Per stage: its fp32 input and the validator's reference fingerprint of its output."""
    ids = torch.randint(0, 1024, (TOKENS,), generator=torch.Generator().manual_seed(0))
    out = {}
    upstream = ids
    for layers in STAGES:
        hidden, fp = run_stage(model, layers, upstream)
        out[layers] = (upstream, fp)
        upstream = hidden if hidden is not None else upstream
    return out


@cache
def _honest_chain(model: Path, variant: tuple[tuple[str, Any], ...]) -> dict[tuple[int, int], Fingerprint]:
    """Every stage run honestly in ``variant`` (its inputs from the same variant upstream)."""
    upstream, _ = _inputs(model)[STAGES[0]]
    out = {}
    for layers in STAGES:
        hidden, fp = run_stage(model, layers, upstream, **dict(variant))
        out[layers] = fp
        upstream = hidden if hidden is not None else upstream
    return out


HONEST = {
    "bf16": (("dtype", "bfloat16"),),
    "eager_attention": (("attn_implementation", "eager"),),
    "batched_decode": (("decode", True),),
    "bf16_eager_batched_decode": (("dtype", "bfloat16"), ("attn_implementation", "eager"), ("decode", True)),
}


@pytest.mark.parametrize("variant", sorted(HONEST))
@pytest.mark.parametrize("layers", STAGES, ids=lambda s: f"{s[0]}-{s[1]}")
def test_honest_variant_is_accepted(tiny_llama: Path, variant: str, layers: tuple[int, int]) -> None:
    _, reference = _inputs(tiny_llama)[layers]
    observed = _honest_chain(tiny_llama, HONEST[variant])[layers]
    verdict = compare(reference, observed)
    assert verdict.ok, verdict.reason
    assert len(verdict.windows) == TOKENS // 32


def _cheat(model: Path, layers: tuple[int, int], name: str, dtype: str) -> Fingerprint:
    inputs, _ = _inputs(model)[layers]
    if name == "different_model":
        other = cached_model("llama", "tiny", model.parent, seed=1)
        return run_stage(other, layers, inputs, dtype=dtype)[1]
    return run_stage(model, layers, inputs, dtype=dtype, cheat=CHEATS[name])[1]


@pytest.mark.parametrize("name", ["different_model", *sorted(CHEATS)])
@pytest.mark.parametrize("layers", STAGES, ids=lambda s: f"{s[0]}-{s[1]}")
def test_cheat_on_a_float32_node_is_rejected(tiny_llama: Path, name: str, layers: tuple[int, int]) -> None:
    _, reference = _inputs(tiny_llama)[layers]
    verdict = compare(reference, _cheat(tiny_llama, layers, name, "float32"))
    assert not verdict.ok
    assert verdict.reason


@pytest.mark.parametrize("name", ["different_model", "skip_layer", "repeat_layer", "int4_weights_g64"])
@pytest.mark.parametrize("layers", STAGES, ids=lambda s: f"{s[0]}-{s[1]}")
def test_coarse_cheat_on_a_bf16_node_is_rejected(
    tiny_llama: Path, name: str, layers: tuple[int, int]
) -> None:
    _, reference = _inputs(tiny_llama)[layers]
    assert not compare(reference, _cheat(tiny_llama, layers, name, "bfloat16")).ok


def test_bf16_computation_declared_as_float32_is_rejected(tiny_llama: Path) -> None:
    _, reference = _inputs(tiny_llama)[STAGES[1]]
    bf16 = _honest_chain(tiny_llama, HONEST["bf16"])[STAGES[1]]
    assert compare(reference, bf16).ok
    assert not compare(reference, replace(bf16, dtype="float32")).ok


def test_decode_windows_equal_the_prefill_commitment(tiny_llama: Path) -> None:
    hidden = torch.randn(100, 256, generator=torch.Generator().manual_seed(1))
    whole = commit(hidden, start=0)
    acc = WindowAccumulator(window=32, k=128, hidden_size=256)
    windows = acc.add(0, hidden[:10])
    for t in range(10, 100):
        windows += acc.add(t, hidden[t : t + 1])
    assert [w.start for w in windows] == [0, 32, 64]
    for a, b in zip(windows, whole.windows, strict=True):
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.values, b.values)


def test_rollback_inside_a_window_recommits_it_and_across_a_boundary_skips_it() -> None:
    hidden = torch.randn(80, 8, generator=torch.Generator().manual_seed(2))
    acc = WindowAccumulator(window=32, k=16, hidden_size=8)
    assert [w.start for w in acc.add(0, hidden[:30])] == []
    acc.rollback(20)
    assert [w.start for w in acc.add(20, hidden[20:40])] == [0]
    acc.rollback(35)  # inside window 1, whose rows 32..34 are still held
    assert [w.start for w in acc.add(35, hidden[35:64])] == [32]
    acc.rollback(40)  # window 1 again; nothing past row 63 was written, so its rows are all held
    assert [w.start for w in acc.add(40, hidden[40:70])] == [32]
    acc.rollback(50)  # rows 32..49 were overwritten by rows 64..69: window 1 is not committed again
    assert [w.start for w in acc.add(50, hidden[50:80])] == []


def _window(start: int, k: int, seed: int) -> WindowCommitment:
    rng = np.random.default_rng(seed)
    return WindowCommitment(
        start=start,
        length=32,
        indices=np.sort(rng.choice(32 * 64, size=k, replace=False)).astype(np.uint32),
        values=rng.standard_normal(k).astype(np.float32),
    )


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 4),
    k=st.integers(1, 64),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from(["float32", "bfloat16"]),
)
def test_fingerprint_bytes_round_trip(n: int, k: int, seed: int, dtype: str) -> None:
    fp = Fingerprint(64, tuple(_window(32 * i, k, seed + i) for i in range(n)), dtype)
    data = fp.to_bytes()
    back = Fingerprint.from_bytes(data)
    assert back.to_bytes() == data and back.dtype == dtype
    assert len(fp.digest()) == 32 and compare(fp, back).ok


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(0, 200), junk=st.binary(max_size=8))
def test_malformed_fingerprint_bytes_are_rejected(cut: int, junk: bytes) -> None:
    data = Fingerprint(64, (_window(0, 16, 0), _window(32, 16, 1))).to_bytes()
    if cut < len(data):
        with pytest.raises(FingerprintFormatError):
            Fingerprint.from_bytes(data[:cut])
    if junk:
        with pytest.raises(FingerprintFormatError):
            Fingerprint.from_bytes(data + junk)
    with pytest.raises(FingerprintFormatError):
        Fingerprint.from_bytes(b"XXXX" + data[4:])


def test_missing_window_is_a_mismatch() -> None:
    observed = Fingerprint(64, (_window(0, 16, 0), _window(32, 16, 1)))
    expected = Fingerprint(64, (_window(0, 16, 0),))
    verdict = compare(expected, observed)
    assert not verdict.ok and "not recomputed" in verdict.reason
