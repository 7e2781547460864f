"""libp2p plumbing every role shares: the host (TCP + Noise + Yamux) and streams that speak frames.

Only Noise is offered for security (no plaintext, no secio) and only Yamux for multiplexing: py-libp2p's
Mplex breaks on 1 MiB payloads. QUIC is not enabled (see docs/PROTOCOL.md, "Transports")::

    host = make_host(key_pair)
    async with host.run(listen_addrs=[listen_multiaddr("127.0.0.1", 0)]):
        stream = await open_stream(host, peer_id, addrs, timeout_s=5.0)
        await stream.send(frame_bytes)
        frame = await stream.receive()

:class:`FrameStream` turns every libp2p stream failure (EOF, reset, dead connection) into
:class:`protocol.wire.StreamClosed`, serialises writers (a frame is never interleaved with another), and
bounds what it reads with :class:`protocol.wire.Limits`.

Yamux flow control: py-libp2p 0.8's Yamux by default also answers every read with a WINDOW_UPDATE frame
("release on read"), i.e. one more encrypted frame, send and peer wake-up per activation frame on every
hop. :func:`make_host` turns that off (``PY_YAMUX_RELEASE_ON_READ=0``, py-libp2p's own tuning knob) so
credit is returned the go-yamux way, in larger batches; ``tests/unit/wire/test_p2p.py`` counts the Noise
messages on the wire, so an upgrade that drops the knob fails there.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport

from protocol.messages import PROTOCOL_ID
from protocol.wire import DEFAULT_LIMITS, Frame, Limits, StreamClosed, read_frame

STAGE_PROTOCOL = TProtocol(PROTOCOL_ID)
_READ_AHEAD = 1 << 16
# py-libp2p reads PY_YAMUX_* when it decides whether to send a WINDOW_UPDATE (each read); see the module doc.
_YAMUX_RELEASE_ON_READ = "PY_YAMUX_RELEASE_ON_READ"


def make_host(key_pair: KeyPair) -> IHost:
    """A host with ``key_pair`` as its identity, Noise-only and Yamux-only.

    Also switches off Yamux's per-read WINDOW_UPDATE for this process (unless the variable is already set).
    """
    os.environ.setdefault(_YAMUX_RELEASE_ON_READ, "0")
    noise = NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)
    host: IHost = new_host(key_pair=key_pair, sec_opt={NOISE_PROTOCOL_ID: noise}, muxer_preference="YAMUX")
    return host


def listen_multiaddr(ip: str, port: int) -> multiaddr.Multiaddr:
    return multiaddr.Multiaddr(f"/ip4/{ip}/tcp/{port}")


def full_addrs(host: IHost) -> list[str]:
    """The host's listening multiaddrs, each ending in ``/p2p/<peer id>``."""
    return [str(a) for a in host.get_addrs()]


class FrameStream:
    """A libp2p stream that reads and writes whole frames; failures become ``StreamClosed``."""

    def __init__(self, stream: INetStream, limits: Limits = DEFAULT_LIMITS) -> None:
        self.raw = stream
        self._limits = limits
        self._write_lock = trio.Lock()
        # Bytes read ahead: one libp2p read usually brings a whole frame (prefix and body), and each libp2p
        # read costs tens of microseconds of Python; at most _READ_AHEAD bytes wait here.
        self._buffer = bytearray()

    async def read(self, n: int | None = None) -> bytes:
        if not self._buffer:
            try:
                chunk = await self.raw.read(_READ_AHEAD)
            except (BaseLibp2pError, EOFError, OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                return b""
            if not chunk:
                return b""
            self._buffer += chunk
        take = len(self._buffer) if n is None else min(n, len(self._buffer))
        out = bytes(self._buffer[:take])
        del self._buffer[:take]
        return out

    async def write(self, data: bytes) -> None:
        try:
            await self.raw.write(data)
        except (BaseLibp2pError, OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StreamClosed(f"stream write failed: {type(exc).__name__}") from None

    def remote_peer(self) -> str:
        """The remote's peer id (authenticated by Noise), base58."""
        return str(self.raw.muxed_conn.peer_id.to_base58())

    async def receive(self) -> Frame:
        """The next frame (``StreamClosed`` at the end, ``FrameError`` for a bad frame)."""
        return await read_frame(self, self._limits)

    async def send(self, frame_bytes: bytes) -> None:
        """Write one whole frame; concurrent senders never interleave."""
        # An uncontended lock is taken without a trio schedule point (the write below has plenty).
        try:
            self._write_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._write_lock.acquire()
        try:
            await self.write(frame_bytes)
        finally:
            self._write_lock.release()

    async def aclose(self) -> None:
        """Close our side; never raises (the peer may already be gone)."""
        # closing a dead stream fails in many libp2p-specific ways; none of them matter here
        with contextlib.suppress(Exception):
            await self.raw.close()


def peer_info(peer_id: str, addrs: Sequence[str]) -> PeerInfo:
    """Peer id and multiaddrs (a trailing ``/p2p/<id>`` is allowed) as a libp2p ``PeerInfo``."""
    pid = ID.from_base58(peer_id)
    maddrs = []
    for text in addrs:
        address = multiaddr.Multiaddr(text)
        if "/p2p/" in text:
            address = address.decapsulate(multiaddr.Multiaddr(f"/p2p/{peer_id}"))
        maddrs.append(address)
    return PeerInfo(pid, maddrs)


async def open_stream(
    host: IHost, peer_id: str, addrs: Sequence[str], *, timeout_s: float, limits: Limits = DEFAULT_LIMITS
) -> FrameStream:
    """Dial ``peer_id`` (reusing a live connection) and open a stage-protocol stream to it.

    Raises ``StreamClosed`` when the peer cannot be reached within ``timeout_s``.
    """
    try:
        info = peer_info(peer_id, addrs)
    except (ValueError, BaseLibp2pError) as exc:
        raise StreamClosed(f"bad peer id or address for {peer_id!r}: {exc}") from None
    try:
        with trio.fail_after(timeout_s):
            if not host.get_network().get_connections(info.peer_id):
                # forget addresses learnt earlier: a restarted peer keeps its id but not its port
                host.get_peerstore().clear_addrs(info.peer_id)
            await host.connect(info)
            stream = await host.new_stream(info.peer_id, [STAGE_PROTOCOL])
    except trio.TooSlowError:
        raise StreamClosed(f"peer {peer_id} did not answer within {timeout_s} s") from None
    except (BaseLibp2pError, OSError, trio.BrokenResourceError) as exc:
        raise StreamClosed(f"cannot reach peer {peer_id}: {type(exc).__name__}: {exc}") from None
    return FrameStream(stream, limits)


__all__ = [
    "STAGE_PROTOCOL",
    "FrameStream",
    "full_addrs",
    "listen_multiaddr",
    "make_host",
    "open_stream",
    "peer_info",
]
