"""Hypothesis fuzzing of the frame parser: no crash, no hang, no unbounded allocation.

Frames per run: 750 x 4 structured random headers + 3,000 x 3 bit-flipped valid frames + 2,000 random
byte streams = 14,000 frames through ``decode_frame``/``FrameDecoder`` and, where they decode, ``parse``.
Allocation is bounded by construction (``LIMITS`` caps every size below 64 KiB); a hang would trip the
pytest timeout.
"""

from __future__ import annotations

import contextlib
import itertools
import struct

import msgpack
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.messages import parse
from protocol.wire import FrameDecoder, FrameError, Limits, decode_frame, encode_frame

LIMITS = Limits(max_frame_bytes=1 << 16, max_header_bytes=4096, max_tensor_elements=1 << 14)


def _fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(),
    st.text(max_size=40),
    st.binary(max_size=40),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=4), inner, max_size=6)
    ),
    max_leaves=6,
)
_keys = st.sampled_from(
    ["k", "x", "s", "n", "pos", "r", "t", "f", "c", "msg", "rt", "hi", "m", "ml", "sp", "cp"]
)
_descriptor = st.fixed_dictionaries(
    {"dt": st.one_of(st.sampled_from(["float32", "int64", "int8", "bfloat16", "bad"]), _scalars)},
    optional={"sh": st.one_of(st.lists(st.integers(-3, 1 << 33), max_size=6), _values), "en": _values},
)
_headers = st.dictionaries(st.one_of(_keys, st.text(max_size=4)), st.one_of(_values, _descriptor), max_size=8)


def _body(header: dict[object, object], payload: bytes) -> bytes:
    packed = msgpack.packb(header, use_bin_type=True)
    return struct.pack(">H", len(packed) & 0xFFFF) + packed + payload


def _must_not_crash(body: bytes) -> None:
    try:
        frame = decode_frame(body, LIMITS)
    except FrameError:
        return
    assert len(frame.payload) <= LIMITS.max_frame_bytes
    with contextlib.suppress(FrameError):
        parse(frame)


@_fuzz(750)
@given(
    frames=st.lists(st.tuples(_headers, st.binary(max_size=64), st.integers(-5, 300)), min_size=4, max_size=4)
)
def test_structured_random_headers_never_crash_the_parser(
    frames: list[tuple[dict[object, object], bytes, int]],
) -> None:
    for header, payload, kind in frames:
        fields = dict(header)
        fields.setdefault("k", kind)
        _must_not_crash(_body(fields, payload))


@_fuzz(2_000)
@given(data=st.binary(max_size=512), cuts=st.lists(st.integers(0, 512), max_size=8))
def test_random_byte_streams_in_random_chunks_never_crash_the_decoder(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(LIMITS)
    points = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    try:
        for a, b in itertools.pairwise(points):
            decoder.feed(data[a:b])
    except FrameError:
        pass


_VALID = [
    encode_frame(5, {"s": "0" * 32, "n": 0, "pos": 0}, np.arange(4, dtype=np.int64)),
    encode_frame(6, {"s": "0" * 32, "n": 1, "t": [1, 2], "f": False}),
    encode_frame(7, {"c": 3, "msg": "x"}),
]


@_fuzz(3_000)
@given(flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=6))
def test_bit_flipped_valid_frames_never_crash_the_parser(flips: list[tuple[int, int]]) -> None:
    for valid in _VALID:
        raw = bytearray(valid[4:])
        for at, value in flips:
            raw[at % len(raw)] = value
        _must_not_crash(bytes(raw))
