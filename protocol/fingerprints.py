"""Fingerprints: a compact commitment of a stage's output activations, and the test that decides whether a
re-computation matches it.

TOPLOC-style. For every window of ``N`` positions (absolute positions ``[w*N, (w+1)*N)``) a stage commits
to the ``k`` largest-magnitude entries of its output hidden states ``(N, H)``: their flat indices and their
values rounded to bfloat16. A node puts the commitment's 32-byte :meth:`Fingerprint.digest` in its receipt;
a validator re-runs the stage (one teacher-forced prefill), commits to the same windows, and calls
:func:`compare`::

    verdict = compare(expected=validator_fp, observed=node_fp)
    verdict.ok          # True: within the honest tolerance
    verdict.reason      # "" or e.g. "window 0 (positions 0..31): 12% of indices match (need >= 60%)"

The tolerances (:data:`DEFAULT_TOLERANCE`) and the measurements behind them are in docs/VERIFICATION.md.

Wire format (all integers little-endian)::

    b"LMFP" | version u8 | hidden_size u32 | n_windows u16 |
    n_windows x ( start u64 | length u16 | k u16 | k x index u32 (ascending) | k x bf16 value u16 )
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAGIC = b"LMFP"
VERSION = 1
_HEADER = struct.Struct("<4sBIH")
_WINDOW = struct.Struct("<QHH")
MAX_WINDOWS = 4096
MAX_K = 4096


class FingerprintFormatError(ValueError):
    """Bytes that are not a well-formed fingerprint."""


def bf16_bits(values: npt.NDArray[np.float32]) -> npt.NDArray[np.uint16]:
    """float32 -> bfloat16 bit patterns, rounding to nearest even (what torch's cast does)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_values(bits: npt.NDArray[np.uint16]) -> npt.NDArray[np.float32]:
    """bfloat16 bit patterns -> float32 (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


@dataclass(frozen=True, eq=False)
class WindowCommitment:
    """The top-``k`` entries of one window's ``(length, hidden_size)`` activations."""

    start: int  # absolute position of the window's first row
    length: int  # rows in the window
    indices: npt.NDArray[np.uint32]  # (k,) ascending flat indices into the (length, hidden_size) block
    values: npt.NDArray[np.uint16]  # (k,) bfloat16 bits of the entries at those indices

    @property
    def k(self) -> int:
        return int(self.indices.shape[0])

    def as_float(self) -> npt.NDArray[np.float32]:
        return bf16_values(self.values)


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """Commitments of one or more windows of one stage's output."""

    hidden_size: int
    windows: tuple[WindowCommitment, ...]

    def to_bytes(self) -> bytes:
        parts = [_HEADER.pack(MAGIC, VERSION, self.hidden_size, len(self.windows))]
        for w in self.windows:
            parts.append(_WINDOW.pack(w.start, w.length, w.k))
            parts.append(w.indices.astype("<u4").tobytes())
            parts.append(w.values.astype("<u2").tobytes())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        """Parse and check sizes before any allocation; malformed bytes raise FingerprintFormatError."""
        if len(data) < _HEADER.size:
            raise FingerprintFormatError(f"fingerprint too short: {len(data)} bytes")
        magic, version, hidden, n = _HEADER.unpack_from(data, 0)
        if magic != MAGIC or version != VERSION:
            raise FingerprintFormatError(f"not a version-{VERSION} fingerprint (magic {magic!r}, v{version})")
        if n > MAX_WINDOWS or hidden == 0:
            raise FingerprintFormatError(f"fingerprint with {n} windows of hidden size {hidden}")
        offset = _HEADER.size
        windows = []
        for _ in range(n):
            if len(data) < offset + _WINDOW.size:
                raise FingerprintFormatError("fingerprint truncated in a window header")
            start, length, k = _WINDOW.unpack_from(data, offset)
            offset += _WINDOW.size
            if k == 0 or k > MAX_K or k > length * hidden:
                raise FingerprintFormatError(f"window at {start}: k={k} for {length}x{hidden}")
            end = offset + 6 * k
            if len(data) < end:
                raise FingerprintFormatError(f"window at {start} truncated: needs {6 * k} bytes")
            indices = np.frombuffer(data, dtype="<u4", count=k, offset=offset).astype(np.uint32)
            values = np.frombuffer(data, dtype="<u2", count=k, offset=offset + 4 * k).astype(np.uint16)
            offset = end
            if np.any(indices >= length * hidden) or np.any(np.diff(indices.astype(np.int64)) <= 0):
                raise FingerprintFormatError(f"window at {start}: indices out of range or not ascending")
            windows.append(WindowCommitment(start=start, length=length, indices=indices, values=values))
        if offset != len(data):
            raise FingerprintFormatError(f"{len(data) - offset} trailing bytes after the fingerprint")
        return cls(hidden_size=hidden, windows=tuple(windows))

    def digest(self) -> bytes:
        """32 bytes for a receipt: SHA-256 of :meth:`to_bytes`."""
        return hashlib.sha256(self.to_bytes()).digest()

    def merge(self, other: Fingerprint) -> Fingerprint:
        """Both fingerprints' windows (same stage), ordered by position; a later duplicate window wins."""
        if other.hidden_size != self.hidden_size:
            raise ValueError("cannot merge fingerprints of different hidden sizes")
        by_start = {w.start: w for w in (*self.windows, *other.windows)}
        return Fingerprint(self.hidden_size, tuple(by_start[s] for s in sorted(by_start)))


@dataclass(frozen=True)
class Tolerance:
    """Thresholds of :func:`compare`; see docs/VERIFICATION.md for how they were calibrated."""

    min_overlap: float = 0.6
    """Fraction of the observed top-k indices that must also be in the expected top-k."""
    max_median_rel_err: float = 0.004
    """Median over shared indices of |observed - expected| / |expected|."""
    max_mean_rel_err: float = 0.008
    """Mean of the same relative errors (catches a heavy tail the median ignores)."""


DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True)
class WindowVerdict:
    start: int
    overlap: float
    median_rel_err: float
    mean_rel_err: float
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`compare`: ``ok`` and, when not, the first reason."""

    ok: bool
    windows: tuple[WindowVerdict, ...]
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def window_distance(expected: WindowCommitment, observed: WindowCommitment) -> tuple[float, float, float]:
    """(overlap, median relative error, mean relative error) of ``observed`` against ``expected``.

    ``expected`` may hold more entries than ``observed`` (a validator can commit to a larger k so that
    an honest node's top-k lies inside it even when near-ties reorder the boundary).
    """
    common, e_pos, o_pos = np.intersect1d(expected.indices, observed.indices, return_indices=True)
    overlap = float(common.shape[0]) / float(observed.k)
    if common.shape[0] == 0:
        return overlap, float("inf"), float("inf")
    e = expected.as_float()[e_pos].astype(np.float64)
    o = observed.as_float()[o_pos].astype(np.float64)
    rel = np.abs(o - e) / np.maximum(np.abs(e), 1e-30)
    return overlap, float(np.median(rel)), float(np.mean(rel))


def compare(
    expected: Fingerprint, observed: Fingerprint, tolerance: Tolerance = DEFAULT_TOLERANCE
) -> Verdict:
    """Does ``observed`` (a node's commitment) match ``expected`` (a validator's re-computation)?

    Every observed window must have an expected window at the same position; each must reach
    ``tolerance.min_overlap`` and stay under both relative-error thresholds.
    """
    if observed.hidden_size != expected.hidden_size:
        return Verdict(False, (), f"hidden size {observed.hidden_size} != expected {expected.hidden_size}")
    if not observed.windows:
        return Verdict(False, (), "the observed fingerprint has no windows")
    by_start = {w.start: w for w in expected.windows}
    results: list[WindowVerdict] = []
    first_reason = ""
    for w in observed.windows:
        span = f"window {w.start // max(w.length, 1)} (positions {w.start}..{w.start + w.length - 1})"
        e = by_start.get(w.start)
        if e is None or e.length != w.length:
            verdict = WindowVerdict(
                w.start, 0.0, float("inf"), float("inf"), False, f"{span}: not recomputed"
            )
        else:
            overlap, med, mean = window_distance(e, w)
            reason = ""
            if overlap < tolerance.min_overlap:
                reason = f"{span}: {overlap:.0%} of indices match (need >= {tolerance.min_overlap:.0%})"
            elif med > tolerance.max_median_rel_err:
                reason = f"{span}: median relative error {med:.2e} > {tolerance.max_median_rel_err:.1e}"
            elif mean > tolerance.max_mean_rel_err:
                reason = f"{span}: mean relative error {mean:.2e} > {tolerance.max_mean_rel_err:.1e}"
            verdict = WindowVerdict(w.start, overlap, med, mean, not reason, reason)
        results.append(verdict)
        if not verdict.ok and not first_reason:
            first_reason = verdict.reason
    return Verdict(not first_reason, tuple(results), first_reason)


__all__ = [
    "DEFAULT_TOLERANCE",
    "Fingerprint",
    "FingerprintFormatError",
    "Tolerance",
    "Verdict",
    "WindowCommitment",
    "WindowVerdict",
    "bf16_bits",
    "bf16_values",
    "compare",
    "window_distance",
]
