"""Real ``market-node`` processes on loopback for the daemon's end-to-end tests.

Nodes start in parallel (each ``--threads 1``: the test machine has 2 cores), are waited for with a
deadline on their ready file, and are always stopped by the fixture's finaliser. Reference tokens come
from transformers ``generate`` in this process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.daemon.launcher import NodeProcess, start_chain, stop_all

# tiny models have 8 layers: four 2-layer nodes make the 4-hop route, and [0, 6) + [6, 8) the 2-hop one
TINY_SPLITS = [(0, 2), (2, 4), (4, 6), (6, 8), (0, 6)]
FOUR_HOPS = [0, 1, 2, 3]
TWO_HOPS = [4, 3]
# receipts are signed for this court (any address works for the EIP-712 domain; no chain is needed)
COURT = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
CHAIN_ID = 31337


def reference_tokens(model_dir: Path, prompt: list[int], max_new_tokens: int) -> list[int]:
    """Greedy tokens of the whole model in one process with transformers ``generate``."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=max_new_tokens, do_sample=False)
    return [int(t) for t in out[0, len(prompt) :]]


def assert_same_greedy_tokens(chain: list[int], reference: list[int], eos: int | None) -> None:
    """transformers stops at EOS; the chain (no stop tokens asked) carries on, so compare the common part."""
    assert chain[: len(reference)] == reference
    if len(reference) < len(chain):
        assert reference[-1] == eos


@pytest.fixture(scope="session")
def tiny_llama_nodes(
    tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[NodeProcess]]:
    env = {"LAYERMARKET_NODE_COURT_ADDRESS": COURT, "LAYERMARKET_NODE_CHAIN_ID": str(CHAIN_ID)}
    nodes = start_chain(
        tiny_llama,
        TINY_SPLITS,
        tmp_path_factory.mktemp("tiny-llama-nodes"),
        env=env,
        extra_args=["--metrics-port", "0"],
    )
    yield nodes
    stop_all(nodes)


@pytest.fixture(scope="session")
def tiny_qwen2_nodes(
    tiny_qwen2: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[NodeProcess]]:
    nodes = start_chain(tiny_qwen2, TINY_SPLITS, tmp_path_factory.mktemp("tiny-qwen2-nodes"))
    yield nodes
    stop_all(nodes)


@pytest.fixture(scope="session")
def small_llama(model_cache: Path) -> Path:
    from node.devnet.models import cached_model

    return cached_model("llama", "small", model_cache)


@pytest.fixture(scope="session")
def small_qwen2(model_cache: Path) -> Path:
    from node.devnet.models import cached_model

    return cached_model("qwen2", "small", model_cache)
