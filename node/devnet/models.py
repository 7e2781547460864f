"""Deterministic random-initialised test models, since no model hub can be reached.

``build_model(family, size, out)`` writes a Hugging Face model directory (``config.json``, safetensors
weights, ``generation_config.json``) and a byte-level BPE tokenizer trained on the corpus shipped beside
this module, all through ``save_pretrained``. The same arguments give byte-identical files, so tests,
benchmarks and the demo can rebuild a model instead of downloading one::

    build_model("llama", "tiny", Path("models/llama-tiny"))
    AutoModelForCausalLM.from_pretrained("models/llama-tiny")   # loads offline and generates

Sizes (every family):

=========  ======  ======  =====  ========  ==============  =====================
size       hidden  layers  heads  kv heads  intermediate    weights (fp32)
=========  ======  ======  =====  ========  ==============  =====================
tiny       256     8       8      4         688             ~9 MB, one file
small      1024    16      16     4         2816            ~0.7 GB, sharded + index
=========  ======  ======  =====  ========  ==============  =====================
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from protocol.errors import ConfigurationError

logger = logging.getLogger(__name__)

Family = Literal["llama", "qwen2", "mistral"]
Size = Literal["tiny", "small"]
FAMILIES: tuple[Family, ...] = ("llama", "qwen2", "mistral")
SIZES: tuple[Size, ...] = ("tiny", "small")

CORPUS = Path(__file__).with_name("corpus.txt")
TOKENIZER_VOCAB = 2048
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# ChatML, the template Qwen2 uses; `apply_chat_template` needs one for the OpenAI-compatible proxy.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    max_shard_size: str  # the small model is sharded so the sharded-index loading path is exercised


SHAPES: dict[Size, Shape] = {
    "tiny": Shape(hidden=256, layers=8, heads=8, kv_heads=4, intermediate=688, max_shard_size="50GB"),
    "small": Shape(hidden=1024, layers=16, heads=16, kv_heads=4, intermediate=2816, max_shard_size="200MB"),
}


def train_tokenizer(out: Path) -> int:
    """Train the byte-level BPE tokenizer on the shipped corpus and save it to ``out``; returns its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([CORPUS.read_text(encoding="utf-8")], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )
    fast.save_pretrained(out)
    return len(fast)


def _config(family: str, shape: Shape, vocab_size: int, eos_id: int) -> Any:
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    common: dict[str, Any] = dict(
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        intermediate_size=shape.intermediate,
        vocab_size=vocab_size,
        max_position_embeddings=4096,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        # 0.05 rather than the usual 0.02: at 0.02 a random model repeats one token forever under greedy
        # decoding, which would make "same tokens as the full model" a weak test. At 0.05 the tiny Llama
        # emits 22 distinct tokens in its first 30.
        initializer_range=0.05,
    )
    if family == "llama":
        return LlamaConfig(**common, tie_word_embeddings=False)
    if family == "qwen2":
        # tied embeddings, as the small Qwen2 checkpoints ship: exercises the tied-head path
        return Qwen2Config(**common, tie_word_embeddings=True)
    return MistralConfig(**common, tie_word_embeddings=False, sliding_window=4096)


def build_model(family: str, size: str, out: Path, seed: int = 0) -> Path:
    """Write a deterministic random model directory to ``out`` (replacing it) and return ``out``."""
    if family not in FAMILIES:
        raise ConfigurationError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    if size not in SIZES:
        raise ConfigurationError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}")
    import torch
    from transformers import AutoModelForCausalLM

    shape = SHAPES[size]
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build in a sibling temporary directory and rename, so a crash never leaves a half-written model
    # that a later cache lookup would mistake for a finished one.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        vocab = train_tokenizer(staging)
        from transformers import AutoTokenizer

        eos_id = AutoTokenizer.from_pretrained(staging).eos_token_id
        padded_vocab = -(-vocab // 64) * 64  # round up to a multiple of 64, as real checkpoints do
        config = _config(family, shape, padded_vocab, eos_id)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.generation_config.do_sample = False
        model.save_pretrained(staging, max_shard_size=shape.max_shard_size)
        logger.info("built %s-%s (seed %d): %d parameters", family, size, seed, model.num_parameters())
        if out.exists():
            shutil.rmtree(out)
        staging.chmod(0o755)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out


def cached_model(family: str, size: str, cache_dir: Path, seed: int = 0) -> Path:
    """The model directory for these arguments under ``cache_dir``, built once and then reused.

    Safe when several processes ask at once (tests, benchmarks and the devnet share the cache): a file
    lock serialises building, and a finished build is marked by its ``config.json`` appearing last.
    """
    import fcntl

    out = cache_dir / f"{family}-{size}-seed{seed}"
    if (out / "config.json").is_file():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f".{out.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "config.json").is_file():
            build_model(family, size, out, seed=seed)
    return out


__all__ = ["FAMILIES", "SHAPES", "SIZES", "build_model", "cached_model", "train_tokenizer"]
