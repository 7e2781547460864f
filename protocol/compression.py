"""Activation compression between hops, negotiated per session: none, fp16, bf16, or int8 per-row scales.

Hidden states travel as float32 unless the session's open message names a compression. Each mode maps a
float32 array ``(T, hidden)`` to a tensor descriptor and payload, and back::

    meta, payload = compress(hidden, "int8")      # int8 values + one float32 scale per row
    restored = decompress(meta, payload)          # float32 (T, hidden), |error| <= scale / 2 per element

Trade-offs (bytes per token for hidden 1024): none 4096, fp16/bf16 2048, int8 1028. Lossy modes change
the numbers the next stage sees, so greedy tokens can differ from an uncompressed run; fingerprints in
receipts are computed by each stage on what it received, so validators must replay with the same mode.
numpy only: protocol never imports torch.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from protocol.wire import DTYPES, FrameError, TensorMeta

Compression = Literal["none", "fp16", "bf16", "int8"]
COMPRESSIONS: tuple[Compression, ...] = ("none", "fp16", "bf16", "int8")


def float32_to_bf16_bits(array: npt.NDArray[np.float32]) -> npt.NDArray[np.uint16]:
    """Round-to-nearest-even float32 -> bfloat16, as uint16 bit patterns (NaN stays NaN)."""
    bits = np.ascontiguousarray(array, dtype="<f4").view("<u4")
    rounded = bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
    out = (rounded >> np.uint32(16)).astype("<u2")
    nan = np.isnan(array)
    if nan.any():
        out[nan] = np.uint16(0x7FC0)
    return cast("npt.NDArray[np.uint16]", out)


def bf16_bits_to_float32(bits: npt.NDArray[np.uint16]) -> npt.NDArray[np.float32]:
    """Exact bfloat16 (uint16 bit patterns) -> float32."""
    return (bits.astype("<u4") << np.uint32(16)).view("<f4")


def compress(hidden: npt.NDArray[Any], mode: Compression) -> tuple[TensorMeta, bytes]:
    """Encode a float array ``(T, hidden)`` for the wire under ``mode``."""
    if mode == "none":
        array = np.ascontiguousarray(hidden, dtype="<f4")
        return TensorMeta("float32", array.shape), array.tobytes()
    if mode == "fp16":
        array16 = np.ascontiguousarray(hidden, dtype="<f2")
        return TensorMeta("float16", array16.shape), array16.tobytes()
    if mode == "bf16":
        bits = float32_to_bf16_bits(np.asarray(hidden, dtype=np.float32))
        return TensorMeta("bfloat16", bits.shape), bits.tobytes()
    if mode == "int8":
        rows = np.asarray(hidden, dtype=np.float32)
        if rows.ndim != 2:
            raise FrameError(f"int8 compression needs a 2-D (T, hidden) array, got shape {rows.shape}")
        # per-row absmax scale: value ~= q * scale, q in [-127, 127]
        scales = (np.abs(rows).max(axis=1) / 127.0).astype("<f4")
        safe = np.where(scales > 0, scales, np.float32(1.0))
        q = np.clip(np.rint(rows / safe[:, None]), -127, 127).astype("i1")
        return TensorMeta("int8", q.shape, "int8row"), q.tobytes() + scales.tobytes()
    raise FrameError(f"unknown compression {mode!r}; choose one of {', '.join(COMPRESSIONS)}")


def decompress(meta: TensorMeta, payload: bytes) -> npt.NDArray[np.float32]:
    """Decode a validated tensor (any float encoding) to float32 of the same shape."""
    if len(payload) != meta.nbytes:
        raise FrameError(f"payload is {len(payload)} bytes; {meta} needs {meta.nbytes}")
    if meta.encoding == "int8row":
        rows, cols = meta.shape
        q = np.frombuffer(payload, dtype="i1", count=rows * cols).reshape(rows, cols)
        scales = np.frombuffer(payload, dtype="<f4", offset=rows * cols, count=rows)
        return cast("npt.NDArray[np.float32]", (q.astype(np.float32) * scales[:, None]).astype(np.float32))
    storage = np.frombuffer(payload, dtype=DTYPES[meta.dtype][0]).reshape(meta.shape)
    if meta.dtype == "float32":
        return storage
    if meta.dtype == "float16":
        return storage.astype(np.float32)
    if meta.dtype == "bfloat16":
        return bf16_bits_to_float32(storage)
    raise FrameError(f"tensor of dtype {meta.dtype} is not a float activation")


__all__ = [
    "COMPRESSIONS",
    "Compression",
    "bf16_bits_to_float32",
    "compress",
    "decompress",
    "float32_to_bf16_bits",
]
