"""Fingerprints accept honest variants of a stage's computation and reject each way of cheating.

The reference is what a validator computes: the stage with sdpa, one prefill over the whole sequence, in
float32 (any node) or in the node's declared 16-bit dtype from the node's own inputs. Tolerances and the
measurements behind them: docs/VERIFICATION.md.
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
    FLOAT16_IN_FLOAT16,
    FLOAT32,
    SIXTEEN_BIT,
    Fingerprint,
    FingerprintFormatError,
    FingerprintReferenceError,
    WindowCommitment,
    compare,
    tolerance_for,
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


SAME_DTYPE_HONEST: dict[str, tuple[tuple[str, Any], ...]] = {
    "eager_attention": (("attn_implementation", "eager"),),
    "batched_decode": (("decode", True),),
    "eager_attention_batched_decode": (("attn_implementation", "eager"), ("decode", True)),
}


@cache
def _own_inputs(model: Path, dtype: str) -> dict[tuple[int, int], tuple[torch.Tensor, Fingerprint]]:
    """Per stage: the input an honest ``dtype`` upstream sent (what the node's receipt commits to) and
    the validator's reference over it, recomputed in ``dtype``."""
    upstream, _ = _inputs(model)[STAGES[0]]
    out = {}
    for layers in STAGES:
        hidden, fp = run_stage(model, layers, upstream, dtype=dtype)
        out[layers] = (upstream, fp)
        upstream = hidden if hidden is not None else upstream
    return out


def _same_dtype_run(model: Path, layers: tuple[int, int], dtype: str, name: str) -> Fingerprint:
    """The node in ``dtype`` over its own inputs: an honest variant, or a cheat (name in CHEATS)."""
    inputs, _ = _own_inputs(model, dtype)[layers]
    if name in SAME_DTYPE_HONEST:
        return run_stage(model, layers, inputs, dtype=dtype, **dict(SAME_DTYPE_HONEST[name]))[1]
    if name == "different_model":
        return run_stage(cached_model("llama", "tiny", model.parent, seed=1), layers, inputs, dtype=dtype)[1]
    return run_stage(model, layers, inputs, dtype=dtype, cheat=CHEATS[name])[1]


@pytest.mark.parametrize("variant", sorted(SAME_DTYPE_HONEST))
@pytest.mark.parametrize("layers", STAGES, ids=lambda s: f"{s[0]}-{s[1]}")
def test_honest_float16_variant_passes_a_float16_recomputation(
    tiny_llama: Path, variant: str, layers: tuple[int, int]
) -> None:
    _, reference = _own_inputs(tiny_llama, "float16")[layers]
    verdict = compare(reference, _same_dtype_run(tiny_llama, layers, "float16", variant))
    assert verdict.ok, verdict.reason
    assert verdict.pooled is not None and verdict.pooled.tail_fraction <= 0.07


@pytest.mark.parametrize("name", ["different_model", *sorted(CHEATS)])
@pytest.mark.parametrize("layers", STAGES, ids=lambda s: f"{s[0]}-{s[1]}")
def test_cheat_on_a_float16_node_fails_a_float16_recomputation(
    tiny_llama: Path, name: str, layers: tuple[int, int]
) -> None:
    _, reference = _own_inputs(tiny_llama, "float16")[layers]
    verdict = compare(reference, _same_dtype_run(tiny_llama, layers, "float16", name))
    assert not verdict.ok
    assert verdict.reason


def test_int8_weights_on_a_float16_node_are_caught_by_the_pooled_tail(tiny_llama: Path) -> None:
    _, reference = _own_inputs(tiny_llama, "float16")[STAGES[1]]
    verdict = compare(reference, _same_dtype_run(tiny_llama, STAGES[1], "float16", "int8_weights"))
    assert verdict.reason.startswith(f"all {TOKENS // 32} windows:")
    assert all(w.ok for w in verdict.windows)  # no single window of 128 entries shows it


def test_bf16_computation_declared_as_float16_fails_a_float16_recomputation(tiny_llama: Path) -> None:
    inputs, reference = _own_inputs(tiny_llama, "float16")[STAGES[1]]
    bf16 = run_stage(tiny_llama, STAGES[1], inputs, dtype="bfloat16")[1]
    assert not compare(reference, replace(bf16, dtype="float16")).ok


@pytest.mark.parametrize("variant", sorted(SAME_DTYPE_HONEST))
@pytest.mark.parametrize("layers", STAGES, ids=lambda s: f"{s[0]}-{s[1]}")
def test_honest_bf16_variant_passes_a_bf16_recomputation(
    tiny_llama: Path, variant: str, layers: tuple[int, int]
) -> None:
    _, reference = _own_inputs(tiny_llama, "bfloat16")[layers]
    verdict = compare(reference, _same_dtype_run(tiny_llama, layers, "bfloat16", variant))
    assert verdict.ok, verdict.reason


@pytest.mark.parametrize("name", ["different_model", "skip_layer", "repeat_layer", "int4_weights_g64"])
def test_coarse_cheat_on_a_bf16_node_fails_a_bf16_recomputation(tiny_llama: Path, name: str) -> None:
    _, reference = _own_inputs(tiny_llama, "bfloat16")[STAGES[1]]
    assert not compare(reference, _same_dtype_run(tiny_llama, STAGES[1], "bfloat16", name)).ok


def test_tolerance_is_chosen_by_the_node_dtype_and_the_recomputation_dtype() -> None:
    assert tolerance_for("float32", "float32") is FLOAT32
    assert tolerance_for("float16", "float32") is SIXTEEN_BIT
    assert tolerance_for("bfloat16", "float32") is SIXTEEN_BIT
    assert tolerance_for("bfloat16", "bfloat16") is SIXTEEN_BIT  # honest bf16 kernels drift as far
    assert tolerance_for("float16", "float16") is FLOAT16_IN_FLOAT16


@pytest.mark.parametrize(("node", "reference"), [("float32", "bfloat16"), ("bfloat16", "float16")])
def test_a_recomputation_in_a_third_dtype_is_refused(node: str, reference: str) -> None:
    observed = Fingerprint(64, (_window(0, 16, 0),), node)
    expected = Fingerprint(64, (_window(0, 16, 0),), reference)
    with pytest.raises(FingerprintReferenceError, match=f"recompute in float32 or in {node}"):
        compare(expected, observed)


def _scaled(window: WindowCommitment, every: int, factor: float) -> WindowCommitment:
    values = window.values.copy()
    values[::every] *= factor
    return replace(window, values=values)


def test_pooled_tail_fails_a_job_whose_windows_each_pass() -> None:
    windows = tuple(_window(32 * i, 100, i) for i in range(4))
    expected = Fingerprint(64, windows, "float16")
    observed = Fingerprint(64, tuple(_scaled(w, 5, 1.006) for w in windows), "float16")  # 20% off by 6e-3
    verdict = compare(expected, observed)
    assert all(w.ok for w in verdict.windows)
    assert not verdict.ok and verdict.reason.startswith("all 4 windows: 20.0% of entries off by more than")
    honest = Fingerprint(64, tuple(_scaled(w, 25, 1.006) for w in windows), "float16")  # 4%
    assert compare(expected, honest).ok


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
