"""The small (~0.7 GB fp32, 16-layer) Llama and Qwen2 through real node chains: one lean test per family."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from node.daemon.launcher import even_splits, start_chain, stop_all
from protocol.stage_client import StageClient
from tests.e2e.daemon.conftest import assert_same_greedy_tokens, reference_tokens

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]
PROMPT = [17, 4, 230, 88, 9]
NEW_TOKENS = 6


def _chain_tokens(model_dir: Path, stages: int, workdir: Path) -> list[int]:
    nodes = start_chain(model_dir, even_splits(16, stages), workdir)
    try:

        async def main() -> list[int]:
            async with (
                StageClient.start(step_timeout_s=60) as client,
                client.session([n.hop for n in nodes], max_length=32) as session,
            ):
                tokens = await session.generate(PROMPT, NEW_TOKENS)
                await session.close()
                return tokens

        return trio.run(main)
    finally:
        stop_all(nodes)


def test_small_llama_on_4_nodes_matches_single_process_greedy_tokens(
    small_llama: Path, tmp_path: Path
) -> None:
    chain = _chain_tokens(small_llama, 4, tmp_path)
    assert_same_greedy_tokens(chain, reference_tokens(small_llama, PROMPT, NEW_TOKENS), None)


def test_small_qwen2_on_2_nodes_matches_single_process_greedy_tokens(
    small_qwen2: Path, tmp_path: Path
) -> None:
    chain = _chain_tokens(small_qwen2, 2, tmp_path)
    assert_same_greedy_tokens(chain, reference_tokens(small_qwen2, PROMPT, NEW_TOKENS), None)
