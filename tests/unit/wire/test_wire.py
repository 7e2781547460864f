"""Frames: round trips, and every limit enforced before allocation."""

from __future__ import annotations

import struct
import tracemalloc

import msgpack
import numpy as np
import pytest

from protocol.wire import (
    DTYPES,
    FrameDecoder,
    FrameError,
    Limits,
    TensorMeta,
    decode_frame,
    encode_frame,
    parse_length,
)


def _body(header: dict[str, object], payload: bytes = b"") -> bytes:
    packed = msgpack.packb(header, use_bin_type=True)
    return struct.pack(">H", len(packed)) + packed + payload


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "int32", "int8", "uint8"])
def test_tensor_round_trips_bit_exactly(dtype: str) -> None:
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    frame = decode_frame(encode_frame(5, {"s": "x"}, array)[4:])
    assert frame.kind == 5
    assert frame.header == {"s": "x"}
    assert frame.tensor == TensorMeta(dtype, (2, 3, 4))
    np.testing.assert_array_equal(frame.array(), array)


def test_frame_without_tensor_has_empty_payload() -> None:
    frame = decode_frame(encode_frame(8, {"s": "ab", "n": 3})[4:])
    assert (frame.kind, dict(frame.header), frame.tensor, frame.payload) == (
        8,
        {"s": "ab", "n": 3},
        None,
        b"",
    )


def test_decoder_reassembles_frames_split_at_every_byte() -> None:
    stream = encode_frame(1, {"a": 1}) + encode_frame(2, {}, np.ones(3, np.float32)) + encode_frame(3, {})
    decoder = FrameDecoder()
    kinds = [f.kind for i in range(len(stream)) for f in decoder.feed(stream[i : i + 1])]
    assert kinds == [1, 2, 3]


def test_length_prefix_over_limit_is_rejected_before_reading_the_body() -> None:
    with pytest.raises(FrameError, match="exceeds the limit"):
        parse_length(struct.pack(">I", 0xFFFFFFFF))
    with pytest.raises(FrameError, match="shorter"):
        parse_length(struct.pack(">I", 1))


def test_header_over_limit_is_rejected() -> None:
    with pytest.raises(FrameError, match="header of"):
        decode_frame(_body({"k": 1, "pad": "x" * 200}), Limits(max_header_bytes=100))


@pytest.mark.parametrize(
    ("descriptor", "match"),
    [
        ({"dt": "complex128", "sh": [1]}, "dtype"),
        ({"dt": "float32", "sh": []}, "shape"),
        ({"dt": "float32", "sh": [1, 1, 1, 1, 1]}, "shape"),
        ({"dt": "float32", "sh": [-1]}, "dimension"),
        ({"dt": "float32", "sh": [1.5]}, "dimension"),
        ({"dt": "float32", "sh": [True]}, "dimension"),
        ({"dt": "float32", "sh": [1 << 20, 1 << 20]}, "elements"),
        ({"dt": "float32", "sh": [2], "en": "zstd"}, "encoding"),
        ({"dt": "float32", "sh": [2, 2], "en": "int8row"}, "int8row"),
        ("float32", "map"),
    ],
)
def test_bad_tensor_descriptor_is_a_frame_error(descriptor: object, match: str) -> None:
    with pytest.raises(FrameError, match=match):
        decode_frame(_body({"k": 5, "x": descriptor}, b"\0" * 8))


def test_payload_size_must_match_the_shape_exactly() -> None:
    with pytest.raises(FrameError, match="needs 8"):
        decode_frame(_body({"k": 5, "x": {"dt": "float32", "sh": [2]}}, b"\0" * 7))
    with pytest.raises(FrameError, match="no tensor descriptor"):
        decode_frame(_body({"k": 5}, b"\0"))


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01\xc1",  # reserved msgpack byte
        b"\x00\x01\x01",  # an int, not a map
        b"\x00\x05\x81\x01\x01\x00\x00",  # int map key
        b"\x00\x03\x81\xa1k",  # truncated map
        _body({"k": "open"}),
        _body({"k": 300}),
        _body({}),
        b"\x00\x09",  # header length past the end
    ],
)
def test_malformed_header_is_a_frame_error(raw: bytes) -> None:
    with pytest.raises(FrameError):
        decode_frame(raw)


def test_huge_claims_allocate_nothing_large() -> None:
    hostile = [
        _body({"k": 5, "x": {"dt": "float32", "sh": [1 << 24, 1 << 24]}}),
        b"\x00\x10\xdd\xff\xff\xff\xff",  # msgpack array32 claiming 4G items
        b"\x00\x10\xdb\xff\xff\xff\xff",  # str32 claiming 4 GB
        b"\x00\x10\xc6\xff\xff\xff\xff",  # bin32 claiming 4 GB
    ]
    tracemalloc.start()
    try:
        for raw in hostile:
            with pytest.raises(FrameError):
                decode_frame(raw)
        decoder = FrameDecoder()
        with pytest.raises(FrameError):
            decoder.feed(struct.pack(">I", 0xFFFFFFF0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_every_whitelisted_dtype_has_a_positive_itemsize() -> None:
    assert all(size in (1, 2, 4, 8) for _, size in DTYPES.values())


def test_numpy_dtype_outside_the_whitelist_cannot_be_encoded() -> None:
    with pytest.raises(FrameError, match="cannot travel"):
        encode_frame(5, {}, np.zeros(2, np.complex64))
