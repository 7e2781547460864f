"""The stage protocol handler: sessions on a route, hop-to-hop forwarding, and the ring's return leg.

One inbound stream per session and hop (spec: docs/PROTOCOL.md). A stream whose first frame is OPEN is a
*route stream*: this hop checks the open, reserves KV memory, dials the next hop and forwards the open,
then serves STEP / KEEPALIVE / CLOSE / CANCEL frames in order until the session ends. Frames from the
next hop (OPENED, ERROR) are relayed up by a task that reads the downstream stream the whole time, so
libp2p's flow control never stalls a writer. A stream whose first frame is ATTACH is the client's
*return leg* at the last hop: TOKENS and CLOSED go there, straight to the client.

Failure handling, all of which ends in a typed ERROR frame toward the client:
- the next hop cannot be dialled: ``HOP_UNREACHABLE``; it disappears mid-session: ``HOP_FAILED``
  (its stream ends or resets when the process dies: no timeout needed);
- the upstream side disappears: the session is cancelled down the route and its memory freed;
- nothing arrives for ``session_idle_s``: ``SESSION_EXPIRED`` up, CANCEL down;
- a malformed frame: ``BAD_FRAME``, and the stream carries on (framing is intact: the length was valid).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import trio
from libp2p.abc import IHost, INetStream

from node.daemon.metrics import NodeMetrics
from node.daemon.receipts import ReceiptBook, ReceiptSigner
from node.errors import CapacityError, RuntimeInputError, SessionNotFound
from node.runtime import StageRuntime, StepOutput
from node.settings import NodeSettings
from protocol.errors import LayermarketError
from protocol.messages import (
    Attach,
    Attached,
    Cancel,
    Close,
    Closed,
    Error,
    ErrorCode,
    KeepAlive,
    Open,
    Opened,
    SignedReceipt,
    Step,
    Tokens,
    parse,
)
from protocol.p2p import FrameStream, open_stream
from protocol.wire import FrameError, StreamClosed, TensorMeta

logger = logging.getLogger(__name__)

ZERO_MODEL = b"\0" * 32


async def _send_quietly(stream: FrameStream, frame_bytes: bytes) -> None:
    """Send where a failure is reported elsewhere (the relay task, or nobody is left to tell)."""
    with contextlib.suppress(StreamClosed):
        await stream.send(frame_bytes)


@dataclass(eq=False)
class HopSession:
    """This hop's view of one session."""

    open: Open
    upstream: FrameStream
    book: ReceiptBook
    downstream: FrameStream | None = None
    sink: FrameStream | None = None  # last hop: the client's return leg
    attached: trio.Event = field(default_factory=trio.Event)
    done: trio.Event = field(default_factory=trio.Event)
    next_step: int = 0
    ending: bool = False  # CLOSE/CANCEL sent down: the downstream stream ending is expected
    scope: trio.CancelScope | None = None
    last_active: float = field(default_factory=time.monotonic)
    end_error: Error | None = None  # why the session ended abnormally; the last hop tells the return leg

    @property
    def sid(self) -> str:
        return self.open.session_id

    @property
    def index(self) -> int:
        return self.open.hop_index


class StageService:
    """Serves ``/layermarket/stage/1.0.0`` for one loaded stage."""

    def __init__(
        self,
        host: IHost,
        runtime: StageRuntime,
        settings: NodeSettings,
        *,
        operator: str,
        model_id: bytes,
        sign: ReceiptSigner | None = None,
        metrics: NodeMetrics | None = None,
    ) -> None:
        self.host = host
        self.runtime = runtime
        self.settings = settings
        self.operator = operator
        self.model_id = model_id
        self._sign = sign
        self.metrics = metrics or NodeMetrics()
        self.sessions: dict[str, HopSession] = {}
        self.draining = False
        self.peer_id = host.get_id().to_base58()
        self.tokens_served = 0
        self.earned = 0
        self.step_ms_ewma = 0.0

    # ---- entry ------------------------------------------------------------------------------------

    async def handle(self, raw: INetStream) -> None:
        """libp2p stream handler: route stream (OPEN) or return leg (ATTACH)."""
        stream = FrameStream(raw)
        try:
            message = parse(await stream.receive())
        except StreamClosed:
            await stream.aclose()
            return
        except FrameError as exc:
            await self._send_error(stream, ErrorCode.BAD_FRAME, str(exc))
            await stream.aclose()
            return
        try:
            if isinstance(message, Open):
                await self._serve_route(stream, message)
            elif isinstance(message, Attach):
                await self._serve_attach(stream, message)
            else:
                await self._send_error(
                    stream,
                    ErrorCode.BAD_REQUEST,
                    f"a stream must start with OPEN or ATTACH, not {type(message).__name__.upper()}",
                )
        except Exception:  # top of a task: log and drop the stream, never the process
            logger.exception("stage stream failed")
        finally:
            await stream.aclose()

    async def _send_error(
        self,
        stream: FrameStream | None,
        code: ErrorCode,
        message: str,
        sid: str | None = None,
        hop_index: int | None = None,
    ) -> None:
        self.metrics.errors.labels(code=code.name).inc()
        if stream is None:
            return
        await _send_quietly(stream, Error(code, message, sid, hop_index).encode())

    # ---- open -------------------------------------------------------------------------------------

    def _check_open(self, message: Open) -> tuple[ErrorCode, str] | None:
        hop, spec = message.hop, self.runtime.spec
        if self.draining:
            return ErrorCode.SHUTTING_DOWN, "this node is shutting down"
        if hop.peer_id != self.peer_id:
            return (
                ErrorCode.BAD_REQUEST,
                f"hop {message.hop_index} names peer {hop.peer_id}, this is {self.peer_id}",
            )
        if (hop.layer_start, hop.layer_end) != (spec.layer_start, spec.layer_end):
            return ErrorCode.WRONG_LAYERS, (
                f"this node serves layers [{spec.layer_start}, {spec.layer_end}), "
                f"the route asks for [{hop.layer_start}, {hop.layer_end})"
            )
        if message.is_last and hop.layer_end != spec.num_layers:
            return ErrorCode.WRONG_LAYERS, f"the route ends at layer {hop.layer_end} of {spec.num_layers}"
        if message.model_id != ZERO_MODEL and message.model_id != self.model_id:
            return ErrorCode.WRONG_MODEL, f"this node serves model 0x{self.model_id.hex()}"
        if message.session_id in self.sessions:
            return ErrorCode.DUPLICATE_SESSION, "a session with this id is open here"
        if len(self.sessions) >= self.settings.max_sessions:
            return (
                ErrorCode.CAPACITY,
                f"{len(self.sessions)} sessions open, the limit is {self.settings.max_sessions}",
            )
        return None

    async def _serve_route(self, upstream: FrameStream, message: Open) -> None:
        sid, index = message.session_id, message.hop_index
        problem = self._check_open(message)
        if problem is not None:
            await self._send_error(upstream, problem[0], problem[1], sid, index)
            return
        try:
            self.runtime.open(
                sid, message.max_length, message.sampling, ttl_s=self.settings.session_idle_s * 2 + 60
            )
        except CapacityError as exc:
            await self._send_error(upstream, ErrorCode.CAPACITY, str(exc), sid, index)
            return
        except LayermarketError as exc:
            await self._send_error(upstream, ErrorCode.BAD_REQUEST, str(exc), sid, index)
            return
        session = HopSession(
            message, upstream, ReceiptBook(message, self.operator, self.model_id, self._sign)
        )
        self.sessions[sid] = session
        self.metrics.sessions_opened.inc()
        self.metrics.sessions.set(len(self.sessions))
        logger.info("session %s opened (hop %d of %d)", sid, index, len(message.route))
        try:
            async with trio.open_nursery() as nursery:
                session.scope = nursery.cancel_scope
                if not message.is_last:
                    if not await self._open_downstream(session, nursery):
                        return
                else:
                    await upstream.send(Opened(sid, (self.operator,)).encode())
                await self._serve_frames(session)
                nursery.cancel_scope.cancel()
        finally:
            await self._end(session)

    async def _open_downstream(self, session: HopSession, nursery: trio.Nursery) -> bool:
        nxt = session.open.route[session.index + 1]
        try:
            session.downstream = await open_stream(
                self.host, nxt.peer_id, nxt.addrs, timeout_s=self.settings.dial_timeout_s
            )
            await session.downstream.send(session.open.next_hop().encode())
        except StreamClosed as exc:
            await self._send_error(
                session.upstream,
                ErrorCode.HOP_UNREACHABLE,
                f"cannot reach hop {session.index + 1}: {exc}",
                session.sid,
                session.index + 1,
            )
            return False
        nursery.start_soon(self._relay_up, session)
        return True

    async def _relay_up(self, session: HopSession) -> None:
        """Read the next hop's stream for the whole session and relay what comes back toward the client."""
        down = session.downstream
        if down is None:
            return
        while True:
            try:
                frame = await down.receive()
                message = parse(frame)
            except StreamClosed:
                if not session.ending:
                    await self._send_error(
                        session.upstream,
                        ErrorCode.HOP_FAILED,
                        f"hop {session.index + 1} went away mid-session",
                        session.sid,
                        session.index + 1,
                    )
                    session.ending = True
                    if session.scope is not None:
                        session.scope.cancel()
                return
            except FrameError as exc:
                await self._send_error(
                    session.upstream,
                    ErrorCode.BAD_FRAME,
                    f"hop {session.index + 1} sent a bad frame: {exc}",
                    session.sid,
                    session.index + 1,
                )
                continue
            if isinstance(message, Opened):
                message = Opened(message.session_id, (self.operator, *message.operators))
            try:
                await session.upstream.send(message.encode())
            except StreamClosed:
                return

    # ---- frames of an open session ----------------------------------------------------------------

    async def _serve_frames(self, session: HopSession) -> None:
        idle = self.settings.session_idle_s
        while True:
            with trio.move_on_after(idle) as timer:
                try:
                    frame = await session.upstream.receive()
                except StreamClosed:
                    logger.info("session %s: upstream went away; cancelling", session.sid)
                    session.end_error = Error(
                        ErrorCode.HOP_FAILED, "the previous hop went away", session.sid, session.index
                    )
                    await self._forward(session, Cancel(session.sid).encode())
                    return
                except FrameError as exc:
                    await self._send_error(
                        session.upstream, ErrorCode.BAD_FRAME, str(exc), session.sid, session.index
                    )
                    continue
            if timer.cancelled_caught:
                logger.info("session %s expired after %.0f s idle", session.sid, idle)
                session.end_error = Error(
                    ErrorCode.SESSION_EXPIRED, f"no frame for {idle:.0f} s", session.sid, session.index
                )
                await self._send_error(
                    session.upstream,
                    ErrorCode.SESSION_EXPIRED,
                    f"no frame for {idle:.0f} s",
                    session.sid,
                    session.index,
                )
                await self._forward(session, Cancel(session.sid).encode())
                return
            session.last_active = time.monotonic()
            try:
                message = parse(frame)
            except FrameError as exc:
                await self._send_error(
                    session.upstream, ErrorCode.BAD_FRAME, str(exc), session.sid, session.index
                )
                continue
            if message.session_id != session.sid:
                await self._send_error(
                    session.upstream,
                    ErrorCode.BAD_REQUEST,
                    "frame names another session",
                    session.sid,
                    session.index,
                )
                continue
            if isinstance(message, Step):
                await self._step(session, message)
            elif isinstance(message, KeepAlive):
                await self._forward(session, frame_bytes=message.encode(), ending=False)
            elif isinstance(message, Close):
                await self._close(session, message)
                return
            elif isinstance(message, Cancel):
                await self._forward(session, message.encode())
                return
            else:
                await self._send_error(
                    session.upstream,
                    ErrorCode.BAD_REQUEST,
                    f"{type(message).__name__.upper()} is not valid on an open route stream",
                    session.sid,
                    session.index,
                )

    async def _forward(self, session: HopSession, frame_bytes: bytes, *, ending: bool = True) -> None:
        """Send a frame down the route (no-op on the last hop); ``ending``: its stream's end is expected."""
        if ending:
            session.ending = True
        if session.downstream is not None:
            await _send_quietly(session.downstream, frame_bytes)

    async def _close(self, session: HopSession, message: Close) -> None:
        receipts = message.receipts
        mine = session.book.cut()
        if mine is not None:
            receipts = (*receipts, mine)
            self.metrics.receipts.inc()
        if session.downstream is not None:
            await self._forward(session, Close(session.sid, receipts).encode())
        else:
            await self._wait_attached(session)
            if session.sink is not None:
                await _send_quietly(session.sink, Closed(session.sid, receipts).encode())
        logger.info("session %s closed", session.sid)

    async def _step(self, session: HopSession, message: Step) -> None:
        arrived = time.perf_counter()
        if message.step != session.next_step:
            await self._send_error(
                session.upstream,
                ErrorCode.BAD_REQUEST,
                f"expected step {session.next_step}, got {message.step}",
                session.sid,
                session.index,
            )
            return
        try:
            inputs = self._inputs(message)
        except FrameError as exc:
            await self._send_error(
                session.upstream, ErrorCode.BAD_REQUEST, str(exc), session.sid, session.index
            )
            return
        started = time.perf_counter()
        try:
            if len(self.sessions) == 1:
                # Fast path: the only session here, so nothing else could batch with it or needs the event
                # loop meanwhile; calling in this thread saves a thread handoff (~0.1-0.5 ms) per step.
                out: StepOutput = self.runtime.step(session.sid, inputs, message.position)
            else:
                out = await trio.to_thread.run_sync(self.runtime.step, session.sid, inputs, message.position)
        except (RuntimeInputError, SessionNotFound) as exc:
            code = ErrorCode.TOO_LONG if "max_length" in str(exc) else ErrorCode.BAD_REQUEST
            await self._send_error(session.upstream, code, str(exc), session.sid, session.index)
            return
        except Exception as exc:  # a runtime failure must reach the client as a typed error
            logger.exception("session %s: step %d failed", session.sid, message.step)
            await self._send_error(
                session.upstream,
                ErrorCode.INTERNAL,
                f"{type(exc).__name__}: {exc}",
                session.sid,
                session.index,
            )
            return
        compute = time.perf_counter() - started
        session.next_step += 1
        positions = message.positions
        session.book.record(message.step, positions, message.payload, out.fingerprint)
        receipts: tuple[SignedReceipt, ...] = message.receipts
        if session.book.due():
            receipt = session.book.cut()
            if receipt is not None:
                receipts = (*receipts, receipt)
                self.metrics.receipts.inc()
        if session.downstream is not None:
            frame = self._hidden_step(session, message, out, receipts)
            await _send_quietly(session.downstream, frame)  # if it fails, the relay task reports HOP_FAILED
        else:
            await self._send_tokens(session, message, out, receipts)
        self._account(positions, compute, time.perf_counter() - arrived)

    def _inputs(self, message: Step) -> torch.Tensor:
        if self.runtime.spec.is_first:
            return torch.from_numpy(message.token_ids().copy())
        if message.tensor.dtype == "bfloat16" and message.tensor.encoding == "raw":
            return torch.frombuffer(bytearray(message.payload), dtype=torch.bfloat16).view(
                message.tensor.shape
            )
        return torch.from_numpy(np.array(message.hidden(), copy=True))

    def _hidden_step(
        self, session: HopSession, message: Step, out: StepOutput, receipts: tuple[SignedReceipt, ...]
    ) -> bytes:
        if out.hidden is None:
            raise LayermarketError("runtime returned no hidden states on a non-last stage")
        hidden = out.hidden.detach()
        if session.open.compression == "bf16":
            bits = hidden.to(torch.bfloat16).contiguous().view(torch.int16).cpu().numpy().view(np.uint16)
            return Step(
                session.sid,
                message.step,
                message.position,
                TensorMeta("bfloat16", bits.shape),
                bits.tobytes(),
                receipts,
            ).encode()
        array = hidden.to(torch.float32).cpu().numpy()
        return Step.with_hidden(
            session.sid, message.step, message.position, array, session.open.compression, receipts
        ).encode()

    async def _wait_attached(self, session: HopSession) -> None:
        if session.sink is None:
            with trio.move_on_after(self.settings.attach_timeout_s):
                await session.attached.wait()

    async def _send_tokens(
        self, session: HopSession, message: Step, out: StepOutput, receipts: tuple[SignedReceipt, ...]
    ) -> None:
        await self._wait_attached(session)
        frame = Tokens(session.sid, message.step, tuple(out.tokens), out.finished, receipts).encode()
        if session.sink is None:
            await self._send_error(
                session.upstream,
                ErrorCode.BAD_REQUEST,
                f"no return leg attached within {self.settings.attach_timeout_s} s",
                session.sid,
                session.index,
            )
            return
        try:
            await session.sink.send(frame)
        except StreamClosed:
            await self._send_error(
                session.upstream, ErrorCode.BAD_REQUEST, "the return leg closed", session.sid, session.index
            )

    def _account(self, positions: int, compute_s: float, hop_s: float) -> None:
        self.tokens_served += positions
        self.metrics.steps.inc()
        self.metrics.tokens.inc(positions)
        self.metrics.step_seconds.observe(compute_s)
        self.metrics.hop_seconds.observe(hop_s)
        self.step_ms_ewma = (
            compute_s * 1e3 if self.step_ms_ewma == 0 else 0.9 * self.step_ms_ewma + 0.1 * compute_s * 1e3
        )

    # ---- return leg -------------------------------------------------------------------------------

    async def _serve_attach(self, stream: FrameStream, message: Attach) -> None:
        session = self.sessions.get(message.session_id)
        if session is None or not session.open.is_last:
            await self._send_error(
                stream, ErrorCode.UNKNOWN_SESSION, "no session with this id ends here", message.session_id
            )
            return
        if session.open.client_peer and stream.remote_peer() != session.open.client_peer:
            # every hop of the route knows the session id; only the client that opened it gets its tokens
            await self._send_error(
                stream,
                ErrorCode.BAD_REQUEST,
                "only the client that opened the session may attach",
                session.sid,
            )
            return
        if session.sink is not None:
            await self._send_error(stream, ErrorCode.BAD_REQUEST, "return leg already attached", session.sid)
            return
        session.sink = stream
        await stream.send(Attached(session.sid).encode())
        session.attached.set()
        async with trio.open_nursery() as nursery:

            async def watch_client() -> None:
                # read while the session writes: frames here are ignored, the end means the client left
                while True:
                    try:
                        await stream.receive()
                    except FrameError:
                        continue
                    except StreamClosed:
                        break
                if not session.done.is_set() and session.scope is not None:
                    logger.info("session %s: return leg closed by the client; cancelling", session.sid)
                    session.scope.cancel()
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_client)
            await session.done.wait()
            nursery.cancel_scope.cancel()

    # ---- end --------------------------------------------------------------------------------------

    async def _end(self, session: HopSession) -> None:
        self.sessions.pop(session.sid, None)
        self.metrics.sessions.set(len(self.sessions))
        self.earned += session.book.earned
        with contextlib.suppress(SessionNotFound):  # expired inside the runtime already
            self.runtime.close(session.sid)
        if session.sink is not None and session.end_error is not None:
            # the client may hear of the end first on the return leg: say why, not just "gone"
            await _send_quietly(session.sink, session.end_error.encode())
        session.done.set()
        if session.downstream is not None:
            await session.downstream.aclose()

    def status(self) -> dict[str, Any]:
        """What ``market-node status`` shows and heartbeats report."""
        stats = self.runtime.stats()
        self.metrics.kv_used.set(stats["kv_bytes_used"])
        self.metrics.kv_budget.set(stats["kv_bytes_budget"])
        return {
            "peer_id": self.peer_id,
            "operator": self.operator,
            "layers": [self.runtime.spec.layer_start, self.runtime.spec.layer_end],
            "sessions": len(self.sessions),
            "max_sessions": self.settings.max_sessions,
            "tokens_served": self.tokens_served,
            "kv_bytes_used": stats["kv_bytes_used"],
            "kv_bytes_budget": stats["kv_bytes_budget"],
            "step_ms": round(self.step_ms_ewma, 3),
            "earned_wei": self.earned + sum(s.book.earned for s in self.sessions.values()),
            "draining": self.draining,
        }


__all__ = ["HopSession", "StageService"]
