"""Read one stage's slice of a Hugging Face model directory, and nothing more.

Only the tensors of layers ``[a, b)`` are read from the safetensors files (plus the embeddings on the
first stage and the final norm and LM head on the last), so peak and resident memory scale with the slice.
Layer indices are renumbered from ``a`` to 0, matching a module built for ``b - a`` layers::

    files = WeightFiles(Path("models/llama-tiny"))
    cfg = read_config(Path("models/llama-tiny"))                      # transformers config
    state = read_slice(files, cfg, 2, 6, first=False, last=True, dtype=torch.bfloat16, device="cpu")
    sorted(state)[:2]    # ['layers.0.input_layernorm.weight', 'layers.0.mlp.down_proj.weight']

Tied embeddings (``tie_word_embeddings``, or a checkpoint without ``lm_head.weight``) give the last stage
the embedding matrix as its head.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from node.errors import UnsupportedModelError

logger = logging.getLogger(__name__)

SUPPORTED_FAMILIES = ("llama", "qwen2", "mistral")
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
_LAYER_RE = re.compile(r"^(?P<prefix>.*?)layers\.(?P<index>\d+)\.(?P<rest>.+)$")

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def parse_dtype(name: str) -> torch.dtype:
    """``"bf16"`` / ``"bfloat16"`` -> ``torch.bfloat16``; anything unknown is a clear error."""
    try:
        return DTYPES[name]
    except KeyError:
        raise UnsupportedModelError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}") from None


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def read_config(model_dir: Path) -> Any:
    """The model's transformers config; an unsupported family is an error naming it."""
    from transformers import AutoConfig

    if not (model_dir / "config.json").is_file():
        raise UnsupportedModelError(f"{model_dir} has no config.json: not a Hugging Face model directory")
    family = json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("model_type")
    if family not in SUPPORTED_FAMILIES:
        raise UnsupportedModelError(
            f"{model_dir}: model family {family!r} is not supported; "
            f"supported: {', '.join(SUPPORTED_FAMILIES)}"
        )
    return AutoConfig.from_pretrained(model_dir)


@dataclass(frozen=True)
class WeightFiles:
    """Which safetensors file holds each tensor: one ``model.safetensors`` or a sharded index."""

    model_dir: Path
    weight_map: dict[str, str]

    def __init__(self, model_dir: Path) -> None:
        object.__setattr__(self, "model_dir", model_dir)
        index = model_dir / INDEX_FILE
        if index.is_file():
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        elif (model_dir / SINGLE_FILE).is_file():
            with safe_open(model_dir / SINGLE_FILE, framework="pt") as f:
                weight_map = {name: SINGLE_FILE for name in f.keys()}  # noqa: SIM118 (not a dict)
        else:
            raise UnsupportedModelError(f"{model_dir} has neither {SINGLE_FILE} nor {INDEX_FILE}")
        object.__setattr__(self, "weight_map", weight_map)

    @property
    def prefix(self) -> str:
        """``"model."`` for ``*ForCausalLM`` checkpoints, ``""`` for bare base-model checkpoints."""
        return "model." if "model.embed_tokens.weight" in self.weight_map else ""

    def shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Every tensor's shape and stored dtype, read from the headers only (no tensor data)."""
        out: dict[str, tuple[tuple[int, ...], str]] = {}
        by_file: dict[str, list[str]] = {}
        for name, file in self.weight_map.items():
            by_file.setdefault(file, []).append(name)
        for file, names in by_file.items():
            with safe_open(self.model_dir / file, framework="pt") as f:
                for name in names:
                    sl = f.get_slice(name)
                    out[name] = (tuple(sl.get_shape()), sl.get_dtype())
        return out

    def read(
        self,
        names: dict[str, str],
        dtype: torch.dtype,
        device: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Read ``{checkpoint name: stage name}`` tensors, cast to ``dtype`` on ``device``, file by file."""
        missing = sorted(n for n in names if n not in self.weight_map)
        if missing:
            raise UnsupportedModelError(f"{self.model_dir}: missing tensors {', '.join(missing[:5])}")
        by_file: dict[str, list[str]] = {}
        for name in names:
            by_file.setdefault(self.weight_map[name], []).append(name)
        state: dict[str, torch.Tensor] = {}
        done = 0
        for file, file_names in sorted(by_file.items()):
            with safe_open(self.model_dir / file, framework="pt", device="cpu") as f:
                for name in file_names:
                    # one tensor at a time: peak memory is the slice plus one tensor, never the file
                    tensor = f.get_tensor(name).to(device=device, dtype=dtype)
                    state[names[name]] = tensor
                    done += 1
                    if progress is not None:
                        progress(done, len(names))
        return state


def slice_names(
    files: WeightFiles, start: int, end: int, *, first: bool, last: bool, tied: bool
) -> dict[str, str]:
    """``{checkpoint tensor name: stage module name}`` for layers ``[start, end)`` renumbered from 0."""
    prefix = files.prefix
    names: dict[str, str] = {}
    for name in files.weight_map:
        if not name.startswith(prefix):
            continue
        m = _LAYER_RE.match(name[len(prefix) :])
        if m and m["prefix"] == "" and start <= int(m["index"]) < end:
            names[name] = f"layers.{int(m['index']) - start}.{m['rest']}"
    if first:
        names[f"{prefix}embed_tokens.weight"] = "embed_tokens.weight"
    if last:
        names[f"{prefix}norm.weight"] = "norm.weight"
        if tied or "lm_head.weight" not in files.weight_map:
            # tied head: the embedding matrix is the head; read once even when this stage also embeds
            names.setdefault(f"{prefix}embed_tokens.weight", "lm_head.weight")
            if first:
                names[f"{prefix}embed_tokens.weight"] = "embed_tokens.weight"
        else:
            names["lm_head.weight"] = "lm_head.weight"
    return names


def layer_indices(names: Iterable[str]) -> set[int]:
    """The (renumbered) layer indices present among stage module names."""
    return {int(m["index"]) for n in names if (m := _LAYER_RE.match(n))}


__all__ = [
    "DTYPES",
    "SUPPORTED_FAMILIES",
    "WeightFiles",
    "dtype_name",
    "layer_indices",
    "parse_dtype",
    "read_config",
    "slice_names",
]
