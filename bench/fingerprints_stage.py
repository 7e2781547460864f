"""Per-stage fingerprint calibration for 16-bit nodes: the validator recomputes a stage from the node's
own inputs, in float32 and in the node's declared dtype.

    python -m bench.fingerprints_stage --model DIR --split 0:4,4:8 [--device cpu] [--dtypes bfloat16]
        [--other-device cpu] [--other-tokens 64] [--other-model DIR] [--measure 1] [--save FILE] [--json]

For each stage its input ``X`` is what an honest upstream stage in the declared dtype sent (token ids on
the first stage): what the node received, and what its receipt's input digest commits to. The validator's
references are the stage over ``X`` in float32 and in the declared dtype (sdpa, one prefill, on
``--device``). Honest variants (eager attention, batched decode, both, the stage on ``--other-device``)
and cheats (``bench.fingerprints.CHEATS``, and ``--other-model``) run over the same ``X`` in the declared
dtype. Every fingerprint is saved (``--save``, hex of its bytes, rewritten after each run so a run cut
short keeps what it did) so other statistics can be computed later without re-running. The last line
printed is a short table: for each variant, the least favourable window against each reference (the
worst window for honest variants, the most honest-looking one for cheats).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.fingerprints import CHEATS, run_stage
from protocol.fingerprints import Fingerprint, WindowCommitment, compare

HONEST: dict[str, dict[str, Any]] = {
    "eager": {"attn_implementation": "eager"},
    "decode_batched": {"decode": True},
    "eager_decode_batched": {"attn_implementation": "eager", "decode": True},
}
TAILS = (1e-3, 5e-3, 1e-2, 2e-2, 5e-2)


def window_stats(expected: WindowCommitment, observed: WindowCommitment) -> dict[str, float]:
    """Overlap and the distribution of relative errors over the indices both committed to."""
    common, e_pos, o_pos = np.intersect1d(expected.indices, observed.indices, return_indices=True)
    e = expected.values[e_pos].astype(np.float64)
    o = observed.values[o_pos].astype(np.float64)
    rel = np.abs(o - e) / np.maximum(np.abs(e), 1e-30)
    out = {
        "overlap": common.shape[0] / observed.k,
        "median": float(np.median(rel)) if rel.size else float("inf"),
        "mean": float(np.mean(rel)) if rel.size else float("inf"),
        "equal": float(np.mean(rel == 0)) if rel.size else 0.0,
    }
    for t in TAILS:
        out[f"tail>{t:g}"] = float(np.mean(rel > t)) if rel.size else 1.0
    return out


def least_favourable(expected: Fingerprint, observed: Fingerprint, honest: bool) -> dict[str, float]:
    """Per statistic, the window closest to failing (honest) or closest to passing (cheat)."""
    by_start = {w.start: w for w in expected.windows}
    stats = [window_stats(by_start[w.start], w) for w in observed.windows if w.start in by_start]
    out = {}
    for key in stats[0]:
        values = [s[key] for s in stats]
        larger_is_honest = key in ("overlap", "equal")
        out[key] = min(values) if honest == larger_is_honest else max(values)
    out["accepted"] = float(compare(expected, observed).ok)  # under protocol.fingerprints' tolerance
    return out


def parse_split(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in (part.split(":") for part in text.split(","))]


class Recorder:
    """Saves every fingerprint as it is made (so a run stopped by a time limit keeps what it did)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.fps: dict[str, Fingerprint] = {}

    def run(self, key: str, *args: Any, **kwargs: Any) -> tuple[torch.Tensor | None, Fingerprint]:
        t = time.perf_counter()
        hidden, fp = run_stage(*args, **kwargs)
        sys.stderr.write(f"{key}: {time.perf_counter() - t:.1f} s\n")
        self.fps[key] = fp
        if self.path is not None:
            self.path.write_text(json.dumps({k: v.to_bytes().hex() for k, v in self.fps.items()}))
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return hidden, fp


def calibrate(args: argparse.Namespace) -> dict[str, Fingerprint]:
    """Every fingerprint, keyed ``"{stage}:{dtype} {ref|honest|cheat} {name}"`` (``dtype``: the node's)."""
    vocab = json.loads((args.model / "config.json").read_text())["vocab_size"]
    ids = torch.randint(0, vocab, (args.tokens,), generator=torch.Generator().manual_seed(0))
    rec = Recorder(args.save)
    for dtype in args.dtypes.split(","):
        upstream: torch.Tensor = ids
        for i, layers in enumerate(parse_split(args.split)):
            stage = f"{layers[0]}-{layers[1]}"
            x = upstream
            key = f"{stage}:{dtype} ref {dtype}"
            hidden, _ = rec.run(key, args.model, layers, x, device=args.device, dtype=dtype)
            upstream = hidden if hidden is not None else upstream
            if args.measure is not None and i not in args.measure:
                continue  # only the honest upstream of a measured stage
            rec.run(f"{stage}:{dtype} ref float32", args.model, layers, x, device=args.device)
            runs: list[tuple[str, dict[str, Any]]] = [(f"honest {name}", kw) for name, kw in HONEST.items()]
            runs += [(f"cheat {name}", {"cheat": CHEATS[name]}) for name in args.cheats.split(",")]
            if args.other_model:
                runs.append(("cheat different_model", {"model_dir": args.other_model}))
            if args.other_device:
                for kernel in ("sdpa", "eager"):
                    kw = {"device": args.other_device, "attn_implementation": kernel}
                    runs.append((f"honest {args.other_device} {kernel} prefill", kw))
            for name, kw in runs:
                kw = {"device": args.device, "dtype": dtype, **kw}
                model = kw.pop("model_dir", args.model)
                inputs = x if kw["device"] == args.device else x[: args.other_tokens]
                rec.run(f"{stage}:{dtype} {name}", model, layers, inputs, **kw)
    return rec.fps


def rows(fps: dict[str, Fingerprint]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """variant -> stage -> reference dtype -> least favourable window statistics."""
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for key, fp in fps.items():
        stage, name = key.split(":", 1)
        dtype, kind = name.split(" ")[:2]
        if name == f"{dtype} ref float32":
            continue
        if kind == "ref":
            name = f"{dtype} honest sdpa prefill"  # the honest node in its dtype vs the float32 ref
        for ref_dtype in ("float32", dtype):
            ref = fps.get(f"{stage}:{dtype} ref {ref_dtype}")
            if ref is not None and ref is not fp:
                stats = least_favourable(ref, fp, honest=kind != "cheat")
                out.setdefault(name, {}).setdefault(stage, {})[ref_dtype] = stats
    return out


def _accepted(stats: list[dict[str, float]]) -> str:
    n = sum(int(s["accepted"]) for s in stats)
    return "all" if n == len(stats) else "none" if n == 0 else f"{n}/{len(stats)}"


def table(rows: dict[str, dict[str, Any]]) -> str:
    """One line per variant, least favourable stage and window; against the float32 and the same-dtype
    reference; ``ok``: how many stages ``protocol.fingerprints.compare`` accepts."""
    lines = [
        f"{'variant':40s} | vs float32: median  >5e-2 ok   | vs same dtype: overlap median   mean     "
        ">5e-3 ok"
    ]
    for name, per_stage in rows.items():
        honest = " honest " in name
        hi = max if honest else min  # the least favourable value of an error ...
        lo = min if honest else max  # ... and of an agreement
        f32 = [s["float32"] for s in per_stage.values()]
        same = [v for s in per_stage.values() for k, v in s.items() if k != "float32"]
        line = (
            f"{name:40s} | {hi(s['median'] for s in f32):.2e} {hi(s['tail>0.05'] for s in f32):.3f} "
            f"{_accepted(f32):4s}"
        )
        if same:
            line += (
                f" | {lo(s['overlap'] for s in same):.2f} {hi(s['median'] for s in same):.2e} "
                f"{hi(s['mean'] for s in same):.2e} {hi(s['tail>0.005'] for s in same):.3f} "
                f"{_accepted(same)}"
            )
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--table-of", type=Path, help="no run: tabulate a --save file")
    parser.add_argument("--split", default="0:4,4:8")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtypes", default="bfloat16")
    parser.add_argument("--other-device", help="also run the honest stage on this device (e.g. cpu)")
    parser.add_argument("--other-tokens", type=int, default=128, help="positions run on --other-device")
    parser.add_argument(
        "--other-model", type=Path, help="same shape, other weights: the different-model cheat"
    )
    parser.add_argument("--cheats", default=",".join(CHEATS), help="names from bench.fingerprints.CHEATS")
    parser.add_argument(
        "--measure", type=lambda t: {int(i) for i in t.split(",")}, help="indices of the stages to measure"
    )
    parser.add_argument("--save", type=Path, help="write every fingerprint here (JSON of hex bytes)")
    parser.add_argument("--json", action="store_true", help="print the JSON result before the table")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    if args.table_of:
        fps = {
            k: Fingerprint.from_bytes(bytes.fromhex(v))
            for k, v in json.loads(args.table_of.read_text()).items()
        }
    else:
        fps = calibrate(args)
    result = rows(fps)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.write(table(result) + "\n")


if __name__ == "__main__":
    main()
