"""Failures reach the client as typed errors, fast (killed nodes, idle sessions); restarted nodes serve."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from node.daemon.launcher import NodeProcess, start_chain, stop_all
from protocol.messages import ErrorCode, StageError, TransientStageError
from protocol.stage_client import StageClient
from tests.e2e.daemon.conftest import assert_same_greedy_tokens, reference_tokens

pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)
IDLE_S = 2.0
PROMPT = [11, 22, 33]


@pytest.fixture(scope="module")
def short_idle_nodes(
    tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[NodeProcess]]:
    env = {"LAYERMARKET_NODE_SESSION_IDLE_S": str(IDLE_S)}
    nodes = start_chain(tiny_llama, [(0, 4), (4, 8)], tmp_path_factory.mktemp("fault-nodes"), env=env)
    yield nodes
    stop_all(nodes)


def test_idle_session_expires_with_a_typed_error_and_keepalive_prevents_it(
    short_idle_nodes: list[NodeProcess],
) -> None:
    route = [n.hop for n in short_idle_nodes]

    async def main() -> tuple[ErrorCode, float]:
        async with StageClient.start(step_timeout_s=IDLE_S * 4) as client:
            async with client.session(route, max_length=32) as kept:
                await kept.step(PROMPT)
                for _ in range(3):  # 3 x IDLE_S/2 > IDLE_S: alive only thanks to keep-alives
                    await trio.sleep(IDLE_S / 2)  # the behaviour under test is the passage of idle time
                    await kept.keepalive()
                await kept.step([5])
                await kept.close()
            async with client.session(route, max_length=32) as idle:
                await idle.step(PROMPT)
                started = time.monotonic()
                try:
                    await idle.receive()
                except StageError as exc:
                    return exc.code, time.monotonic() - started
        raise AssertionError("an idle session did not expire")

    code, waited = trio.run(main)
    assert code == ErrorCode.SESSION_EXPIRED
    assert waited < IDLE_S * 3


def test_killing_a_node_mid_session_gives_a_typed_error_within_2s_and_a_restart_serves(
    short_idle_nodes: list[NodeProcess], tiny_llama: Path
) -> None:
    first, last = short_idle_nodes

    async def interrupted() -> tuple[BaseException, float, list[int]]:
        async with (
            StageClient.start(step_timeout_s=10) as client,
            client.session([first.hop, last.hop], max_length=64) as s,
        ):
            generated = await s.generate(PROMPT, 4)
            last.kill()
            started = time.monotonic()
            try:
                await s.step(generated[-1:])
            except (StageError, TransientStageError) as exc:
                assert s.sent == PROMPT + generated[:-1]  # the failed step is not in the history
                return exc, time.monotonic() - started, s.sent + generated[-1:]
        raise AssertionError("a step through a killed node succeeded")

    error, waited, history = trio.run(interrupted)
    assert isinstance(error, TransientStageError)
    assert error.code == ErrorCode.HOP_FAILED
    assert waited < 2.0

    restarted = NodeProcess.start(tiny_llama, (4, 8), last.home)
    short_idle_nodes[1] = restarted  # the fixture's finaliser stops it
    assert restarted.hop.peer_id == last.hop.peer_id  # same keys, same identity

    async def resumed() -> list[int]:
        # replay the interrupted session's history on the new route in one step, then carry on
        async with (
            StageClient.start(step_timeout_s=10) as client,
            client.session([first.hop, restarted.hop], max_length=64) as s,
        ):
            tokens = await s.generate(history, 3)
            await s.close()
            return history[len(PROMPT) :] + tokens

    assert_same_greedy_tokens(trio.run(resumed), reference_tokens(tiny_llama, PROMPT, 7), None)


def test_sigterm_drains_open_sessions_and_refuses_new_ones(tiny_llama: Path, tmp_path: Path) -> None:
    import signal

    nodes = start_chain(tiny_llama, [(0, 4), (4, 8)], tmp_path)
    try:
        route = [n.hop for n in nodes]

        async def main() -> tuple[ErrorCode, list[int]]:
            async with (
                StageClient.start(step_timeout_s=10) as client,
                client.session(route, max_length=64) as open_session,
            ):
                tokens = list((await open_session.step(PROMPT)).tokens)
                nodes[0].process.send_signal(signal.SIGTERM)
                refused = None
                with trio.fail_after(10):
                    while refused is None:  # the signal is handled asynchronously: wait for its effect
                        try:
                            async with client.session(route, max_length=8) as late:
                                await late.cancel()
                        except TransientStageError as exc:
                            refused = exc.code
                for _ in range(3):
                    tokens += (await open_session.step(tokens[-1:])).tokens
                await open_session.close()
                return refused, tokens

        refused, tokens = trio.run(main)
        assert refused == ErrorCode.SHUTTING_DOWN
        assert tokens == reference_tokens(tiny_llama, PROMPT, 4)
        assert nodes[0].process.wait(timeout=15) == 0  # exits once its last session closed
    finally:
        stop_all(nodes)
