"""Loading a stage reads only its slice: renumbered layers, sharded checkpoints, tied embeddings."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from node.errors import UnsupportedModelError
from node.loader import WeightFiles, slice_names
from node.stage import StageModel
from protocol.errors import ConfigurationError


def test_middle_stage_reads_only_its_layers_renumbered_from_zero(tiny_llama: Path) -> None:
    names = slice_names(WeightFiles(tiny_llama), 2, 5, first=False, last=False, tied=False)
    assert {n.split(".")[2] for n in names} == {"2", "3", "4"}
    assert {v.split(".")[1] for v in names.values()} == {"0", "1", "2"}
    assert not any("embed" in n or "lm_head" in n or n.endswith("model.norm.weight") for n in names)
    stage = StageModel.load(tiny_llama, 2, 5, dtype=torch.float32, device="cpu")
    with safe_open(tiny_llama / "model.safetensors", framework="pt") as f:
        want = f.get_tensor("model.layers.3.mlp.down_proj.weight")
    assert torch.equal(stage.layers[1].mlp.down_proj.weight, want)
    assert stage.embed_tokens is None and stage.lm_head is None and stage.norm is None


def test_tied_embeddings_give_the_last_stage_the_embedding_matrix_as_head(tiny_qwen2: Path) -> None:
    files = WeightFiles(tiny_qwen2)
    assert "lm_head.weight" not in files.weight_map
    stage = StageModel.load(tiny_qwen2, 6, 8, dtype=torch.float32, device="cpu")
    with safe_open(tiny_qwen2 / "model.safetensors", framework="pt") as f:
        assert torch.equal(stage.lm_head.weight, f.get_tensor("model.embed_tokens.weight"))
    whole = StageModel.load(tiny_qwen2, 0, 8, dtype=torch.float32, device="cpu")
    assert whole.lm_head.weight.data_ptr() == whole.embed_tokens.weight.data_ptr()  # read once, shared


def test_sharded_checkpoint_loads_the_same_stage_as_a_single_file(tiny_llama: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    sharded = tmp_path / "sharded"
    AutoModelForCausalLM.from_pretrained(tiny_llama).save_pretrained(sharded, max_shard_size="2MB")
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    a = StageModel.load(tiny_llama, 3, 8, dtype=torch.float32, device="cpu")
    b = StageModel.load(sharded, 3, 8, dtype=torch.float32, device="cpu")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_unsupported_family_is_a_configuration_error_naming_it(tiny_llama: Path, tmp_path: Path) -> None:
    other = tmp_path / "gpt2ish"
    shutil.copytree(tiny_llama, other)
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "gpt2"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="'gpt2' is not supported") as raised:
        StageModel.load(other, 0, 2, dtype=torch.float32, device="cpu")
    assert isinstance(raised.value, ConfigurationError)


@pytest.mark.parametrize("layers", [(0, 0), (3, 2), (0, 9), (-1, 2)])
def test_layer_range_outside_the_model_is_refused(tiny_llama: Path, layers: tuple[int, int]) -> None:
    with pytest.raises(UnsupportedModelError, match="layer range"):
        StageModel.load(tiny_llama, *layers, dtype=torch.float32, device="cpu")


def test_stage_spec_describes_the_slice(tiny_mistral: Path, load_runtime: Callable[..., Any]) -> None:
    rt = load_runtime(tiny_mistral, (2, 6), dtype="bf16")
    spec = rt.spec
    assert (spec.family, spec.num_layers, spec.layer_start, spec.layer_end) == ("mistral", 8, 2, 6)
    assert (spec.is_first, spec.is_last, spec.hidden_size, spec.dtype) == (False, False, 256, "bfloat16")
    assert all(p.dtype == torch.bfloat16 for p in rt.stage.parameters())


def test_cuda_without_a_gpu_is_an_error_not_a_cpu_fallback(tiny_llama: Path) -> None:
    from node.runtime import StageRuntime

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UnsupportedModelError, match="CUDA"):
        StageRuntime.load(tiny_llama, (0, 2), device="cuda")
