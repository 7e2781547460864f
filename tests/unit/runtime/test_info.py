"""Model info from headers only, and layer splits proportional to device memory."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from node.errors import UnsupportedModelError
from node.info import model_info, suggest_split
from node.stage import StageModel


def test_info_counts_match_the_loaded_stages(tiny_llama: Path, tiny_qwen2: Path) -> None:
    for path in (tiny_llama, tiny_qwen2):
        info = model_info(path)
        for start, end in [(0, 3), (3, 8), (0, 8), (2, 5)]:
            stage = StageModel.load(path, start, end, dtype=torch.float32, device="cpu")
            loaded = sum(
                t.numel() * t.element_size() for t in {p.data_ptr(): p for p in stage.parameters()}.values()
            )
            assert info.stage_bytes(start, end, "float32") == loaded, (path.name, start, end)
    info = model_info(tiny_llama)
    assert info.layers == 8 and info.layer_bytes["bfloat16"] * 2 == info.layer_bytes["float32"]
    assert info.kv_bytes_per_token["float32"] == 2 * 8 * 4 * 32 * 4
    assert model_info(tiny_qwen2).tied and not info.tied


def test_split_follows_device_memory_and_covers_every_layer(tiny_llama: Path) -> None:
    info = model_info(tiny_llama)
    per_layer = info.layer_bytes["float32"]
    big, small = 10 * per_layer, 5 * per_layer
    split = suggest_split(info, [big, small], "float32", kv_fraction=0.0)
    assert split[0][0] == 0 and split[-1][1] == 8
    assert all(a[1] == b[0] for a, b in itertools.pairwise(split))
    assert split[0][1] - split[0][0] > split[1][1] - split[1][0]
    with pytest.raises(UnsupportedModelError, match="hold"):
        suggest_split(info, [per_layer, per_layer], "float32")
