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


def test_info_command_prints_sizes_and_a_split_and_refuses_bad_sizes(tiny_llama: Path) -> None:
    import json

    from click.testing import CliRunner

    from node.cli import group, parse_size
    from protocol.errors import ConfigurationError

    assert parse_size("24GiB") == 24 * 2**30 and parse_size("1.5 GB") == 1_500_000_000
    assert parse_size("4096") == 4096
    for bad in ("24 GiBs", "GiB", "-1GiB", "1e9"):
        with pytest.raises(ConfigurationError):
            parse_size(bad)

    runner = CliRunner()
    result = runner.invoke(
        group, ["info", str(tiny_llama), "--devices", "30MiB,20MiB", "--dtype", "float32", "--json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    info = model_info(tiny_llama)
    assert document["layers"] == 8 and document["total_bytes"]["float32"] == info.stage_bytes(0, 8, "float32")
    ranges = [tuple(r) for r in document["split"]["layers"]]
    assert ranges == suggest_split(info, [30 * 2**20, 20 * 2**20], "float32")
    assert ranges[0][0] == 0 and ranges[-1][1] == 8 and len(ranges) == 2
    assert document["split"]["weight_bytes"] == [info.stage_bytes(a, b, "float32") for a, b in ranges]

    table = runner.invoke(group, ["info", str(tiny_llama), "--devices", "30MiB,20MiB", "--dtype", "float32"])
    assert table.exit_code == 0 and "suggested split" in table.output and f"{ranges[1][0]}:8" in table.output

    too_small = runner.invoke(group, ["info", str(tiny_llama), "--devices", "3MiB"])
    assert isinstance(too_small.exception, UnsupportedModelError) and "MiB in total" in str(
        too_small.exception
    )
