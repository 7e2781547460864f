"""What a model directory needs in memory, read from its headers only (no tensor data), and how to split
its layers over devices: the ``--info MODEL_DIR`` helper of ``market-node``::

    info = model_info(Path("models/llama-small"))
    info.layers, info.layer_bytes["bfloat16"]          # 16, 22548480
    suggest_split(info, [8 << 30, 4 << 30], "bfloat16")  # [(0, 11), (11, 16)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.errors import UnsupportedModelError
from node.loader import WeightFiles, read_config

BYTES_PER_PARAM = {"float32": 4, "bfloat16": 2, "float16": 2}
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@dataclass(frozen=True)
class ModelInfo:
    """Sizes of a model, per layer and for the parts only the first or last stage holds."""

    family: str
    layers: int
    hidden_size: int
    vocab_size: int
    layer_params: tuple[int, ...]  # parameters of each decoder layer
    embed_params: int  # first stage
    head_params: int  # last stage: final norm + LM head (0 extra when tied: the head is the embedding)
    tied: bool
    kv_bytes_per_token: dict[str, int]  # K and V of one position over all layers, per dtype

    @property
    def layer_bytes(self) -> dict[str, int]:
        """Bytes of the largest decoder layer, per dtype."""
        return {d: max(self.layer_params) * b for d, b in BYTES_PER_PARAM.items()}

    def stage_bytes(self, start: int, end: int, dtype: str) -> int:
        """Weight bytes of a stage holding layers ``[start, end)``."""
        params = sum(self.layer_params[start:end])
        params += self.embed_params if start == 0 else 0
        if end == self.layers:
            # a tied head is the embedding matrix: a last stage that is not also first must hold a copy
            params += self.head_params + (self.embed_params if self.tied and start != 0 else 0)
        return params * BYTES_PER_PARAM[dtype]

    def as_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "layers": self.layers,
            "hidden_size": self.hidden_size,
            "vocab_size": self.vocab_size,
            "bytes_per_layer": self.layer_bytes,
            "embedding_bytes": {d: self.embed_params * b for d, b in BYTES_PER_PARAM.items()},
            "head_bytes": {d: self.head_params * b for d, b in BYTES_PER_PARAM.items()},
            "tied_embeddings": self.tied,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "total_bytes": {d: self.stage_bytes(0, self.layers, d) for d in BYTES_PER_PARAM},
        }


def model_info(model_dir: Path) -> ModelInfo:
    config = read_config(model_dir)
    files = WeightFiles(model_dir)
    per_layer = [0] * config.num_hidden_layers
    embed = head = 0
    for name, (shape, _) in files.shapes().items():
        n = 1
        for d in shape:
            n *= d
        m = _LAYER.search(name)
        if m:
            per_layer[int(m.group(1))] += n
        elif name.endswith("embed_tokens.weight"):
            embed += n
        else:
            head += n  # final norm, lm_head
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    kv = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim
    return ModelInfo(
        family=config.model_type,
        layers=config.num_hidden_layers,
        hidden_size=config.hidden_size,
        vocab_size=config.vocab_size,
        layer_params=tuple(per_layer),
        embed_params=embed,
        head_params=head,
        tied=bool(getattr(config, "tie_word_embeddings", False)) or "lm_head.weight" not in files.weight_map,
        kv_bytes_per_token={d: kv * b for d, b in BYTES_PER_PARAM.items()},
    )


def _human(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def suggest_split(
    info: ModelInfo, device_bytes: list[int], dtype: str, kv_fraction: float = 0.2
) -> list[tuple[int, int]]:
    """Contiguous layer ranges, one per device in order, with layers proportional to each device's memory
    after ``kv_fraction`` is set aside for KV caches and the first/last devices pay for the embedding
    and head. Raises :class:`UnsupportedModelError` when the devices cannot hold the model together."""
    if not device_bytes:
        raise UnsupportedModelError("no device memory sizes given")
    usable = [int(b * (1.0 - kv_fraction)) for b in device_bytes]
    usable[0] -= info.embed_params * BYTES_PER_PARAM[dtype]
    tail = info.head_params + (info.embed_params if info.tied and len(device_bytes) > 1 else 0)
    usable[-1] -= tail * BYTES_PER_PARAM[dtype]
    per_layer = max(info.layer_params) * BYTES_PER_PARAM[dtype]
    capacity = [max(0, u // per_layer) for u in usable]
    if sum(capacity) < info.layers:
        need = info.stage_bytes(0, info.layers, dtype) / (1.0 - kv_fraction)
        raise UnsupportedModelError(
            f"{len(device_bytes)} devices hold {sum(capacity)} of {info.layers} layers in {dtype}; "
            f"about {_human(need)} in total is needed"
        )
    # largest-remainder apportionment of the layers by capacity, never above a device's capacity
    total = sum(capacity)
    shares = [info.layers * c / total for c in capacity]
    counts = [min(int(s), c) for s, c in zip(shares, capacity, strict=True)]
    order = sorted(range(len(counts)), key=lambda i: shares[i] - counts[i], reverse=True)
    while sum(counts) < info.layers:
        for i in order:
            if sum(counts) < info.layers and counts[i] < capacity[i]:
                counts[i] += 1
    ranges, start = [], 0
    for c in counts:
        ranges.append((start, start + c))
        start += c
    return [r for r in ranges if r[1] > r[0]]


__all__ = ["BYTES_PER_PARAM", "ModelInfo", "model_info", "suggest_split"]
