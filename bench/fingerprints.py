"""Calibration of fingerprint tolerances: distances of honest variants and of cheats from a reference.

    python -m bench.fingerprints --json [--families llama,qwen2,mistral] [--tokens 128]

For each family (tiny models), each stage of a 2-stage split (0:4 and 4:8), and each variant, the stage
is run over the same token sequence (its inputs coming from an honest upstream run of the same variant
for honest variants, from the fp32 reference upstream for cheats), committed every 32 positions, and
compared with the fp32/sdpa/prefill reference. Prints per variant the worst window over all families
and stages: min overlap, max median and max mean relative error, and the verdict under the default
tolerance. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from node.devnet.cheats import perturb_outputs, quantise_weights, repeat_layer, skip_layer
from node.devnet.models import cached_model
from node.runtime import StageRuntime
from protocol.fingerprints import TOLERANCES, Fingerprint, compare, tolerance_for, window_distance

CACHE = Path(".cache/models")
SPLIT = ((0, 4), (4, 8))

Cheat = Callable[[Any], object]
HONEST: dict[str, dict[str, Any]] = {
    "bf16": {"dtype": "bfloat16"},
    "eager": {"attn_implementation": "eager"},
    "decode_batched": {"decode": True},
    "bf16_eager_decode": {"dtype": "bfloat16", "attn_implementation": "eager", "decode": True},
}
CHEATS: dict[str, Cheat] = {
    "skip_layer": lambda s: skip_layer(s, 1),
    "repeat_layer": lambda s: repeat_layer(s, 1),
    "int8_weights": lambda s: quantise_weights(s, 8),
    "int4_weights_g64": lambda s: quantise_weights(s, 4, group_size=64),
    "noise_1e-2": lambda s: perturb_outputs(s, 1e-2),
}


def run_stage(
    model_dir: Path,
    layers: tuple[int, int],
    inputs: torch.Tensor,
    *,
    dtype: str = "float32",
    attn_implementation: str = "sdpa",
    decode: bool = False,
    cheat: Cheat | None = None,
    device: str = "cpu",
) -> tuple[torch.Tensor | None, Fingerprint]:
    """The stage's output hidden states (None on the last stage) and its fingerprint over ``inputs``.

    ``decode``: feed the sequence one position at a time, batched with 3 other concurrent sessions,
    the way a serving node computes it (the reference is one prefill, the way a validator does).
    """
    rt = StageRuntime.load(
        model_dir,
        layers,
        dtype=dtype,
        attn_implementation=attn_implementation,
        kv_budget_bytes=4 << 30,
        device=device,
    )
    try:
        if cheat is not None:
            cheat(rt.stage)
        n = int(inputs.shape[0])
        rt.open("main", n)
        if not decode:
            out = rt.step("main", inputs)
            fp = Fingerprint.from_bytes(out.fingerprint) if out.fingerprint else None
            return out.hidden, _require(fp)
        others = [f"other{i}" for i in range(3)]
        for sid in others:
            rt.open(sid, n)
        fps: list[Fingerprint] = []
        hidden: list[torch.Tensor] = []

        def drive(sid: str, seq: torch.Tensor) -> None:
            for t in range(n):
                out = rt.step(sid, seq[t : t + 1])
                if sid == "main":
                    if out.hidden is not None:
                        hidden.append(out.hidden)
                    if out.fingerprint:
                        fps.append(Fingerprint.from_bytes(out.fingerprint))

        threads = [threading.Thread(target=drive, args=("main", inputs))]
        threads += [threading.Thread(target=drive, args=(sid, inputs.flip(0))) for sid in others]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        merged = fps[0]
        for fp in fps[1:]:
            merged = merged.merge(fp)
        return (torch.cat(hidden) if hidden else None), merged
    finally:
        rt.shutdown()


def _require(fp: Fingerprint | None) -> Fingerprint:
    if fp is None:
        raise RuntimeError("no fingerprint window completed; use at least 32 tokens")
    return fp


def worst(expected: Fingerprint, observed: Fingerprint) -> dict[str, float]:
    """The least favourable window's distances."""
    by_start = {w.start: w for w in expected.windows}
    tol = tolerance_for(observed.dtype)
    d = [window_distance(by_start[w.start], w, tol.tail_rel_err) for w in observed.windows]
    return {
        "overlap": min(x.overlap for x in d),
        "median_rel_err": max(x.median_rel_err for x in d),
        "mean_rel_err": max(x.mean_rel_err for x in d),
        "tail_fraction": max(x.tail_fraction for x in d),
        "accepted": bool(compare(expected, observed)),
    }


def calibrate(families: list[str], tokens: int) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {}
    for family in families:
        model = cached_model(family, "tiny", CACHE)
        other = cached_model(family, "tiny", CACHE, seed=1)
        ids = torch.randint(0, 1024, (tokens,), generator=torch.Generator().manual_seed(0))
        ref_hidden = {}
        reference = {}
        upstream: torch.Tensor = ids
        for layers in SPLIT:
            h, fp = run_stage(model, layers, upstream)
            reference[layers], ref_hidden[layers] = fp, upstream
            upstream = h if h is not None else upstream
        for name, kwargs in HONEST.items():
            upstream = ids
            for layers in SPLIT:
                h, fp = run_stage(model, layers, upstream, **kwargs)
                results.setdefault(f"honest:{name}", {})[f"{family}:{layers[0]}-{layers[1]}"] = worst(
                    reference[layers], fp
                )
                upstream = h if h is not None else upstream
        for layers in SPLIT:
            key = f"{family}:{layers[0]}-{layers[1]}"
            _, fp = run_stage(other, layers, ref_hidden[layers])
            results.setdefault("cheat:different_model", {})[key] = worst(reference[layers], fp)
            for name, cheat in CHEATS.items():
                _, fp = run_stage(model, layers, ref_hidden[layers], cheat=cheat)
                results.setdefault(f"cheat:{name}", {})[key] = worst(reference[layers], fp)
                _, fp = run_stage(model, layers, ref_hidden[layers], cheat=cheat, dtype="bfloat16")
                results.setdefault(f"cheat:{name}+bf16", {})[key] = worst(reference[layers], fp)
    summary = {}
    for variant, per_stage in results.items():
        summary[variant] = {
            "min_overlap": min(v["overlap"] for v in per_stage.values()),
            "max_median_rel_err": max(v["median_rel_err"] for v in per_stage.values()),
            "max_mean_rel_err": max(v["mean_rel_err"] for v in per_stage.values()),
            "min_median_rel_err": min(v["median_rel_err"] for v in per_stage.values()),
            "min_mean_rel_err": min(v["mean_rel_err"] for v in per_stage.values()),
            "max_tail_fraction": max(v["tail_fraction"] for v in per_stage.values()),
            "min_tail_fraction": min(v["tail_fraction"] for v in per_stage.values()),
            "all_accepted": all(v["accepted"] for v in per_stage.values()),
            "none_accepted": not any(v["accepted"] for v in per_stage.values()),
        }
    return {
        "tolerances": {f"{node} vs {ref}": v.__dict__ for (node, ref), v in TOLERANCES.items()},
        "variants": summary,
        "detail": results,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", default="llama,qwen2,mistral")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    out = calibrate(args.families.split(","), args.tokens)
    if not args.json:
        for variant, s in out["variants"].items():
            sys.stdout.write(
                f"{variant:28s} overlap>={s['min_overlap']:.2f} median<={s['max_median_rel_err']:.2e} "
                f"mean<={s['max_mean_rel_err']:.2e} (min median {s['min_median_rel_err']:.2e}, "
                f"min mean {s['min_mean_rel_err']:.2e}) tail {s['min_tail_fraction']:.3f}.."
                f"{s['max_tail_fraction']:.3f} all_ok={s['all_accepted']} "
                f"none_ok={s['none_accepted']}\n"
            )
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
