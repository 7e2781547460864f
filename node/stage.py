"""One stage: a contiguous block of a model's decoder layers, with the embedding on the first stage and
the final norm and LM head on the last.

The decoder layers are transformers' own (``LlamaDecoderLayer``, ``Qwen2DecoderLayer``,
``MistralDecoderLayer``), built from a copy of the model config with ``num_hidden_layers = end - start``
on the meta device and then given the slice's weights, so nothing is allocated twice and numerics match
the full model exactly (the layers are the same code, fed the same positions)::

    stage = StageModel.load(Path("models/llama-tiny"), 0, 4, dtype=torch.float32, device="cpu")
    hidden = stage(torch.tensor([[1, 2, 3]]), positions=torch.arange(3)[None])   # (1, 3, 256)
"""

from __future__ import annotations

import copy
import importlib
import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from node.errors import UnsupportedModelError
from node.loader import WeightFiles, read_config, slice_names

logger = logging.getLogger(__name__)

# family -> (module, decoder layer, RMS norm, rotary embedding)
_FAMILY_CLASSES = {
    "llama": ("llama", "LlamaDecoderLayer", "LlamaRMSNorm", "LlamaRotaryEmbedding"),
    "qwen2": ("qwen2", "Qwen2DecoderLayer", "Qwen2RMSNorm", "Qwen2RotaryEmbedding"),
    "mistral": ("mistral", "MistralDecoderLayer", "MistralRMSNorm", "MistralRotaryEmbedding"),
}
ATTENTION_KERNELS = ("sdpa", "eager")


class KVCache(Protocol):
    """What transformers' attention calls on ``past_key_values``: store new K/V, return the full K/V."""

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def _family_classes(family: str) -> tuple[type[nn.Module], type[nn.Module], type[nn.Module]]:
    module_name, layer, norm, rotary = _FAMILY_CLASSES[family]
    module = importlib.import_module(f"transformers.models.{module_name}.modeling_{module_name}")
    return getattr(module, layer), getattr(module, norm), getattr(module, rotary)


def stage_config(config: Any, start: int, end: int, attn_implementation: str) -> Any:
    """A copy of ``config`` describing only layers ``[start, end)``, renumbered from 0."""
    cfg = copy.deepcopy(config)
    cfg.num_hidden_layers = end - start
    layer_types = getattr(cfg, "layer_types", None)
    if layer_types is not None:
        cfg.layer_types = list(layer_types[start:end])
    if getattr(cfg, "max_window_layers", None) is not None:
        cfg.max_window_layers = max(0, cfg.max_window_layers - start)
    cfg._attn_implementation = attn_implementation
    return cfg


class StageModel(nn.Module):
    """The layers of one stage and, by role, the embedding (first) or the final norm and head (last)."""

    def __init__(self, config: Any, family: str, start: int, end: int, *, first: bool, last: bool) -> None:
        super().__init__()
        layer_cls, norm_cls, _ = _family_classes(family)
        self.config = config
        self.family = family
        self.start, self.end = start, end
        self.is_first, self.is_last = first, last
        self.num_model_layers = end  # set by load() to the whole model's layer count
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size) if first else None
        self.layers = nn.ModuleList([layer_cls(config, i) for i in range(end - start)])
        # transformers 5.24 renamed the layers' ``past_key_values`` argument to ``cache`` (the old name warns)
        self._cache_arg = (
            "cache" if "cache" in inspect.signature(layer_cls.forward).parameters else "past_key_values"
        )
        self.norm = norm_cls(config.hidden_size, eps=config.rms_norm_eps) if last else None
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False) if last else None
        self.rotary_emb: nn.Module | None = None  # set by load(): computed buffers, never on the meta device

    @classmethod
    def load(
        cls,
        model_dir: Path,
        start: int,
        end: int,
        *,
        dtype: torch.dtype,
        device: str,
        attn_implementation: str = "sdpa",
        progress: Callable[[int, int], None] | None = None,
    ) -> StageModel:
        """Build the stage on the meta device and give it only its slice's tensors, read from disk."""
        config = read_config(model_dir)
        total = config.num_hidden_layers
        if not (0 <= start < end <= total):
            raise UnsupportedModelError(
                f"layer range {start}:{end} is not inside the model's {total} layers (0:{total})"
            )
        if attn_implementation not in ATTENTION_KERNELS:
            raise UnsupportedModelError(
                f"attention kernel {attn_implementation!r}; choose one of {', '.join(ATTENTION_KERNELS)}"
            )
        first, last = start == 0, end == total
        cfg = stage_config(config, start, end, attn_implementation)
        with torch.device("meta"):
            stage = cls(cfg, config.model_type, start, end, first=first, last=last)
        files = WeightFiles(model_dir)
        tied = bool(getattr(config, "tie_word_embeddings", False))
        names = slice_names(files, start, end, first=first, last=last, tied=tied)
        state = files.read(names, dtype, device, progress)
        if last and "lm_head.weight" not in state:
            state["lm_head.weight"] = state["embed_tokens.weight"]  # tied head on a first-and-last stage
        expected = set(stage.state_dict())
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise UnsupportedModelError(
                f"{model_dir}: weights do not match a {config.model_type} stage: "
                f"missing {missing[:5]}, unexpected {extra[:5]}"
            )
        stage.load_state_dict(state, assign=True, strict=True)
        stage.num_model_layers = total
        _, _, rotary_cls = _family_classes(config.model_type)
        # rotary frequencies are buffers computed from the config, not weights: build them for real
        stage.rotary_emb = rotary_cls(config=cfg).to(device)
        stage.eval()
        stage.requires_grad_(False)
        logger.info(
            "loaded %s layers %d:%d of %d (%s, %s): %.1f MB",
            config.model_type,
            start,
            end,
            total,
            dtype,
            device,
            sum(t.numel() * t.element_size() for t in state.values()) / 1e6,
        )
        return stage

    def forward(
        self,
        inputs: torch.Tensor,
        positions: torch.Tensor,
        kv: KVCache | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token ids ``(B, T)`` (first stage) or hidden states ``(B, T, H)`` -> hidden states ``(B, T, H)``.

        ``positions`` ``(B, T)`` are absolute positions (RoPE); on the last stage the output is normed.
        """
        hidden = self.embed_tokens(inputs) if self.embed_tokens is not None else inputs  # (B, T, H)
        if self.rotary_emb is None:
            raise UnsupportedModelError("stage built without StageModel.load(): no rotary embedding")
        position_embeddings = self.rotary_emb(hidden, position_ids=positions)  # cos, sin: (B, T, head_dim)
        for layer in self.layers:
            hidden = layer(
                hidden,
                attention_mask=attention_mask,
                position_ids=positions,
                position_embeddings=position_embeddings,
                **{self._cache_arg: kv},
            )
        if self.norm is not None:
            hidden = self.norm(hidden)
        return hidden

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Normed hidden ``(..., H)`` -> float32 logits ``(..., V)``; last stage only."""
        if self.lm_head is None:
            raise UnsupportedModelError("only the last stage has an LM head")
        logits: torch.Tensor = self.lm_head(hidden).float()
        return logits


def attention_mask(
    past: list[int],
    new: int,
    *,
    dtype: torch.dtype,
    device: torch.device | str,
    kernel: str,
    sliding_window: int | None,
    kv_len: int | None = None,
) -> torch.Tensor | None:
    """The mask for a batch whose row b holds ``past[b]`` cached positions and ``new`` new ones.

    Keys are laid out left-aligned and right-padded to ``kv_len`` (default ``max(past) + new``). Returns
    ``None`` where the kernel's own causal handling is exact (one row, sdpa, no past; or one row, one new
    token), so the common paths are the very kernels the full model runs. Shape ``(B, 1, new, kv_len)``: bool
    (True = attend) for sdpa, additive float for eager.
    """
    total = [p + new for p in past]
    window_matters = sliding_window is not None and max(total) > sliding_window
    if len(past) == 1 and not window_matters and (new == 1 or (past[0] == 0 and kernel == "sdpa")):
        return None
    kv_len = max(total) if kv_len is None else kv_len
    q_pos = torch.tensor(past, device=device)[:, None] + torch.arange(new, device=device)[None, :]  # (B, T)
    k_pos = torch.arange(kv_len, device=device)[None, None, :]  # (1, 1, K)
    allowed = k_pos <= q_pos[:, :, None]  # causal, and masks each row's right padding too: (B, T, K)
    if sliding_window is not None:
        allowed &= k_pos > q_pos[:, :, None] - sliding_window
    allowed = allowed[:, None]  # (B, 1, T, K)
    if kernel == "sdpa":
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(
        ~allowed, torch.finfo(dtype).min
    )


__all__ = ["ATTENTION_KERNELS", "KVCache", "StageModel", "attention_mask", "stage_config"]
