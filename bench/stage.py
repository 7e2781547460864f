"""Split overhead and memory of in-process stages vs the whole model.

    python -m bench.stage --model DIR --stages K --tokens 128 --json

Greedy-decodes ``--tokens`` tokens after a short prompt twice per round, alternating: with transformers'
``generate`` on the whole model, and through K :class:`~node.runtime.StageRuntime` stages chained in this
process (same threads, same dtype); reports the median of ``--rounds`` rounds. Then measures, each in a
fresh subprocess, the resident memory of a stage holding the first half of the layers and of one holding
all of them (CPU: RSS above the interpreter's baseline after importing torch and the modeling code, which
is the same for both and is not model memory; CUDA: allocated device memory). The last line is one JSON
object with ``tokens_match``, ``split_tokens_per_s``, ``full_tokens_per_s``, ``split_overhead``,
``half_slice_rss_ratio``, ...
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

PROMPT = [5, 17, 42, 99, 7, 300, 12, 64, 901, 33, 21, 8, 1000, 77, 3, 250]


def _full_generate(model: Any, n: int) -> tuple[list[int], float]:
    from transformers import GenerationConfig

    config = GenerationConfig(max_new_tokens=n, min_new_tokens=n, do_sample=False, eos_token_id=None)
    prompt = torch.tensor([PROMPT], device=model.device)
    _sync(model.device)
    t = time.perf_counter()
    out = model.generate(prompt, generation_config=config, attention_mask=torch.ones_like(prompt))
    _sync(model.device)
    return [int(x) for x in out[0, len(PROMPT) :]], time.perf_counter() - t


def _split_generate(runtimes: list[Any], n: int, sid: str) -> tuple[list[int], float]:
    from protocol.sampling import SamplingParams

    for rt in runtimes:
        rt.open(sid, len(PROMPT) + n, SamplingParams(max_new_tokens=n))
    device = runtimes[0].spec.device
    x = torch.tensor(PROMPT)  # token ids travel on the CPU, as they arrive from the wire
    tokens: list[int] = []
    _sync(device)
    t = time.perf_counter()
    for _ in range(n):
        for rt in runtimes:
            out = rt.step(sid, x)
            x = out.hidden if out.hidden is not None else x
        tokens.append(out.tokens[0])
        x = torch.tensor(out.tokens)
    _sync(device)
    elapsed = time.perf_counter() - t
    for rt in runtimes:
        rt.close(sid)
    return tokens, elapsed


def _sync(device: Any) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def split_bounds(layers: int, stages: int) -> list[tuple[int, int]]:
    edges = [round(i * layers / stages) for i in range(stages + 1)]
    return list(itertools.pairwise(edges))


def measure_speed(
    model_dir: Path, stages: int, tokens: int, rounds: int, device: str, dtype: str
) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM

    from node.loader import parse_dtype
    from node.runtime import StageRuntime

    full = AutoModelForCausalLM.from_pretrained(model_dir, dtype=parse_dtype(dtype)).to(device).eval()
    layers = full.config.num_hidden_layers
    runtimes = [
        StageRuntime.load(
            model_dir, b, device=device, dtype=dtype, kv_budget_bytes=8 << 30, fingerprint_every=32
        )
        for b in split_bounds(layers, stages)
    ]
    try:
        # warm-up over the full length: on CUDA the first pass through each sequence length is several
        # times slower (allocator and kernel selection), for transformers and the runtime alike
        _full_generate(full, tokens)
        _split_generate(runtimes, tokens, "warmup")
        full_times, split_times = [], []
        full_tokens: list[int] = []
        split_tokens: list[int] = []
        for r in range(rounds):
            full_tokens, tf = _full_generate(full, tokens)
            split_tokens, ts = _split_generate(runtimes, tokens, f"round{r}")
            full_times.append(tf)
            split_times.append(ts)
    finally:
        for rt in runtimes:
            rt.shutdown()
    full_s, split_s = statistics.median(full_times), statistics.median(split_times)
    return {
        "tokens_match": full_tokens == split_tokens,
        "split_tokens_per_s": tokens / split_s,
        "full_tokens_per_s": tokens / full_s,
        "split_overhead": split_s / full_s - 1.0,
        "split_bounds": split_bounds(layers, stages),
        "rounds": rounds,
    }


_MEMORY_PROBE = """
import json, sys, torch
from pathlib import Path
from node.runtime import StageRuntime
from node.loader import read_config
from node.stage import _family_classes
model, a, b, dtype, device = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
_family_classes(read_config(model).model_type)  # import the modeling code before the baseline


def resident():
    if device.startswith("cuda"):
        return torch.cuda.memory_allocated(), torch.cuda.max_memory_allocated()
    status = Path("/proc/self/status").read_text().splitlines()
    kib = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in status if l.startswith(("VmRSS", "VmHWM"))}
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would report the parent's peak
    return kib["VmRSS"], kib["VmHWM"]


base, _ = resident()
rt = StageRuntime.load(model, (a, b), dtype=dtype, device=device, kv_budget_bytes=1 << 30)
rt.open("s", 64)
x = torch.tensor([5, 17, 42]) if rt.spec.is_first else torch.zeros(3, rt.spec.hidden_size)
rt.step("s", x)
rss, peak = resident()
rt.shutdown()
print(json.dumps({"base": base, "rss": rss, "peak": peak}))
"""


def measure_memory(model_dir: Path, layers: tuple[int, int], dtype: str, device: str) -> dict[str, int]:
    """Resident bytes (CPU: RSS; CUDA: allocated) of a fresh process holding ``layers``."""
    cmd = [sys.executable, "-c", _MEMORY_PROBE, str(model_dir), str(layers[0]), str(layers[1]), dtype, device]
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=root)
    result: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="split overhead and half-slice memory of stage runtimes")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--stages", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-rss", action="store_true", help="skip the subprocess memory measurement")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = measure_speed(args.model, args.stages, args.tokens, args.rounds, args.device, args.dtype)
    result.update({"stages": args.stages, "tokens": args.tokens, "device": args.device, "dtype": args.dtype})
    result["threads"] = torch.get_num_threads()
    if not args.no_rss:
        layers = json.loads((args.model / "config.json").read_text())["num_hidden_layers"]
        half = measure_memory(args.model, (0, layers // 2), args.dtype, args.device)
        full = measure_memory(args.model, (0, layers), args.dtype, args.device)
        result["half_slice_rss_ratio"] = (half["rss"] - half["base"]) / (full["rss"] - full["base"])
        result["half_slice_peak_rss_ratio"] = (half["peak"] - half["base"]) / (full["peak"] - full["base"])
        result["rss_bytes"] = {"half": half, "full": full}
    if not args.json:
        for key in (
            "tokens_match",
            "split_tokens_per_s",
            "full_tokens_per_s",
            "split_overhead",
            "half_slice_rss_ratio",
        ):
            if key in result:
                sys.stdout.write(f"{key:24s} {result[key]}\n")
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
