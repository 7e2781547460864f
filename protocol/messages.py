"""Typed messages of the stage protocol ``/layermarket/stage/1.0.0`` (spec: docs/PROTOCOL.md).

Each message is a frozen dataclass with ``encode() -> bytes`` (a whole wire frame) and a ``from_frame``
classmethod that validates every field of a decoded :class:`~protocol.wire.Frame`; :func:`parse` turns any
frame into its message or raises :class:`~protocol.wire.FrameError`::

    frame_bytes = Close("9f3c...").encode()
    parse(decode_frame(frame_bytes[4:]))          # Close(session_id='9f3c...')

Who sends what (client C, hops H0..Hn-1; "up" is toward C along the streams the route opened):

=========  ==============  ==========================================================================
kind       direction       meaning
=========  ==============  ==========================================================================
OPEN       C→H0→…→Hn-1     open a session on the whole route; each hop checks its layers and capacity
OPENED     up to C         every hop accepted (sent by the last hop, relayed up)
ATTACH     C→Hn-1          on a second stream: "send this session's tokens here" (the ring's return leg)
ATTACHED   Hn-1→C          the return leg is ready
STEP       C→H0→…→Hn-1     token ids (to H0) or hidden states (between hops), plus receipts so far
TOKENS     Hn-1→C          sampled tokens of one step, with the receipts that rode along
ERROR      up, or Hn-1→C   a typed error (``ErrorCode``) naming the hop that raised it
CLOSE      C→…→Hn-1        finish: every hop signs its last receipt and frees the session
CLOSED     Hn-1→C          the final receipts
CANCEL     C→…→Hn-1        abandon now: in-flight work is dropped, memory freed, no reply
KEEPALIVE  C→…→Hn-1        refresh the idle timers of every hop (and of the return leg)
=========  ==============  ==========================================================================
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from protocol.compression import COMPRESSIONS, Compression, compress, decompress
from protocol.errors import PermanentError, TransientError
from protocol.receipts import Receipt
from protocol.sampling import SamplingParams
from protocol.wire import Frame, FrameError, TensorMeta, encode_frame

PROTOCOL_ID = "/layermarket/stage/1.0.0"
MAX_ROUTE_HOPS = 64
MAX_LAYER = 65535  # receipts carry layer indices as uint16
MAX_SESSION_LENGTH = 1 << 20
MAX_TOKENS_PER_FRAME = 1 << 16
MAX_RECEIPTS_PER_FRAME = MAX_ROUTE_HOPS
_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class Kind(IntEnum):
    OPEN = 1
    OPENED = 2
    ATTACH = 3
    ATTACHED = 4
    STEP = 5
    TOKENS = 6
    ERROR = 7
    CLOSE = 8
    CLOSED = 9
    CANCEL = 10
    KEEPALIVE = 11


class ErrorCode(IntEnum):
    """Codes of ERROR frames. ``is_transient`` says whether retrying (maybe on another route) can help."""

    BAD_FRAME = 1  # the frame broke the wire format or a field was invalid
    BAD_REQUEST = 2  # well-formed, but not acceptable (wrong order, wrong shape for this stage)
    UNKNOWN_SESSION = 3
    WRONG_LAYERS = 4  # the hop does not serve the layers the route asks of it
    WRONG_MODEL = 5
    CAPACITY = 6  # no KV memory for another session now
    TOO_LONG = 7  # the session would exceed its max_length
    HOP_UNREACHABLE = 8  # a hop could not dial the next one
    HOP_FAILED = 9  # the next hop went away mid-session
    SESSION_EXPIRED = 10  # idle past the node's timeout; memory was freed
    SHUTTING_DOWN = 11
    INTERNAL = 12  # a bug or a runtime failure in the hop that reports it
    DUPLICATE_SESSION = 13

    @property
    def is_transient(self) -> bool:
        return self in _TRANSIENT_CODES


_TRANSIENT_CODES = frozenset(
    {
        ErrorCode.CAPACITY,
        ErrorCode.HOP_UNREACHABLE,
        ErrorCode.HOP_FAILED,
        ErrorCode.SHUTTING_DOWN,
        ErrorCode.INTERNAL,
    }
)


class StageError(PermanentError):
    """An ERROR frame a hop sent, raised on the client side (permanent codes)."""

    def __init__(self, code: ErrorCode, message: str, hop_index: int | None = None) -> None:
        where = f" (hop {hop_index})" if hop_index is not None else ""
        super().__init__(f"{code.name}{where}: {message}")
        self.code = code
        self.hop_index = hop_index
        self.detail = message


class TransientStageError(TransientError):
    """An ERROR frame with a transient code, or a hop that went away: retry, maybe on another route."""

    def __init__(self, code: ErrorCode, message: str, hop_index: int | None = None) -> None:
        where = f" (hop {hop_index})" if hop_index is not None else ""
        super().__init__(f"{code.name}{where}: {message}")
        self.code = code
        self.hop_index = hop_index
        self.detail = message


# --- field validation: every check happens before the value is used -------------------------------


def _get(header: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = header.get(key)
    if type(value) is bool and kind is not bool:
        raise FrameError(f"{what} ({key!r}) must be {kind}, got bool")
    if not isinstance(value, kind):
        raise FrameError(f"{what} ({key!r}) is missing or not {kind}")
    return value


def _int(header: Mapping[str, Any], key: str, what: str, low: int, high: int) -> int:
    value = _get(header, key, int, what)
    if not low <= value <= high:
        raise FrameError(f"{what} ({key!r}) = {value} is outside {low}..{high}")
    return int(value)


def _float(header: Mapping[str, Any], key: str, what: str, low: float, high: float) -> float:
    value = float(_get(header, key, (int, float), what))
    if not low <= value <= high:  # also rejects NaN
        raise FrameError(f"{what} ({key!r}) = {value} is outside {low}..{high}")
    return value


def _str(header: Mapping[str, Any], key: str, what: str, max_len: int = 256) -> str:
    value = _get(header, key, str, what)
    if len(value) > max_len:
        raise FrameError(f"{what} ({key!r}) is longer than {max_len} characters")
    return str(value)


def _list(header: Mapping[str, Any], key: str, what: str, max_len: int) -> list[Any]:
    value = _get(header, key, list, what)
    if len(value) > max_len:
        raise FrameError(f"{what} ({key!r}) has more than {max_len} items")
    return list(value)


def _session_id(header: Mapping[str, Any]) -> str:
    value = _str(header, "s", "session id", 32)
    if not _SESSION_ID.match(value):
        raise FrameError("session id must be 32 lowercase hex characters (16 random bytes)")
    return value


def _address(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise FrameError(f"{what} must be a 0x-prefixed 20-byte hex address")
    return value


def _bytes32(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise FrameError(f"{what} must be 32 bytes")
    return value


# --- parts of messages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One hop of a route: who (peer id, multiaddrs) serves which layers ``[layer_start, layer_end)``, and
    at what price per token when the route was quoted (``None``: the session's payment terms name it)."""

    peer_id: str
    addrs: tuple[str, ...]
    layer_start: int
    layer_end: int
    price_per_token: int | None = None
    """This hop's own price (token base units per token), as the market quoted it; the hop's receipts name
    it. A route's hops are priced apart, so one price in the payment terms cannot describe all of them."""

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "p": self.peer_id,
            "a": list(self.addrs),
            "ls": self.layer_start,
            "le": self.layer_end,
        }
        if self.price_per_token is not None:
            wire["pp"] = self.price_per_token
        return wire

    @classmethod
    def from_wire(cls, value: object) -> Hop:
        if not isinstance(value, dict):
            raise FrameError("a route hop must be a map")
        peer_id = _str(value, "p", "hop peer id", 128)
        addrs = _list(value, "a", "hop addresses", 16)
        if not all(isinstance(a, str) and len(a) <= 256 for a in addrs):
            raise FrameError("hop addresses must be multiaddr strings of at most 256 characters")
        start = _int(value, "ls", "hop layer_start", 0, MAX_LAYER)
        end = _int(value, "le", "hop layer_end", 1, MAX_LAYER)
        if end <= start:
            raise FrameError(f"hop layer range [{start}, {end}) is empty")
        price = _int(value, "pp", "hop price", 0, (1 << 64) - 1) if "pp" in value else None
        return cls(peer_id, tuple(addrs), start, end, price)


def _sampling(value: object) -> SamplingParams:
    if not isinstance(value, dict):
        raise FrameError("sampling must be a map")
    try:
        return SamplingParams.from_dict(value)
    except (ValueError, TypeError) as exc:
        raise FrameError(f"bad sampling parameters: {exc}") from None


@dataclass(frozen=True)
class PaymentTerms:
    """Who pays, and how much per token (wei of the escrow token); named in every receipt."""

    client: str
    price_per_token: int

    def to_wire(self) -> dict[str, Any]:
        return {"c": self.client, "pp": self.price_per_token}

    @classmethod
    def from_wire(cls, value: object) -> PaymentTerms:
        if not isinstance(value, dict):
            raise FrameError("payment terms must be a map")
        return cls(_address(value.get("c"), "payment client"), _int(value, "pp", "price", 0, (1 << 64) - 1))


@dataclass(frozen=True)
class SignedReceipt:
    """A hop's EIP-712 receipt (fields of ``protocol.receipts.Receipt``) and its 65-byte signature."""

    node: str
    session_id: bytes  # bytes32
    model_id: bytes  # bytes32
    layer_start: int
    layer_end: int
    step_start: int
    step_end: int
    input_digest: bytes  # bytes32
    output_commitment: bytes  # bytes32
    tokens: int
    price_per_token: int
    client: str
    signature: bytes

    def receipt(self) -> Receipt:
        """The EIP-712 receipt (``protocol.receipts``) this signature is over; verify it with the court's
        domain: ``verify_receipt(r.receipt(), r.signature, domain)``."""
        return Receipt(
            self.node,
            self.session_id,
            self.model_id,
            self.layer_start,
            self.layer_end,
            self.step_start,
            self.step_end,
            self.input_digest,
            self.output_commitment,
            self.tokens,
            self.price_per_token,
            self.client,
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "n": self.node,
            "s": self.session_id,
            "m": self.model_id,
            "ls": self.layer_start,
            "le": self.layer_end,
            "ss": self.step_start,
            "se": self.step_end,
            "i": self.input_digest,
            "o": self.output_commitment,
            "t": self.tokens,
            "pp": self.price_per_token,
            "c": self.client,
            "g": self.signature,
        }

    @classmethod
    def from_wire(cls, value: object) -> SignedReceipt:
        if not isinstance(value, dict):
            raise FrameError("a receipt must be a map")
        signature = value.get("g")
        if not isinstance(signature, bytes) or len(signature) != 65:
            raise FrameError("receipt signature must be 65 bytes")
        return cls(
            node=_address(value.get("n"), "receipt node"),
            session_id=_bytes32(value.get("s"), "receipt session id"),
            model_id=_bytes32(value.get("m"), "receipt model id"),
            layer_start=_int(value, "ls", "receipt layer_start", 0, MAX_LAYER),
            layer_end=_int(value, "le", "receipt layer_end", 0, MAX_LAYER),
            step_start=_int(value, "ss", "receipt step_start", 0, (1 << 32) - 1),
            step_end=_int(value, "se", "receipt step_end", 0, (1 << 32) - 1),
            input_digest=_bytes32(value.get("i"), "receipt input digest"),
            output_commitment=_bytes32(value.get("o"), "receipt output commitment"),
            tokens=_int(value, "t", "receipt tokens", 0, (1 << 32) - 1),
            price_per_token=_int(value, "pp", "receipt price", 0, (1 << 64) - 1),
            client=_address(value.get("c"), "receipt client"),
            signature=signature,
        )


def _receipts(header: Mapping[str, Any]) -> tuple[SignedReceipt, ...]:
    if "r" not in header:
        return ()
    return tuple(SignedReceipt.from_wire(r) for r in _list(header, "r", "receipts", MAX_RECEIPTS_PER_FRAME))


# --- messages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Open:
    session_id: str
    route: tuple[Hop, ...]
    hop_index: int  # which entry of ``route`` the receiver is
    model_id: bytes  # bytes32 model id (protocol.manifest); all zeros = not checked
    max_length: int  # tokens (prompt + generated) the session may reach
    sampling: SamplingParams = field(default_factory=SamplingParams)
    compression: Compression = "none"
    payment: PaymentTerms | None = None
    receipt_every: int = 32  # steps per signed receipt (and one more at close)
    client_peer: str = ""  # the client's libp2p peer id: the only peer the last hop lets ATTACH

    kind = Kind.OPEN

    def encode(self) -> bytes:
        header: dict[str, Any] = {
            "s": self.session_id,
            "rt": [h.to_wire() for h in self.route],
            "hi": self.hop_index,
            "m": self.model_id,
            "ml": self.max_length,
            "sp": self.sampling.to_dict(),
            "cp": self.compression,
            "re": self.receipt_every,
            "cl": self.client_peer,
        }
        if self.payment is not None:
            header["pay"] = self.payment.to_wire()
        return encode_frame(self.kind, header)

    def next_hop(self) -> Open:
        """The same open, addressed to the following hop."""
        return Open(
            self.session_id,
            self.route,
            self.hop_index + 1,
            self.model_id,
            self.max_length,
            self.sampling,
            self.compression,
            self.payment,
            self.receipt_every,
            self.client_peer,
        )

    @property
    def hop(self) -> Hop:
        return self.route[self.hop_index]

    @property
    def is_last(self) -> bool:
        return self.hop_index == len(self.route) - 1

    @classmethod
    def from_frame(cls, frame: Frame) -> Open:
        h = frame.header
        route = tuple(Hop.from_wire(x) for x in _list(h, "rt", "route", MAX_ROUTE_HOPS))
        if not route:
            raise FrameError("route has no hops")
        for before, after in itertools.pairwise(route):
            if after.layer_start != before.layer_end:
                raise FrameError(
                    f"route is not contiguous: layers end at {before.layer_end}, "
                    f"next hop starts at {after.layer_start}"
                )
        if route[0].layer_start != 0:
            raise FrameError("route must start at layer 0")
        compression = _str(h, "cp", "compression", 8)
        if compression not in COMPRESSIONS:
            raise FrameError(f"compression {compression!r} is not one of {', '.join(COMPRESSIONS)}")
        payment = PaymentTerms.from_wire(h["pay"]) if "pay" in h else None
        return cls(
            session_id=_session_id(h),
            route=route,
            hop_index=_int(h, "hi", "hop index", 0, len(route) - 1),
            model_id=_bytes32(h.get("m"), "model id"),
            max_length=_int(h, "ml", "max_length", 1, MAX_SESSION_LENGTH),
            sampling=_sampling(h.get("sp")),
            compression=compression,
            payment=payment,
            receipt_every=_int(h, "re", "receipt_every", 1, 1 << 20),
            client_peer=_str(h, "cl", "client peer id", 128) if "cl" in h else "",
        )


@dataclass(frozen=True)
class Opened:
    session_id: str
    operators: tuple[str, ...] = ()  # each hop's operator address, first hop first

    kind = Kind.OPENED

    def encode(self) -> bytes:
        return encode_frame(self.kind, {"s": self.session_id, "op": list(self.operators)})

    @classmethod
    def from_frame(cls, frame: Frame) -> Opened:
        ops = _list(frame.header, "op", "operators", MAX_ROUTE_HOPS)
        return cls(_session_id(frame.header), tuple(_address(o, "operator") for o in ops))


@dataclass(frozen=True)
class _SessionOnly:
    session_id: str

    kind = Kind.KEEPALIVE

    def encode(self) -> bytes:
        return encode_frame(self.kind, {"s": self.session_id})

    @classmethod
    def from_frame(cls: type[_S], frame: Frame) -> _S:
        return cls(_session_id(frame.header))


_S = TypeVar("_S", bound=_SessionOnly)


@dataclass(frozen=True)
class Attach(_SessionOnly):
    kind = Kind.ATTACH


@dataclass(frozen=True)
class Attached(_SessionOnly):
    kind = Kind.ATTACHED


@dataclass(frozen=True)
class Cancel(_SessionOnly):
    kind = Kind.CANCEL


@dataclass(frozen=True)
class KeepAlive(_SessionOnly):
    kind = Kind.KEEPALIVE


@dataclass(frozen=True)
class Close:
    session_id: str
    receipts: tuple[SignedReceipt, ...] = ()  # final receipts of the hops already passed

    kind = Kind.CLOSE

    def encode(self) -> bytes:
        return encode_frame(self.kind, {"s": self.session_id, "r": [r.to_wire() for r in self.receipts]})

    @classmethod
    def from_frame(cls, frame: Frame) -> Close:
        return cls(_session_id(frame.header), _receipts(frame.header))


@dataclass(frozen=True)
class Closed:
    session_id: str
    receipts: tuple[SignedReceipt, ...] = ()

    kind = Kind.CLOSED

    def encode(self) -> bytes:
        return encode_frame(self.kind, {"s": self.session_id, "r": [r.to_wire() for r in self.receipts]})

    @classmethod
    def from_frame(cls, frame: Frame) -> Closed:
        return cls(_session_id(frame.header), _receipts(frame.header))


@dataclass(frozen=True)
class Step:
    """One step of a session: ``T`` new positions starting at ``position``.

    To the first hop ``tensor`` is int64 token ids ``(T,)``; between hops it is hidden states
    ``(T, hidden)`` in the session's compression. ``payload`` holds the encoded bytes.
    """

    session_id: str
    step: int  # 0, 1, 2, ... per session; a hop rejects a gap or a repeat
    position: int  # index of the first of the T positions in the sequence
    tensor: TensorMeta
    payload: bytes = field(repr=False)
    receipts: tuple[SignedReceipt, ...] = ()

    kind = Kind.STEP

    @classmethod
    def with_tokens(cls, session_id: str, step: int, position: int, token_ids: Sequence[int]) -> Step:
        ids = np.asarray(token_ids, dtype="<i8")
        if ids.ndim != 1:
            raise FrameError("token ids must be one-dimensional")
        return cls(session_id, step, position, TensorMeta("int64", ids.shape), ids.tobytes())

    @classmethod
    def with_hidden(
        cls,
        session_id: str,
        step: int,
        position: int,
        hidden: npt.NDArray[Any],
        compression: Compression,
        receipts: tuple[SignedReceipt, ...] = (),
    ) -> Step:
        meta, payload = compress(hidden, compression)
        return cls(session_id, step, position, meta, payload, receipts)

    @property
    def positions(self) -> int:
        return self.tensor.shape[0]

    def token_ids(self) -> npt.NDArray[np.int64]:
        if self.tensor.dtype != "int64" or len(self.tensor.shape) != 1:
            raise FrameError(f"expected int64 token ids (T,), got {self.tensor.dtype} {self.tensor.shape}")
        return np.frombuffer(self.payload, dtype="<i8")

    def hidden(self) -> npt.NDArray[np.float32]:
        if len(self.tensor.shape) != 2 or self.tensor.dtype == "int64":
            raise FrameError(
                f"expected hidden states (T, hidden), got {self.tensor.dtype} {self.tensor.shape}"
            )
        return decompress(self.tensor, self.payload)

    def encode(self) -> bytes:
        header: dict[str, Any] = {"s": self.session_id, "n": self.step, "pos": self.position}
        if self.receipts:
            header["r"] = [r.to_wire() for r in self.receipts]
        return encode_frame(self.kind, header, tensor=self.tensor, payload=self.payload)

    @classmethod
    def from_frame(cls, frame: Frame) -> Step:
        if frame.tensor is None:
            raise FrameError("a step frame must carry a tensor")
        if frame.tensor.shape[0] == 0 or frame.tensor.shape[0] > MAX_SESSION_LENGTH:
            raise FrameError(f"a step must carry 1..{MAX_SESSION_LENGTH} positions")
        return cls(
            session_id=_session_id(frame.header),
            step=_int(frame.header, "n", "step", 0, (1 << 32) - 1),
            position=_int(frame.header, "pos", "position", 0, MAX_SESSION_LENGTH),
            tensor=frame.tensor,
            payload=frame.payload,
            receipts=_receipts(frame.header),
        )


@dataclass(frozen=True)
class Tokens:
    session_id: str
    step: int
    tokens: tuple[int, ...]
    finished: bool = False  # the last hop hit a stop token, max_new_tokens or max_length
    receipts: tuple[SignedReceipt, ...] = ()

    kind = Kind.TOKENS

    def encode(self) -> bytes:
        header: dict[str, Any] = {
            "s": self.session_id,
            "n": self.step,
            "t": list(self.tokens),
            "f": self.finished,
        }
        if self.receipts:
            header["r"] = [r.to_wire() for r in self.receipts]
        return encode_frame(self.kind, header)

    @classmethod
    def from_frame(cls, frame: Frame) -> Tokens:
        tokens = _list(frame.header, "t", "tokens", MAX_TOKENS_PER_FRAME)
        if not all(type(t) is int and 0 <= t < 1 << 31 for t in tokens):
            raise FrameError("tokens must be non-negative ints")
        return cls(
            session_id=_session_id(frame.header),
            step=_int(frame.header, "n", "step", 0, (1 << 32) - 1),
            tokens=tuple(tokens),
            finished=bool(_get(frame.header, "f", bool, "finished")),
            receipts=_receipts(frame.header),
        )


@dataclass(frozen=True)
class Error:
    code: ErrorCode
    message: str
    session_id: str | None = None
    hop_index: int | None = None  # the hop that raised it (None: the receiver could not tell)

    kind = Kind.ERROR

    def encode(self) -> bytes:
        header: dict[str, Any] = {"c": int(self.code), "msg": self.message[:1024]}
        if self.session_id is not None:
            header["s"] = self.session_id
        if self.hop_index is not None:
            header["hi"] = self.hop_index
        return encode_frame(self.kind, header)

    def exception(self) -> StageError | TransientStageError:
        """The client-side exception for this frame, transient or permanent by code."""
        cls = TransientStageError if self.code.is_transient else StageError
        return cls(self.code, self.message, self.hop_index)

    @classmethod
    def from_frame(cls, frame: Frame) -> Error:
        code = _int(frame.header, "c", "error code", 1, 255)
        try:
            error_code = ErrorCode(code)
        except ValueError:
            error_code = ErrorCode.INTERNAL
        return cls(
            code=error_code,
            message=_str(frame.header, "msg", "error message", 1024),
            session_id=_session_id(frame.header) if "s" in frame.header else None,
            hop_index=_int(frame.header, "hi", "hop index", 0, MAX_ROUTE_HOPS)
            if "hi" in frame.header
            else None,
        )


Message = Open | Opened | Attach | Attached | Step | Tokens | Error | Close | Closed | Cancel | KeepAlive

_BY_KIND: dict[int, Any] = {
    Kind.OPEN: Open,
    Kind.OPENED: Opened,
    Kind.ATTACH: Attach,
    Kind.ATTACHED: Attached,
    Kind.STEP: Step,
    Kind.TOKENS: Tokens,
    Kind.ERROR: Error,
    Kind.CLOSE: Close,
    Kind.CLOSED: Closed,
    Kind.CANCEL: Cancel,
    Kind.KEEPALIVE: KeepAlive,
}


def parse(frame: Frame) -> Message:
    """The typed message of a decoded frame (``FrameError`` for an unknown kind or a bad field)."""
    cls = _BY_KIND.get(frame.kind)
    if cls is None:
        raise FrameError(f"unknown message kind {frame.kind}")
    message: Message = cls.from_frame(frame)
    return message


__all__ = [
    "MAX_ROUTE_HOPS",
    "PROTOCOL_ID",
    "Attach",
    "Attached",
    "Cancel",
    "Close",
    "Closed",
    "Error",
    "ErrorCode",
    "Hop",
    "KeepAlive",
    "Kind",
    "Message",
    "Open",
    "Opened",
    "PaymentTerms",
    "SignedReceipt",
    "StageError",
    "Step",
    "Tokens",
    "TransientStageError",
    "parse",
]
