"""Stage protocol messages: round trips, and field validation that names what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from protocol.compression import compress, decompress
from protocol.messages import (
    Close,
    Error,
    ErrorCode,
    Hop,
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
from protocol.sampling import SamplingParams
from protocol.wire import FrameError, decode_frame, encode_frame

SID = "0123456789abcdef0123456789abcdef"
ROUTE = (Hop("peerA", ("/ip4/127.0.0.1/tcp/1",), 0, 4), Hop("peerB", ("/ip4/127.0.0.1/tcp/2",), 4, 8))


def _round_trip(message: object) -> object:
    return parse(decode_frame(message.encode()[4:]))  # type: ignore[attr-defined]


def _receipt() -> SignedReceipt:
    return SignedReceipt(
        "0x" + "11" * 20,
        b"\1" * 32,
        b"\2" * 32,
        0,
        4,
        0,
        3,
        b"\3" * 32,
        b"\4" * 32,
        7,
        5,
        "0x" + "22" * 20,
        b"\5" * 65,
    )


def test_open_round_trips_and_addresses_the_next_hop() -> None:
    message = Open(
        SID, ROUTE, 0, b"\0" * 32, 64, SamplingParams(seed=3), "bf16", PaymentTerms("0x" + "ab" * 20, 10), 16
    )
    assert _round_trip(message) == message
    assert message.next_hop().hop_index == 1 and message.next_hop().is_last


def test_hop_prices_travel_with_the_route_and_stay_optional() -> None:
    priced = (Hop("peerA", (), 0, 4, 1_000), Hop("peerB", (), 4, 8, 1_500))
    parsed = _round_trip(Open(SID, priced, 0, b"\0" * 32, 64))
    assert isinstance(parsed, Open) and [h.price_per_token for h in parsed.route] == [1_000, 1_500]
    unpriced = _round_trip(Open(SID, ROUTE, 0, b"\0" * 32, 64))
    assert isinstance(unpriced, Open) and [h.price_per_token for h in unpriced.route] == [None, None]
    bad = Open(SID, priced, 0, b"\0" * 32, 64).encode()
    frame = decode_frame(bad[4:])
    header = dict(frame.header)
    header["rt"] = [{**hop, "pp": -1} for hop in header["rt"]]
    with pytest.raises(FrameError, match="hop price"):
        parse(decode_frame(encode_frame(1, header)[4:]))


def test_step_tokens_close_and_error_round_trip() -> None:
    step = Step.with_tokens(SID, 0, 0, [1, 2, 3])
    parsed = _round_trip(step)
    assert isinstance(parsed, Step) and parsed.token_ids().tolist() == [1, 2, 3]
    tokens = Tokens(SID, 2, (9,), True, (_receipt(),))
    assert _round_trip(tokens) == tokens
    assert _round_trip(Close(SID, (_receipt(),))) == Close(SID, (_receipt(),))
    assert _round_trip(Opened(SID, ("0x" + "33" * 20,))) == Opened(SID, ("0x" + "33" * 20,))
    assert _round_trip(Error(ErrorCode.CAPACITY, "full", SID, 1)) == Error(ErrorCode.CAPACITY, "full", SID, 1)


def test_error_codes_map_to_transient_or_permanent_exceptions() -> None:
    assert isinstance(Error(ErrorCode.HOP_FAILED, "gone").exception(), TransientStageError)
    assert isinstance(Error(ErrorCode.WRONG_LAYERS, "no").exception(), StageError)


def test_route_with_a_gap_between_hops_is_rejected() -> None:
    gap = (Hop("a", (), 0, 4), Hop("b", (), 5, 8))
    with pytest.raises(FrameError, match="contiguous"):
        _round_trip(Open(SID, gap, 0, b"\0" * 32, 64))


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ({"s": "XYZ", "op": []}, "session id"),
        ({"s": SID, "c": 1, "msg": 5}, "error message"),
        ({"s": SID, "rt": [], "hi": 0}, "route"),
    ],
)
def test_bad_fields_are_frame_errors(header: dict[str, object], match: str) -> None:
    kind = 7 if "c" in header else 2 if "op" in header else 1
    with pytest.raises(FrameError, match=match):
        parse(decode_frame(encode_frame(kind, header)[4:]))


def test_bad_sampling_parameters_are_a_frame_error() -> None:
    header = Open(SID, ROUTE, 0, b"\0" * 32, 64).encode()
    frame = decode_frame(header[4:])
    bad = dict(frame.header)
    bad["sp"] = {"top_p": 7.0}
    with pytest.raises(FrameError, match="sampling"):
        parse(decode_frame(encode_frame(1, bad)[4:]))


def test_step_without_a_tensor_is_rejected() -> None:
    with pytest.raises(FrameError, match="tensor"):
        parse(decode_frame(encode_frame(5, {"s": SID, "n": 0, "pos": 0})[4:]))


@pytest.mark.parametrize(
    ("mode", "tolerance"), [("none", 0.0), ("fp16", 1e-3), ("bf16", 1e-2), ("int8", 1e-2)]
)
def test_compression_round_trips_within_its_tolerance(mode: str, tolerance: float) -> None:
    hidden = np.random.default_rng(0).standard_normal((5, 64)).astype(np.float32)
    meta, payload = compress(hidden, mode)  # type: ignore[arg-type]
    step = _round_trip(Step(SID, 1, 4, meta, payload))
    assert isinstance(step, Step)
    restored = step.hidden()
    assert restored.shape == (5, 64)
    assert np.max(np.abs(restored - hidden) / (np.abs(hidden).max(axis=1, keepdims=True))) <= tolerance
    np.testing.assert_array_equal(decompress(meta, payload), restored)


def test_int8_compression_uses_about_a_quarter_of_the_bytes() -> None:
    _, payload = compress(np.ones((1, 1024), np.float32), "int8")
    assert len(payload) == 1024 + 4
