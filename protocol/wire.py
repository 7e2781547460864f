"""Length-prefixed binary frames: a small typed msgpack header and raw tensor bytes. Never pickle.

One frame on a stream::

    u32 big-endian  body length (bytes that follow)
    u16 big-endian  header length
    header          msgpack map with str keys; "k" is the message kind (int), "x" the tensor descriptor
    payload         raw little-endian tensor bytes (empty when the frame carries no tensor)

The tensor descriptor is ``{"dt": dtype, "sh": [d0, d1, ...], "en": encoding}``. Encodings:

- ``"raw"``: ``prod(shape) * itemsize(dtype)`` bytes.
- ``"int8row"``: dtype ``int8``, a 2-D shape ``(rows, cols)``, ``rows * cols`` int8 values followed by
  ``rows`` float32 scales (one per row; see :mod:`protocol.compression`).

Everything is checked before anything is allocated: the body length against ``Limits.max_frame_bytes``,
the header length against ``Limits.max_header_bytes`` (and msgpack decoding is bounded by the same caps),
the dtype against a whitelist, the rank, each dimension, the element count and the exact payload size.
Any violation raises :class:`FrameError` (a ``PermanentError``) naming what was wrong; a stream that ends
raises :class:`StreamClosed` (a ``TransientError``)::

    body = encode_frame(5, {"s": "ab"}, np.zeros((2, 4), np.float32))
    frame = decode_frame(body[4:])
    frame.kind, frame.tensor.shape          # (5, (2, 4))
    frame.array().dtype                     # dtype('float32')
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack
import numpy as np
import numpy.typing as npt

from protocol.errors import PermanentError, TransientError

_LENGTH = struct.Struct(">I")
_HEADER_LENGTH = struct.Struct(">H")

# dtype name -> (numpy storage dtype, itemsize). bfloat16 has no numpy dtype: it travels and is stored
# as uint16 bit patterns, and protocol.compression converts it; torch reads it directly.
DTYPES: dict[str, tuple[str, int]] = {
    "float32": ("<f4", 4),
    "float16": ("<f2", 2),
    "bfloat16": ("<u2", 2),
    "int64": ("<i8", 8),
    "int32": ("<i4", 4),
    "int8": ("i1", 1),
    "uint8": ("u1", 1),
}
ENCODINGS = ("raw", "int8row")


class FrameError(PermanentError):
    """A frame that breaks the wire format or its limits; the message says which rule."""


@dataclass(frozen=True)
class Limits:
    """Hard caps applied before any allocation. The defaults fit a 8k-token prefill of hidden 8192 fp16."""

    max_frame_bytes: int = 160 * 1024 * 1024  # whole body, header included
    max_header_bytes: int = 60 * 1024  # msgpack header (fits in the u16 length)
    max_tensor_elements: int = 80 * 1024 * 1024
    max_dims: int = 4
    max_header_items: int = 256  # entries in any msgpack map or array inside the header


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class TensorMeta:
    """What a frame's payload holds: dtype name, shape and encoding (validated)."""

    dtype: str
    shape: tuple[int, ...]
    encoding: str = "raw"

    @property
    def elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Payload bytes this descriptor requires."""
        size = self.elements * DTYPES[self.dtype][1]
        if self.encoding == "int8row":
            size += self.shape[0] * 4
        return size

    def to_header(self) -> dict[str, Any]:
        return {"dt": self.dtype, "sh": list(self.shape), "en": self.encoding}

    @classmethod
    def from_header(cls, value: object, limits: Limits = DEFAULT_LIMITS) -> TensorMeta:
        if not isinstance(value, dict):
            raise FrameError("tensor descriptor 'x' must be a map")
        dtype, shape, encoding = value.get("dt"), value.get("sh"), value.get("en", "raw")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise FrameError(f"tensor dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        if not isinstance(encoding, str) or encoding not in ENCODINGS:
            raise FrameError(f"tensor encoding {encoding!r} is not one of {', '.join(ENCODINGS)}")
        if not isinstance(shape, list) or not 1 <= len(shape) <= limits.max_dims:
            raise FrameError(f"tensor shape must be a list of 1..{limits.max_dims} dimensions")
        dims: list[int] = []
        elements = 1
        for d in shape:
            if type(d) is not int or d < 0 or d > limits.max_tensor_elements:
                raise FrameError(f"tensor dimension {d!r} is not an int in 0..{limits.max_tensor_elements}")
            elements *= d
            if elements > limits.max_tensor_elements:
                raise FrameError(f"tensor has more than {limits.max_tensor_elements} elements")
            dims.append(d)
        if encoding == "int8row" and (dtype != "int8" or len(dims) != 2):
            raise FrameError("int8row encoding needs dtype int8 and a 2-D shape")
        return cls(dtype, tuple(dims), encoding)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its kind, the rest of its header, and an optional tensor."""

    kind: int
    header: Mapping[str, Any]
    tensor: TensorMeta | None = None
    payload: bytes = field(default=b"", repr=False)

    def array(self) -> npt.NDArray[Any]:
        """The payload as a read-only numpy array of ``tensor.shape`` (raw encoding only)."""
        if self.tensor is None:
            raise FrameError("frame carries no tensor")
        if self.tensor.encoding != "raw":
            raise FrameError(f"tensor is {self.tensor.encoding}-encoded; decode it with protocol.compression")
        storage = np.dtype(DTYPES[self.tensor.dtype][0])
        return np.frombuffer(self.payload, dtype=storage).reshape(self.tensor.shape)


def dtype_name(array: npt.NDArray[Any]) -> str:
    """The wire dtype name of a numpy array (``FrameError`` for dtypes the wire does not carry)."""
    for name, (storage, _) in DTYPES.items():
        if name != "bfloat16" and np.dtype(storage) == array.dtype.newbyteorder("<"):
            return name
    raise FrameError(f"numpy dtype {array.dtype} cannot travel on the wire")


def encode_frame(
    kind: int,
    header: Mapping[str, Any],
    array: npt.NDArray[Any] | None = None,
    *,
    tensor: TensorMeta | None = None,
    payload: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes:
    """A whole frame (length prefix included) for ``kind``, ``header`` and an optional tensor.

    Pass either a numpy ``array`` (raw encoding; its dtype names the wire dtype) or a prepared
    ``tensor`` descriptor with its ``payload`` (bfloat16 bit patterns, int8row).
    """
    fields = dict(header)
    fields["k"] = kind
    body_payload = b""
    if array is not None:
        meta = TensorMeta(dtype_name(array), tuple(int(d) for d in array.shape))
        fields["x"] = meta.to_header()
        body_payload = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    elif tensor is not None:
        body_payload = payload if payload is not None else b""
        if len(body_payload) != tensor.nbytes:
            raise FrameError(f"payload is {len(body_payload)} bytes; {tensor} needs {tensor.nbytes}")
        fields["x"] = tensor.to_header()
    packed = msgpack.packb(fields, use_bin_type=True)
    if len(packed) > limits.max_header_bytes:
        raise FrameError(f"header is {len(packed)} bytes; the limit is {limits.max_header_bytes}")
    body_len = _HEADER_LENGTH.size + len(packed) + len(body_payload)
    if body_len > limits.max_frame_bytes:
        raise FrameError(f"frame is {body_len} bytes; the limit is {limits.max_frame_bytes}")
    return b"".join((_LENGTH.pack(body_len), _HEADER_LENGTH.pack(len(packed)), packed, body_payload))


def parse_length(prefix: bytes, limits: Limits = DEFAULT_LIMITS) -> int:
    """The body length announced by a 4-byte prefix, checked against the limits."""
    if len(prefix) != _LENGTH.size:
        raise FrameError("length prefix must be 4 bytes")
    (length,) = _LENGTH.unpack(prefix)
    if length < _HEADER_LENGTH.size:
        raise FrameError(f"frame body of {length} bytes is shorter than its header length field")
    if length > limits.max_frame_bytes:
        raise FrameError(f"frame body of {length} bytes exceeds the limit of {limits.max_frame_bytes}")
    return int(length)


def _unpack_header(raw: bytes, limits: Limits) -> dict[str, Any]:
    try:
        header = msgpack.unpackb(
            raw,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=limits.max_header_bytes,
            max_bin_len=limits.max_header_bytes,
            max_array_len=limits.max_header_items,
            max_map_len=limits.max_header_items,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise FrameError(f"header is not valid msgpack: {exc}") from None
    except Exception as exc:  # msgpack raises a few other types on hostile input (e.g. UnicodeDecodeError)
        raise FrameError(f"header is not valid msgpack: {type(exc).__name__}") from None
    if not isinstance(header, dict):
        raise FrameError("header must be a msgpack map")
    return header


def decode_frame(body: bytes, limits: Limits = DEFAULT_LIMITS) -> Frame:
    """Decode one frame body (the bytes after the length prefix)."""
    if len(body) > limits.max_frame_bytes:
        raise FrameError(f"frame body of {len(body)} bytes exceeds the limit of {limits.max_frame_bytes}")
    if len(body) < _HEADER_LENGTH.size:
        raise FrameError("frame body is shorter than its header length field")
    (header_len,) = _HEADER_LENGTH.unpack_from(body)
    if header_len > limits.max_header_bytes:
        raise FrameError(f"header of {header_len} bytes exceeds the limit of {limits.max_header_bytes}")
    end = _HEADER_LENGTH.size + header_len
    if end > len(body):
        raise FrameError("header length runs past the end of the frame")
    header = _unpack_header(bytes(body[_HEADER_LENGTH.size : end]), limits)
    kind = header.pop("k", None)
    if type(kind) is not int or not 0 <= kind < 256:
        raise FrameError(f"frame kind {kind!r} is not an int in 0..255")
    payload = bytes(body[end:])
    meta: TensorMeta | None = None
    if "x" in header:
        meta = TensorMeta.from_header(header.pop("x"), limits)
        if len(payload) != meta.nbytes:
            raise FrameError(f"payload is {len(payload)} bytes; tensor {meta.shape} needs {meta.nbytes}")
    elif payload:
        raise FrameError(f"frame has {len(payload)} payload bytes but no tensor descriptor")
    return Frame(kind, header, meta, payload)


class FrameDecoder:
    """Incremental decoder for bytes arriving in arbitrary chunks; buffers at most one frame."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._need: int | None = None

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by ``data`` (``FrameError`` on the first bad one; the decoder is then done)."""
        self._buffer += data
        frames: list[Frame] = []
        while True:
            if self._need is None:
                if len(self._buffer) < _LENGTH.size:
                    return frames
                self._need = parse_length(bytes(self._buffer[: _LENGTH.size]), self._limits)
                del self._buffer[: _LENGTH.size]
            if len(self._buffer) < self._need:
                return frames
            body = bytes(self._buffer[: self._need])
            del self._buffer[: self._need]
            self._need = None
            frames.append(decode_frame(body, self._limits))


class ByteStream(Protocol):
    """What :func:`read_frame` and :func:`write_frame` need: a libp2p stream satisfies it."""

    async def read(self, n: int | None = None) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


class StreamClosed(TransientError):
    """The stream ended (cleanly between frames, or in the middle of one): the peer went away."""


async def _read_exactly(stream: ByteStream, n: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < n:
        chunk = await stream.read(n - got)
        if not chunk:
            raise StreamClosed(f"stream ended after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_frame(stream: ByteStream, limits: Limits = DEFAULT_LIMITS) -> Frame:
    """Read and decode one frame; the length is checked before the body is read or allocated."""
    length = parse_length(await _read_exactly(stream, _LENGTH.size), limits)
    return decode_frame(await _read_exactly(stream, length), limits)


async def write_frame(stream: ByteStream, frame_bytes: bytes) -> None:
    """Write one encoded frame (from :func:`encode_frame`)."""
    await stream.write(frame_bytes)


__all__ = [
    "DEFAULT_LIMITS",
    "DTYPES",
    "ENCODINGS",
    "ByteStream",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "Limits",
    "StreamClosed",
    "TensorMeta",
    "decode_frame",
    "dtype_name",
    "encode_frame",
    "parse_length",
    "read_frame",
    "write_frame",
]
