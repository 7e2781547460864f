"""Ways a dishonest node could cut corners, applied to a loaded stage: for fingerprint calibration,
tests, and demos of a spot check catching a cheat. Never used on a serving path.

Each function changes ``stage`` (a :class:`node.stage.StageModel`) in place::

    rt = StageRuntime.load(model_dir, (0, 4))
    skip_layer(rt.stage, 1)                 # run 3 of the 4 layers
    quantise_weights(rt.stage, bits=8)      # round every linear weight to int8 per output channel
    perturb_outputs(rt.stage, relative=1e-2)  # multiply outputs by (1 + 0.01 * N(0, 1)), elementwise
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def skip_layer(stage: Any, index: int) -> None:
    """Drop local layer ``index`` (its KV slot stays allocated but unused)."""
    layers = list(stage.layers)
    stage.layers = nn.ModuleList(layers[:index] + layers[index + 1 :])


def repeat_layer(stage: Any, index: int) -> None:
    """Run local layer ``index`` twice in a row (a cheap way to fake a layer the node does not hold)."""
    layers = list(stage.layers)
    stage.layers = nn.ModuleList([*layers[: index + 1], layers[index], *layers[index + 1 :]])


@torch.no_grad()
def quantise_weights(stage: Any, bits: int, group_size: int | None = None) -> None:
    """Round-trip every decoder-layer linear weight through symmetric ``bits``-bit integers, per output
    channel (``group_size=None``) or per group of ``group_size`` input columns (GPTQ/AWQ-style int4)."""
    qmax = 2 ** (bits - 1) - 1
    for module in stage.layers.modules():
        if isinstance(module, nn.Linear):
            w = module.weight.float()
            rows, cols = w.shape
            g = cols if group_size is None else group_size
            padded = torch.nn.functional.pad(w, (0, -cols % g))  # zero columns never change a group's max
            grouped = padded.reshape(rows, -1, g)
            scale = grouped.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / qmax
            q = torch.clamp(torch.round(grouped / scale), -qmax - 1, qmax)
            module.weight.copy_((q * scale).reshape(rows, -1)[:, :cols].to(module.weight.dtype))


def perturb_outputs(stage: Any, relative: float, seed: int = 0) -> torch.utils.hooks.RemovableHandle:
    """Multiply the stage's output activations by ``1 + relative * N(0, 1)`` elementwise."""
    generator = torch.Generator(device="cpu").manual_seed(seed)

    def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(output.shape, generator=generator).to(device=output.device, dtype=output.dtype)
        return output * (1 + relative * noise)

    handle: torch.utils.hooks.RemovableHandle = stage.register_forward_hook(hook)
    return handle


__all__ = ["perturb_outputs", "quantise_weights", "repeat_layer", "skip_layer"]
