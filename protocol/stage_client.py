"""A small client of the stage protocol: open a session on a route, step it, get tokens from the ring.

This is the test and benchmark harness the client SDK grows from; it needs no torch. It keeps every
token it sent, so a caller can replay a session on another route after a failure::

    async with StageClient.start() as client:
        async with client.session(route, max_length=64) as session:
            tokens = await session.generate(prompt_ids, max_new_tokens=16)
            receipts = await session.close()

Every failure is typed: an ERROR frame becomes :class:`~protocol.messages.StageError` (permanent code) or
:class:`~protocol.messages.TransientStageError` (transient code); a hop or the return leg that goes away
becomes ``TransientStageError(HOP_FAILED)``; a step with no answer within ``step_timeout_s`` becomes
``TransientStageError(HOP_FAILED)`` too. Nothing waits forever.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import trio
from libp2p import generate_new_ed25519_identity
from libp2p.abc import IHost
from libp2p.crypto.keys import KeyPair

from protocol.compression import Compression
from protocol.messages import (
    Attach,
    Attached,
    Cancel,
    Close,
    Closed,
    Error,
    ErrorCode,
    Hop,
    KeepAlive,
    Message,
    Open,
    Opened,
    PaymentTerms,
    SignedReceipt,
    StageError,
    Step,
    Tokens,
    TransientStageError,
    parse,
)
from protocol.p2p import FrameStream, listen_multiaddr, make_host, open_stream
from protocol.sampling import SamplingParams
from protocol.wire import FrameError, StreamClosed

ZERO_MODEL = b"\0" * 32
_M = TypeVar("_M")


@contextmanager
def _unwrapped() -> Iterator[None]:
    """Raise a lone error out of trio's exception groups, so callers catch ``StageError`` as such."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves: list[BaseException] = []
        pending: list[BaseException] = [group]
        while pending:
            item = pending.pop()
            if isinstance(item, BaseExceptionGroup):
                pending.extend(item.exceptions)
            else:
                leaves.append(item)
        if len(leaves) == 1 and isinstance(leaves[0], Exception):
            raise leaves[0] from None
        raise


def new_session_id() -> str:
    return secrets.token_hex(16)


@dataclass
class RouteSession:
    """One open session on a route; create with :meth:`StageClient.session`."""

    session_id: str
    route: tuple[Hop, ...]
    route_stream: FrameStream
    return_leg: FrameStream
    step_timeout_s: float
    operators: tuple[str, ...] = ()
    sent: list[int] = field(default_factory=list)  # token ids of every answered step, for replay elsewhere
    generated: list[int] = field(default_factory=list)
    receipts: list[SignedReceipt] = field(default_factory=list)
    _inbox: trio.MemoryReceiveChannel[Message | BaseException] | None = None
    closing: bool = False
    _step: int = 0
    _finished: bool = False

    async def step(self, token_ids: Sequence[int], position: int | None = None) -> Tokens:
        """Send token ids at ``position`` (default: after everything sent) and wait for the sampled token."""
        at = len(self.sent) if position is None else position
        await self._send(Step.with_tokens(self.session_id, self._step, at, token_ids).encode())
        self._step += 1
        while True:
            message = await self._next()
            if isinstance(message, Tokens) and message.step == self._step - 1:
                # only answered steps join the history a replay elsewhere would send
                del self.sent[at:]
                self.sent.extend(int(t) for t in token_ids)
                self.receipts.extend(message.receipts)
                self.generated.extend(message.tokens)
                self._finished = message.finished
                return message

    async def generate(self, prompt: Sequence[int], max_new_tokens: int) -> list[int]:
        """Prefill ``prompt`` and decode until ``max_new_tokens`` tokens or the last hop says finished."""
        out: list[int] = []
        reply = await self.step(prompt)
        out.extend(reply.tokens)
        while len(out) < max_new_tokens and not reply.finished:
            reply = await self.step(out[-1:])
            out.extend(reply.tokens)
        return out[:max_new_tokens]

    async def receive(self) -> Message:
        """The next frame for this session (raises what an ERROR frame or a lost hop means)."""
        return await self._next()

    async def keepalive(self) -> None:
        await self._send(KeepAlive(self.session_id).encode())

    async def close(self) -> list[SignedReceipt]:
        """Finish the session; returns every receipt received (the final ones included)."""
        self.closing = True  # from now on the first hop ending the route stream is expected
        await self._send(Close(self.session_id).encode())
        while True:
            message = await self._next()
            if isinstance(message, Closed):
                self.receipts.extend(message.receipts)
                return list(self.receipts)

    async def cancel(self) -> None:
        await self._send(Cancel(self.session_id).encode())

    async def _send(self, frame_bytes: bytes) -> None:
        try:
            await self.route_stream.send(frame_bytes)
        except StreamClosed as exc:
            raise TransientStageError(ErrorCode.HOP_FAILED, f"first hop went away: {exc}", 0) from None

    async def _next(self) -> Message:
        if self._inbox is None:
            raise StageError(ErrorCode.BAD_REQUEST, "session is not running")
        with trio.move_on_after(self.step_timeout_s):
            item = await self._inbox.receive()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, Error):
                raise item.exception()
            return item
        raise TransientStageError(ErrorCode.HOP_FAILED, f"no answer within {self.step_timeout_s} s")


class StageClient:
    """A libp2p host that opens sessions on routes of stage nodes."""

    def __init__(self, host: IHost, *, dial_timeout_s: float = 5.0, step_timeout_s: float = 30.0) -> None:
        self.host = host
        self.dial_timeout_s = dial_timeout_s
        self.step_timeout_s = step_timeout_s

    @classmethod
    @asynccontextmanager
    async def start(
        cls, key_pair: KeyPair | None = None, *, dial_timeout_s: float = 5.0, step_timeout_s: float = 30.0
    ) -> AsyncIterator[StageClient]:
        """A running client host on a free loopback port (it dials out; nothing needs to reach it)."""
        host = make_host(key_pair or generate_new_ed25519_identity())
        with _unwrapped():
            async with host.run(listen_addrs=[listen_multiaddr("127.0.0.1", 0)]):
                try:
                    yield cls(host, dial_timeout_s=dial_timeout_s, step_timeout_s=step_timeout_s)
                finally:
                    # close connections explicitly: host.run alone leaks sockets in py-libp2p 0.8
                    with trio.move_on_after(2) as cleanup:
                        cleanup.shield = True
                        await host.close()

    @asynccontextmanager
    async def session(
        self,
        route: Sequence[Hop],
        *,
        max_length: int,
        sampling: SamplingParams | None = None,
        model_id: bytes = ZERO_MODEL,
        compression: Compression = "none",
        payment: PaymentTerms | None = None,
        receipt_every: int = 32,
        session_id: str | None = None,
    ) -> AsyncIterator[RouteSession]:
        """Open a session on ``route`` (OPEN down the route, then the return leg to the last hop)."""
        sid = session_id or new_session_id()
        hops = tuple(route)
        message = Open(
            sid,
            hops,
            0,
            model_id,
            max_length,
            sampling or SamplingParams(),
            compression,
            payment,
            receipt_every,
            client_peer=self.host.get_id().to_base58(),
        )
        first, last = hops[0], hops[-1]
        route_stream = await self._dial(first, 0)
        send, receive = trio.open_memory_channel[Message | BaseException](64)
        try:
            await route_stream.send(message.encode())
            opened = await self._expect(route_stream, Opened, "OPEN")
            return_leg = await self._dial(last, len(hops) - 1)
            try:
                await return_leg.send(Attach(sid).encode())
                await self._expect(return_leg, Attached, "ATTACH")
                session = RouteSession(
                    sid, hops, route_stream, return_leg, self.step_timeout_s, opened.operators
                )
                session._inbox = receive
                with _unwrapped():
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_pump, route_stream, send, "first hop", 0, session)
                        nursery.start_soon(_pump, return_leg, send, "last hop", len(hops) - 1, None)
                        try:
                            yield session
                        finally:
                            nursery.cancel_scope.cancel()
            finally:
                await return_leg.aclose()
        finally:
            await route_stream.aclose()

    async def _dial(self, hop: Hop, index: int) -> FrameStream:
        try:
            return await open_stream(self.host, hop.peer_id, hop.addrs, timeout_s=self.dial_timeout_s)
        except StreamClosed as exc:
            raise TransientStageError(ErrorCode.HOP_UNREACHABLE, str(exc), index) from None

    async def _expect(self, stream: FrameStream, kind: type[_M], request: str) -> _M:
        with trio.move_on_after(self.step_timeout_s):
            try:
                message = parse(await stream.receive())
            except StreamClosed as exc:
                raise TransientStageError(
                    ErrorCode.HOP_FAILED, f"stream ended during {request}: {exc}"
                ) from None
            if isinstance(message, Error):
                raise message.exception()
            if not isinstance(message, kind):
                raise StageError(ErrorCode.BAD_REQUEST, f"expected {kind.__name__} after {request}")
            return message
        raise TransientStageError(
            ErrorCode.HOP_FAILED, f"no answer to {request} within {self.step_timeout_s} s"
        )


async def _pump(
    stream: FrameStream,
    out: trio.MemorySendChannel[Message | BaseException],
    name: str,
    index: int,
    session: RouteSession | None,
) -> None:
    """Read one stream for the whole session (read while the other side writes) into the inbox.

    The route stream ends normally once CLOSE has gone down it (``session.closing``): that end is no error.
    """
    while True:
        try:
            message: Message | BaseException = parse(await stream.receive())
        except FrameError as exc:
            message = StageError(ErrorCode.BAD_FRAME, f"{name} sent a bad frame: {exc}", index)
        except StreamClosed:
            if session is None or not session.closing:
                await out.send(TransientStageError(ErrorCode.HOP_FAILED, f"{name} went away", index))
            return
        await out.send(message)


__all__ = ["RouteSession", "StageClient", "new_session_id"]
