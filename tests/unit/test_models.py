"""The local model builder: deterministic bytes, loadable offline by transformers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from node.devnet.models import build_model
from protocol.errors import ConfigurationError


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
def test_building_twice_gives_identical_files(family: str, tmp_path: Path) -> None:
    first = _digests(build_model(family, "tiny", tmp_path / "a"))
    second = _digests(build_model(family, "tiny", tmp_path / "b"))
    assert "model.safetensors" in first and "tokenizer.json" in first and "config.json" in first
    assert first == second


def test_another_seed_gives_other_weights(tmp_path: Path) -> None:
    a = _digests(build_model("llama", "tiny", tmp_path / "a", seed=0))
    b = _digests(build_model("llama", "tiny", tmp_path / "b", seed=1))
    assert a["model.safetensors"] != b["model.safetensors"]
    assert a["tokenizer.json"] == b["tokenizer.json"]


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_qwen2", "tiny_mistral"])
def test_tiny_model_loads_offline_and_generates(fixture: str, request: pytest.FixtureRequest) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir: Path = request.getfixturevalue(fixture)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    prompt = tokenizer("The market opened", return_tensors="pt").input_ids
    out = model.generate(prompt, max_new_tokens=16, do_sample=False, min_new_tokens=16)
    new = out[0, prompt.shape[1] :].tolist()
    assert len(new) == 16
    assert len(set(new)) > 3, "a random test model should not collapse onto one token"
    assert model.config.vocab_size >= len(tokenizer)
    assert tokenizer.decode(tokenizer("Hello, world!").input_ids) == "Hello, world!"


def test_tiny_qwen2_ties_its_head_to_the_embeddings(tiny_qwen2: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen2, local_files_only=True)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_unknown_family_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown model family 'gpt2'"):
        build_model("gpt2", "tiny", tmp_path / "x")
    with pytest.raises(ConfigurationError, match="unknown model size 'huge'"):
        build_model("llama", "huge", tmp_path / "x")
    assert not (tmp_path / "x").exists()
