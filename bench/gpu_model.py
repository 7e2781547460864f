"""GPU helpers for the GPU suite: an 8B-shaped random model and the HBM copy bandwidth.

    python -m bench.gpu_model build --out DIR      # Llama-3-8B shape, random bf16, built on the GPU
    python -m bench.gpu_model bandwidth --json     # device-to-device copy bandwidth, bytes/s

No weights travel: the model is generated on the GPU from a config (hidden 4096, 32 layers, 32 heads,
8 KV heads, intermediate 14336, vocab 128256) and written as sharded safetensors, so the stage
runtime loads it through the same code path as any Hugging Face directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

SHAPE_8B = dict(
    hidden_size=4096,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    vocab_size=128256,
    max_position_embeddings=8192,
    rope_theta=500000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
)


def build(out: Path, seed: int = 0) -> dict[str, float]:
    from transformers import LlamaConfig, LlamaForCausalLM

    t = time.perf_counter()
    config = LlamaConfig(**SHAPE_8B, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model = model.to_empty(device="cuda").to(torch.bfloat16)
    gen = torch.Generator(device="cuda").manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
    built = time.perf_counter() - t
    model.save_pretrained(out, max_shard_size="5GB")
    params = sum(p.numel() for p in model.parameters())
    return {
        "params": params,
        "weight_bytes": params * 2,
        "build_s": built,
        "total_s": time.perf_counter() - t,
    }


def bandwidth(gib: float = 2.0, repeats: int = 20) -> float:
    """Device copy bandwidth in bytes/s, counting the read and the write (2 x bytes per copy)."""
    n = int(gib * (1 << 30))
    src = torch.empty(n, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    torch.cuda.synchronize()
    return 2 * n * repeats / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["build", "bandwidth"])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.what == "build":
        result = build(args.out)
    else:
        result = {"copy_bytes_per_s": bandwidth(), "device": torch.cuda.get_device_name()}
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
