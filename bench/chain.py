"""Tokens/s through a chain of K ``market-node`` processes vs the whole model in one process.

::

    python -m bench.chain --model .cache/models/llama-small-seed0 --stages 4 --tokens 128 --json

Starts K real node processes on loopback (even layer splits, ``--threads`` torch threads each), drives
them with the stage-protocol harness (greedy, one session), and runs the same decode in this process with
one stage runtime holding every layer (same kernels, no network). Both time decode steps only (the
prefill is excluded). The last line is JSON:

- ``tokens_match``: the chain's tokens equal the single-process runtime's and transformers ``generate``'s;
- ``chain_tokens_per_s``, ``single_tokens_per_s``: decode tokens per second;
- ``hop_overhead_ms``: (chain ms/token - single ms/token) / K, what each stage adds besides its compute
  (there are K + 1 network legs per token: client -> first hop, K - 1 between hops, last hop -> client);
- ``bytes_per_token_per_hop``: size of one decode step's frame between two hops (header + hidden state).

From the nodes' own ``/metrics`` (means over every step, prefill included) it also reports
``node_compute_ms`` (runtime step per hop) and ``in_hop_overhead_ms`` (frame in -> frame out minus compute,
per hop), which separate the daemon's own cost from compute slowed by co-located processes.

``--pin`` gives every process a core of its own (Linux): the client and then the single-process run on CPU 0,
node i on CPU i + 1; it needs K + 1 cores, and is how a chain of separate machines is approximated on one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import trio

from node.daemon.launcher import even_splits, start_chain, stop_all
from protocol.messages import Step
from protocol.stage_client import StageClient


def _prompt(length: int) -> list[int]:
    rng = np.random.default_rng(0)
    return [int(t) for t in rng.integers(10, 1000, size=length)]


def run_single(model_dir: Path, prompt: list[int], tokens: int, threads: int) -> tuple[list[int], float]:
    import torch

    from node.runtime import StageRuntime
    from protocol.sampling import SamplingParams

    config = json.loads((model_dir / "config.json").read_text())
    runtime = StageRuntime.load(model_dir, (0, config["num_hidden_layers"]), threads=threads)
    try:
        runtime.open("single", len(prompt) + tokens, SamplingParams(max_new_tokens=tokens))
        out = runtime.step("single", torch.tensor(prompt))
        generated = list(out.tokens)
        started = time.perf_counter()
        while len(generated) < tokens:
            generated += runtime.step("single", torch.tensor(generated[-1:])).tokens
        elapsed = time.perf_counter() - started
    finally:
        runtime.shutdown()
    return generated, (tokens - 1) / elapsed


def run_reference(model_dir: Path, prompt: list[int], tokens: int) -> list[int]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=tokens, do_sample=False)  # type: ignore[misc]
    return [int(t) for t in out[0, len(prompt) :]]


async def _drive_chain(
    route: list[Any], prompt: list[int], tokens: int, compression: str
) -> tuple[list[int], float]:
    from protocol.sampling import SamplingParams

    async with (
        StageClient.start(step_timeout_s=60) as client,
        client.session(
            route,
            max_length=len(prompt) + tokens,
            sampling=SamplingParams(max_new_tokens=tokens),
            compression=compression,  # type: ignore[arg-type]
        ) as session,
    ):
        generated = list((await session.step(prompt)).tokens)
        generated += (await session.step(generated[-1:])).tokens  # warm-up: first decode on every hop
        started = time.perf_counter()
        while len(generated) < tokens:
            generated += (await session.step(generated[-1:])).tokens
        elapsed = time.perf_counter() - started
        await session.close()
    return generated, (tokens - 2) / elapsed


def _node_timings(metrics_port: int) -> tuple[float, float]:
    """(mean compute ms, mean frame-in-to-frame-out ms) per step, from a node's /metrics."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    values = {}
    for line in text.splitlines():
        if line.startswith("layermarket_node_") and not line.startswith("#"):
            name, _, value = line.partition(" ")
            values[name] = float(value)
    count = values["layermarket_node_hop_seconds_count"] or 1.0
    return (
        values["layermarket_node_step_seconds_sum"] / count * 1e3,
        values["layermarket_node_hop_seconds_sum"] / count * 1e3,
    )


def _pin_tree(pid: int, cpu: int) -> None:
    """Move a process and every thread it has to ``cpu`` (affinity is per thread on Linux)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--stages", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--prompt-len", type=int, default=16)
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--compression", default="none", choices=["none", "fp16", "bf16", "int8"])
    parser.add_argument("--pin", action="store_true", help="one CPU per process: client 0, node i on i + 1")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.pin:
        available = sorted(os.sched_getaffinity(0))
        if len(available) < args.stages + 1:
            parser.error(f"--pin needs {args.stages + 1} CPUs, this process may use {len(available)}")

    config = json.loads((args.model / "config.json").read_text())
    prompt = _prompt(args.prompt_len)
    splits = even_splits(config["num_hidden_layers"], args.stages)
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as workdir:
        nodes = start_chain(
            args.model, splits, Path(workdir), threads=args.threads, extra_args=["--metrics-port", "0"]
        )
        try:
            if args.pin:  # after loading, which is faster unpinned
                os.sched_setaffinity(0, {available[0]})
                for i, node in enumerate(nodes):
                    _pin_tree(node.process.pid, available[i + 1])
            chain_tokens, chain_tps = trio.run(
                _drive_chain, [n.hop for n in nodes], prompt, args.tokens, args.compression
            )
            per_hop = [_node_timings(n.ready["metrics_port"]) for n in nodes]
        finally:
            stop_all(nodes)
    single_tokens, single_tps = run_single(args.model, prompt, args.tokens, args.threads)
    reference = run_reference(args.model, prompt, args.tokens)
    hidden = config["hidden_size"]
    frame = Step.with_hidden("0" * 32, 100, 100, np.zeros((1, hidden), np.float32), args.compression).encode()
    added_ms = 1e3 / chain_tps - 1e3 / single_tps
    result = {
        "model": args.model.name,
        "stages": args.stages,
        "splits": splits,
        "tokens": args.tokens,
        "threads_per_process": args.threads,
        "compression": args.compression,
        "tokens_match": chain_tokens == single_tokens and chain_tokens[: len(reference)] == reference,
        "chain_tokens_per_s": round(chain_tps, 2),
        "single_tokens_per_s": round(single_tps, 2),
        "chain_ms_per_token": round(1e3 / chain_tps, 3),
        "single_ms_per_token": round(1e3 / single_tps, 3),
        "hop_overhead_ms": round(added_ms / args.stages, 3),
        "bytes_per_token_per_hop": len(frame),
        "node_compute_ms": [round(c, 3) for c, _ in per_hop],
        "in_hop_overhead_ms": [round(h - c, 3) for c, h in per_hop],
        "cpu_count": os.cpu_count(),
        "pinned": args.pin,
    }
    if not args.json:
        sys.stderr.write(f"chain tokens: {chain_tokens[:16]}...\nsingle tokens: {single_tokens[:16]}...\n")
    sys.stdout.write(json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    main()
