"""Fingerprint distances on a GPU: the honest variants a CPU machine cannot show.

    python -m bench.gpu_fingerprints --tiny DIR --big DIR --out DIR --json

1. The tiny model's two stages (0:4, 4:8) on CUDA in float32, bfloat16 and float16 (prefill, and bf16
   batched decode); every fingerprint is written to ``--out`` so it can be compared with a CPU float32
   reference on another machine (``--compare-with``).
2. The 8B-shaped model's two stages (0:16, 16:32): bf16 vs a float32 reference on the GPU, bf16 with
   eager attention, and coarse cheats on a bf16 node (a skipped layer, int4 weights): the honest drift of
   16-bit arithmetic over 32 layers, which sets the 16-bit tolerance.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import Any

import torch

from bench.fingerprints import CHEATS, run_stage
from protocol.fingerprints import Fingerprint, compare, tolerance_for, window_distance

TOKENS = 128


def distance(expected: Fingerprint, observed: Fingerprint) -> dict[str, Any]:
    tol = tolerance_for(observed.dtype)
    by_start = {w.start: w for w in expected.windows}
    d = [window_distance(by_start[w.start], w, tol.tail_rel_err) for w in observed.windows]
    verdict = compare(expected, observed)
    return {
        "min_overlap": min(x.overlap for x in d),
        "max_median_rel_err": max(x.median_rel_err for x in d),
        "max_mean_rel_err": max(x.mean_rel_err for x in d),
        "max_tail_fraction": max(x.tail_fraction for x in d),
        "accepted": verdict.ok,
        "reason": verdict.reason,
    }


def chain(model: Path, splits: list[tuple[int, int]], ids: torch.Tensor, **kwargs: Any) -> list[Fingerprint]:
    out, upstream = [], ids
    for layers in splits:
        hidden, fp = run_stage(model, layers, upstream, device="cuda", **kwargs)
        out.append(fp)
        upstream = hidden if hidden is not None else upstream
        gc.collect()
        torch.cuda.empty_cache()
    return out


def tiny(model: Path, out: Path) -> dict[str, Any]:
    ids = torch.randint(0, 1024, (TOKENS,), generator=torch.Generator().manual_seed(0))
    splits = [(0, 4), (4, 8)]
    variants = {
        "float32": {"dtype": "float32"},
        "bfloat16": {"dtype": "bfloat16"},
        "float16": {"dtype": "float16"},
        "bfloat16_decode_batched": {"dtype": "bfloat16", "decode": True},
    }
    fps = {name: chain(model, splits, ids, **kw) for name, kw in variants.items()}
    result = {}
    for name, stage_fps in fps.items():
        for layers, fp in zip(splits, stage_fps, strict=True):
            (out / f"tiny_{name}_{layers[0]}-{layers[1]}.fp").write_bytes(fp.to_bytes())
            ref = fps["float32"][splits.index(layers)]
            result[f"{name}:{layers[0]}-{layers[1]}"] = distance(ref, fp)
    return result


def big(model: Path) -> dict[str, Any]:
    ids = torch.randint(0, 100000, (TOKENS,), generator=torch.Generator().manual_seed(0))
    result: dict[str, Any] = {}
    h0, ref_a = run_stage(model, (0, 16), ids, device="cuda", dtype="float32")
    gc.collect()
    _, ref_b = run_stage(model, (16, 32), h0, device="cuda", dtype="float32")
    gc.collect()
    torch.cuda.empty_cache()
    hb, bf_a = run_stage(model, (0, 16), ids, device="cuda", dtype="bfloat16")
    result["bf16:0-16"] = distance(ref_a, bf_a)
    _, bf_b = run_stage(model, (16, 32), hb, device="cuda", dtype="bfloat16")
    result["bf16:16-32"] = distance(ref_b, bf_b)
    _, bf_be = run_stage(model, (16, 32), hb, device="cuda", dtype="bfloat16", attn_implementation="eager")
    result["bf16_eager:16-32"] = distance(ref_b, bf_be)
    h0b = h0.to(torch.bfloat16)
    for name in ("skip_layer", "int4_weights_g64", "int8_weights", "noise_1e-2"):
        _, fp = run_stage(model, (16, 32), h0b, device="cuda", dtype="bfloat16", cheat=CHEATS[name])
        result[f"cheat:{name}+bf16:16-32"] = distance(ref_b, fp)
        gc.collect()
        torch.cuda.empty_cache()
    return result


def compare_dir(reference_cpu: dict[str, Fingerprint], gpu_dir: Path) -> dict[str, Any]:
    """CPU float32 reference vs every GPU fingerprint written by :func:`tiny`."""
    result = {}
    for path in sorted(gpu_dir.glob("tiny_*.fp")):
        stage = path.stem.rsplit("_", 1)[1]
        result[path.stem] = distance(reference_cpu[stage], Fingerprint.from_bytes(path.read_bytes()))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", type=Path)
    parser.add_argument("--big", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare-with", type=Path, help="a GPU --out directory, compared on this CPU")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    if args.compare_with:
        ids = torch.randint(0, 1024, (TOKENS,), generator=torch.Generator().manual_seed(0))
        h, a = run_stage(args.tiny, (0, 4), ids)
        _, b = run_stage(args.tiny, (4, 8), h)
        result["cpu_fp32_vs_gpu"] = compare_dir({"0-4": a, "4-8": b}, args.compare_with)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        if args.tiny:
            result["tiny_gpu_vs_gpu_fp32"] = tiny(args.tiny, args.out)
        if args.big:
            result["8b_gpu_vs_gpu_fp32"] = big(args.big)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
