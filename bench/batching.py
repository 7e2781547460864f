"""Aggregate decode throughput of one stage runtime serving many concurrent sessions.

    python -m bench.batching --model DIR --sessions 1,8,32 --json

For each concurrency C, C threads (as the node daemon's workers) each open a session on one runtime
holding the whole model, prefill a 16-token prompt, wait at a barrier, then greedy-decode ``--tokens``
tokens; decode steps that arrive within ``--window-ms`` of each other run as one batched forward. The
figure is C x tokens / decode wall time, the best of ``--rounds`` runs (the machine may be shared: the
best run is the one least disturbed by others). The last line is one JSON object with ``tokens_per_s``
({concurrency: tokens/s}), ``speedup`` (over one session) and ``mean_batch``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

from protocol.sampling import SamplingParams

PROMPT_LEN = 16


def run_concurrency(rt: Any, sessions: int, tokens: int, tag: str) -> dict[str, float]:
    barrier = threading.Barrier(sessions + 1)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        sid = f"{tag}-{i}"
        try:
            rt.open(sid, PROMPT_LEN + tokens + 1, SamplingParams(max_new_tokens=tokens + 1))
            # token ids stay on the CPU, as they arrive from the wire
            prompt = torch.tensor([(7 * i + 13 * j) % 1000 + 3 for j in range(PROMPT_LEN)])
            x = torch.tensor(rt.step(sid, prompt).tokens)
            barrier.wait()
            for _ in range(tokens):
                x = torch.tensor(rt.step(sid, x).tokens)
            barrier.wait()
            rt.close(sid)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    barrier.wait()
    before = dict(rt.stats())  # after every prefill: mean_batch counts decode steps only
    start = time.perf_counter()
    barrier.wait()
    elapsed = time.perf_counter() - start
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    after = rt.stats()
    batches = after["batches"] - before["batches"]
    return {
        "tokens_per_s": sessions * tokens / elapsed,
        "mean_batch": (after["steps"] - before["steps"]) / max(1, batches),
        "seconds": elapsed,
    }


def main(argv: list[str] | None = None) -> None:
    from node.runtime import StageRuntime

    parser = argparse.ArgumentParser(description="aggregate decode tokens/s per concurrency")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--sessions", default="1,8,32")
    parser.add_argument("--tokens", type=int, default=32, help="decode tokens per session")
    parser.add_argument("--window-ms", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2, help="runs per concurrency; the best is kept")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    layers = json.loads((args.model / "config.json").read_text())["num_hidden_layers"]
    rt = StageRuntime.load(
        args.model, (0, layers), device=args.device, dtype=args.dtype, batch_window_ms=args.window_ms
    )
    try:
        run_concurrency(rt, 2, args.tokens, "warmup")  # first passes through each length are slow on CUDA
        runs = {
            c: max(
                (run_concurrency(rt, c, args.tokens, f"c{c}r{r}") for r in range(args.rounds)),
                key=lambda run: run["tokens_per_s"],
            )
            for c in map(int, args.sessions.split(","))
        }
    finally:
        rt.shutdown()
    one = runs[min(runs)]["tokens_per_s"]
    result = {
        "tokens_per_s": {str(c): r["tokens_per_s"] for c, r in runs.items()},
        "speedup": {str(c): r["tokens_per_s"] / one for c, r in runs.items()},
        "mean_batch": {str(c): r["mean_batch"] for c, r in runs.items()},
        "decode_tokens_per_session": args.tokens,
        "window_ms": args.window_ms,
        "rounds": args.rounds,
        "device": args.device,
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
    }
    if not args.json:
        for c, r in runs.items():
            sys.stdout.write(
                f"{c:4d} sessions: {r['tokens_per_s']:9.1f} tok/s (mean batch {r['mean_batch']:.1f})\n"
            )
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
