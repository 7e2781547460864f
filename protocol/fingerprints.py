"""Fingerprints: a compact commitment of a stage's output activations, and the test that decides whether a
re-computation matches it.

TOPLOC-style. For every window of ``N`` positions (absolute positions ``[w*N, (w+1)*N)``) a stage commits
to the ``k`` largest-magnitude entries of its output hidden states ``(N, H)``: their flat indices and their
values (as float32, so a float32 node's values are not blurred by rounding), and the dtype the node
computed in. A node puts the commitment's 32-byte :meth:`Fingerprint.digest` in its receipt; a validator
re-runs the stage from the node's own inputs (one teacher-forced prefill), commits to the same windows in
the dtype it computed in, and calls :func:`compare`::

    verdict = compare(expected=validator_fp, observed=node_fp)
    verdict.ok          # True: within the honest tolerance
    verdict.reason      # "" or e.g. "window 0 (positions 0..31): 12% of indices match (need >= 70%)"

The tolerance is chosen by the pair (the node's declared dtype, the validator's dtype): see
:data:`TOLERANCES`. A float16 node recomputed in float16 is held to a tight tolerance that catches int8
weights and 1e-2 activation noise; a bfloat16 node cannot be (honest bfloat16 kernels differ from each
other by more than those cheats add). The measurements behind every number are in docs/VERIFICATION.md.

Wire format (all integers little-endian)::

    b"LMFP" | version u8 | dtype u8 | hidden_size u32 | n_windows u16 |
    n_windows x ( start u64 | length u16 | k u16 | k x index u32 (ascending) | k x value f32 )

``dtype``: 0 float32, 1 bfloat16, 2 float16 (what the node computed in; see :data:`DTYPE_CODES`).
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.errors import PermanentError

MAGIC = b"LMFP"
VERSION = 1
_HEADER = struct.Struct("<4sBBIH")
_WINDOW = struct.Struct("<QHH")
MAX_WINDOWS = 4096
MAX_K = 4096
DTYPE_CODES = {"float32": 0, "bfloat16": 1, "float16": 2}
_DTYPE_NAMES = {v: k for k, v in DTYPE_CODES.items()}


class FingerprintFormatError(ValueError):
    """Bytes that are not a well-formed fingerprint."""


class FingerprintReferenceError(PermanentError, ValueError):
    """The validator recomputed in a dtype that cannot judge the node's declared dtype (e.g. a float32
    node recomputed in bfloat16, whose loose tolerance would let bfloat16 pass as float32)."""


@dataclass(frozen=True, eq=False)
class WindowCommitment:
    """The top-``k`` entries of one window's ``(length, hidden_size)`` activations."""

    start: int  # absolute position of the window's first row
    length: int  # rows in the window
    indices: npt.NDArray[np.uint32]  # (k,) ascending flat indices into the (length, hidden_size) block
    values: npt.NDArray[np.float32]  # (k,) the entries at those indices

    @property
    def k(self) -> int:
        return int(self.indices.shape[0])


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """Commitments of one or more windows of one stage's output."""

    hidden_size: int
    windows: tuple[WindowCommitment, ...]
    dtype: str = "float32"  # what the node computed in: a key of DTYPE_CODES

    def __post_init__(self) -> None:
        if self.dtype not in DTYPE_CODES:
            raise ValueError(f"fingerprint dtype {self.dtype!r}; choose one of {', '.join(DTYPE_CODES)}")

    def to_bytes(self) -> bytes:
        parts = [_HEADER.pack(MAGIC, VERSION, DTYPE_CODES[self.dtype], self.hidden_size, len(self.windows))]
        for w in self.windows:
            parts.append(_WINDOW.pack(w.start, w.length, w.k))
            parts.append(w.indices.astype("<u4").tobytes())
            parts.append(w.values.astype("<f4").tobytes())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        """Parse and check sizes before any allocation; malformed bytes raise FingerprintFormatError."""
        if len(data) < _HEADER.size:
            raise FingerprintFormatError(f"fingerprint too short: {len(data)} bytes")
        magic, version, dtype_code, hidden, n = _HEADER.unpack_from(data, 0)
        if magic != MAGIC or version != VERSION:
            raise FingerprintFormatError(f"not a version-{VERSION} fingerprint (magic {magic!r}, v{version})")
        if dtype_code not in _DTYPE_NAMES:
            raise FingerprintFormatError(f"unknown dtype code {dtype_code}")
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
            end = offset + 8 * k
            if len(data) < end:
                raise FingerprintFormatError(f"window at {start} truncated: needs {8 * k} bytes")
            indices = np.frombuffer(data, dtype="<u4", count=k, offset=offset).astype(np.uint32)
            values = np.frombuffer(data, dtype="<f4", count=k, offset=offset + 4 * k).astype(np.float32)
            if not np.all(np.isfinite(values)):
                raise FingerprintFormatError(f"window at {start}: non-finite values")
            offset = end
            if np.any(indices >= length * hidden) or np.any(np.diff(indices.astype(np.int64)) <= 0):
                raise FingerprintFormatError(f"window at {start}: indices out of range or not ascending")
            windows.append(WindowCommitment(start=start, length=length, indices=indices, values=values))
        if offset != len(data):
            raise FingerprintFormatError(f"{len(data) - offset} trailing bytes after the fingerprint")
        return cls(hidden_size=hidden, windows=tuple(windows), dtype=_DTYPE_NAMES[dtype_code])

    def digest(self) -> bytes:
        """32 bytes for a receipt: SHA-256 of :meth:`to_bytes`."""
        return hashlib.sha256(self.to_bytes()).digest()

    def merge(self, other: Fingerprint) -> Fingerprint:
        """Both fingerprints' windows (same stage), ordered by position; a later duplicate window wins."""
        if other.hidden_size != self.hidden_size:
            raise ValueError("cannot merge fingerprints of different hidden sizes")
        by_start = {w.start: w for w in (*self.windows, *other.windows)}
        return Fingerprint(self.hidden_size, tuple(by_start[s] for s in sorted(by_start)), self.dtype)


@dataclass(frozen=True)
class Tolerance:
    """Thresholds of :func:`compare`; see docs/VERIFICATION.md for how they were calibrated.

    The first five apply to every window on its own; the two ``pooled`` ones to every entry of every
    window compared at once (a whole job), where a small systematic error (int8 weights) stands out of
    the honest noise that a single window of 128 entries cannot average away.
    """

    min_overlap: float
    """Fraction of the observed top-k indices that must also be in the expected top-k."""
    max_median_rel_err: float
    """Median over shared indices of |observed - expected| / |expected|."""
    max_mean_rel_err: float
    """Mean of the same relative errors."""
    tail_rel_err: float
    """An entry whose relative error exceeds this is an outlier ..."""
    max_tail_fraction: float
    """... and at most this fraction of the shared entries may be outliers."""
    max_pooled_mean_rel_err: float = math.inf
    """Mean relative error over the shared entries of all windows (inf: not checked)."""
    max_pooled_tail_fraction: float = 1.0
    """Fraction of the shared entries of all windows that are outliers (1.0: not checked)."""


# float32 nodes: honest float32 variants differ by ~1e-6; anything that rounds or perturbs shows up
FLOAT32 = Tolerance(
    min_overlap=0.9,
    max_median_rel_err=1e-3,
    max_mean_rel_err=1.5e-3,
    tail_rel_err=1e-2,
    max_tail_fraction=0.01,
)
# 16-bit nodes against a float32 recomputation, and bfloat16 nodes against any: one bf16 rounding is up to
# 0.4% and rounding differences compound through the layers (bf16 vs fp32: median 1.8% on a 16-layer
# model; bf16 eager vs bf16 sdpa: median 1.4% on 16 layers of the 8B shape), so only coarse cheats are
# separable here: a different model, a skipped/repeated layer, int4 weights.
SIXTEEN_BIT = Tolerance(
    min_overlap=0.7,
    max_median_rel_err=2.5e-2,
    max_mean_rel_err=3e-2,
    tail_rel_err=5e-2,
    max_tail_fraction=0.18,
)
# float16 nodes recomputed in float16 from their own inputs: honest kernels, devices and batch sizes stay
# under a median of 1.9e-3 per window and 2.4% of entries off by > 5e-3 over a job, int8 weights put
# >= 19% of entries there and 1e-2 noise >= 58%: the pooled tail catches both.
FLOAT16_IN_FLOAT16 = Tolerance(
    min_overlap=0.9,
    max_median_rel_err=4e-3,
    max_mean_rel_err=5e-3,
    tail_rel_err=5e-3,
    max_tail_fraction=0.25,
    max_pooled_mean_rel_err=2.5e-3,
    max_pooled_tail_fraction=0.07,
)

TOLERANCES: dict[tuple[str, str], Tolerance] = {
    # (the node's declared dtype, the dtype the validator recomputed in) -> tolerance
    ("float32", "float32"): FLOAT32,
    ("bfloat16", "float32"): SIXTEEN_BIT,
    # honest bf16 kernels (CPU/GPU, sdpa/eager, decode/prefill) differ from each other about as much as
    # from float32, so recomputing in bf16 buys nothing: same tolerance
    ("bfloat16", "bfloat16"): SIXTEEN_BIT,
    ("float16", "float32"): SIXTEEN_BIT,
    ("float16", "float16"): FLOAT16_IN_FLOAT16,
}
DEFAULT_TOLERANCE = FLOAT32


def tolerance_for(dtype: str, reference_dtype: str = "float32") -> Tolerance:
    """The tolerance for a node that declared ``dtype``, recomputed by a validator in ``reference_dtype``.

    >>> tolerance_for("float16", "float16") is FLOAT16_IN_FLOAT16
    True

    A reference in any other dtype than float32 or the node's own raises
    :class:`FingerprintReferenceError`: it cannot tell honest rounding from a cheat.
    """
    try:
        return TOLERANCES[(dtype, reference_dtype)]
    except KeyError:
        raise FingerprintReferenceError(
            f"a {dtype} node cannot be judged by a {reference_dtype} recomputation; "
            f"recompute in float32 or in {dtype}"
        ) from None


@dataclass(frozen=True)
class WindowDistance:
    """How far an observed window is from the expected one."""

    overlap: float
    median_rel_err: float
    mean_rel_err: float
    tail_fraction: float


@dataclass(frozen=True)
class WindowVerdict:
    start: int
    distance: WindowDistance
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`compare`: ``ok`` and, when not, the first reason."""

    ok: bool
    windows: tuple[WindowVerdict, ...]
    reason: str = ""
    pooled: WindowDistance | None = None  # over every entry of every recomputed window (None: none)

    def __bool__(self) -> bool:
        return self.ok


def _relative_errors(
    expected: WindowCommitment, observed: WindowCommitment
) -> tuple[float, npt.NDArray[np.float64]]:
    """Overlap of the index sets, and |observed - expected| / |expected| over the indices both hold."""
    common, e_pos, o_pos = np.intersect1d(expected.indices, observed.indices, return_indices=True)
    e = expected.values[e_pos].astype(np.float64)
    o = observed.values[o_pos].astype(np.float64)
    rel: npt.NDArray[np.float64] = np.abs(o - e) / np.maximum(np.abs(e), 1e-30)
    return float(common.shape[0]) / float(observed.k), rel


def _distance(overlap: float, rel: npt.NDArray[np.float64], tail_rel_err: float) -> WindowDistance:
    if rel.size == 0:
        return WindowDistance(overlap, float("inf"), float("inf"), 1.0)
    return WindowDistance(
        overlap, float(np.median(rel)), float(np.mean(rel)), float(np.mean(rel > tail_rel_err))
    )


def window_distance(
    expected: WindowCommitment, observed: WindowCommitment, tail_rel_err: float = 1e-2
) -> WindowDistance:
    """Distances of ``observed`` from ``expected`` over the indices both committed to.

    ``expected`` may hold more entries than ``observed`` (a validator can commit to a larger k so that
    an honest node's top-k lies inside it even when near-ties reorder the boundary).
    """
    return _distance(*_relative_errors(expected, observed), tail_rel_err)


def _window_reason(span: str, d: WindowDistance, tol: Tolerance) -> str:
    """The first per-window threshold ``d`` crosses, or ""."""
    if d.overlap < tol.min_overlap:
        return f"{span}: {d.overlap:.0%} of indices match (need >= {tol.min_overlap:.0%})"
    if d.median_rel_err > tol.max_median_rel_err:
        return f"{span}: median relative error {d.median_rel_err:.2e} > {tol.max_median_rel_err:.1e}"
    if d.mean_rel_err > tol.max_mean_rel_err:
        return f"{span}: mean relative error {d.mean_rel_err:.2e} > {tol.max_mean_rel_err:.1e}"
    if d.tail_fraction > tol.max_tail_fraction:
        return (
            f"{span}: {d.tail_fraction:.1%} of entries off by more than {tol.tail_rel_err:.1e} "
            f"(at most {tol.max_tail_fraction:.0%} allowed)"
        )
    return ""


def _pooled_reason(n_windows: int, d: WindowDistance, tol: Tolerance) -> str:
    """The first job-level threshold ``d`` (over all windows) crosses, or ""."""
    if d.mean_rel_err > tol.max_pooled_mean_rel_err:
        return (
            f"all {n_windows} windows: mean relative error {d.mean_rel_err:.2e} "
            f"> {tol.max_pooled_mean_rel_err:.1e}"
        )
    if d.tail_fraction > tol.max_pooled_tail_fraction:
        return (
            f"all {n_windows} windows: {d.tail_fraction:.1%} of entries off by more than "
            f"{tol.tail_rel_err:.1e} (at most {tol.max_pooled_tail_fraction:.0%} allowed)"
        )
    return ""


def compare(expected: Fingerprint, observed: Fingerprint, tolerance: Tolerance | None = None) -> Verdict:
    """Does ``observed`` (a node's commitment) match ``expected`` (a validator's re-computation)?

    Unless given, the tolerance is :func:`tolerance_for` the dtype the node declared in ``observed`` and
    the dtype the validator computed ``expected`` in (a reference in a third dtype raises
    :class:`FingerprintReferenceError`). Every observed window must have an expected window at the same
    position, reach ``min_overlap`` and stay under the median, mean and tail thresholds; then all the
    windows' entries together must stay under the pooled thresholds.
    """
    tol = tolerance_for(observed.dtype, expected.dtype) if tolerance is None else tolerance
    if observed.hidden_size != expected.hidden_size:
        return Verdict(False, (), f"hidden size {observed.hidden_size} != expected {expected.hidden_size}")
    if not observed.windows:
        return Verdict(False, (), "the observed fingerprint has no windows")
    by_start = {w.start: w for w in expected.windows}
    results: list[WindowVerdict] = []
    all_rel: list[npt.NDArray[np.float64]] = []
    shared = compared = 0  # top-k entries: in both commitments, and observed in recomputed windows
    first_reason = ""
    for w in observed.windows:
        span = f"window {w.start // max(w.length, 1)} (positions {w.start}..{w.start + w.length - 1})"
        e = by_start.get(w.start)
        if e is None or e.length != w.length:
            missing = WindowDistance(0.0, float("inf"), float("inf"), 1.0)
            verdict = WindowVerdict(w.start, missing, False, f"{span}: not recomputed")
        else:
            overlap, rel = _relative_errors(e, w)
            all_rel.append(rel)
            shared += len(rel)
            compared += w.k
            d = _distance(overlap, rel, tol.tail_rel_err)
            reason = _window_reason(span, d, tol)
            verdict = WindowVerdict(w.start, d, not reason, reason)
        results.append(verdict)
        if not verdict.ok and not first_reason:
            first_reason = verdict.reason
    pooled = None
    if all_rel:
        pooled = _distance(shared / compared, np.concatenate(all_rel), tol.tail_rel_err)
        if not first_reason:
            first_reason = _pooled_reason(len(all_rel), pooled, tol)
    return Verdict(not first_reason, tuple(results), first_reason, pooled)


__all__ = [
    "DEFAULT_TOLERANCE",
    "DTYPE_CODES",
    "FLOAT16_IN_FLOAT16",
    "FLOAT32",
    "SIXTEEN_BIT",
    "TOLERANCES",
    "Fingerprint",
    "FingerprintFormatError",
    "FingerprintReferenceError",
    "Tolerance",
    "Verdict",
    "WindowCommitment",
    "WindowDistance",
    "WindowVerdict",
    "compare",
    "tolerance_for",
    "window_distance",
]
