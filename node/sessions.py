"""KV memory of a stage: sessions, their caches, and the byte budget they are admitted against.

A session reserves its worst case, ``max_length`` positions of K and V for every local layer, when it
opens, so an admitted session can never run out of memory mid-generation; the cache tensor itself grows
by doubling up to that size, so short sessions cost little real memory::

    table = SessionTable(KVLayout(layers=4, kv_heads=4, head_dim=32, dtype=torch.float32, device="cpu"),
                         budget_bytes=64 << 20, ttl_s=300.0)
    table.open("s1", max_length=512, sampling=SamplingParams())   # reserves 4*2*4*32*512*4 = 1 MiB
    table.open("big", max_length=10**6, sampling=SamplingParams())  # raises CapacityError

:class:`BatchKV` is what the decoder layers see as ``past_key_values`` during one forward of a batch.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import torch

from node.errors import CapacityError, RuntimeInputError, SessionNotFound
from protocol.sampling import SamplingParams

logger = logging.getLogger(__name__)

_MIN_CAPACITY = 64


@dataclass(frozen=True)
class KVLayout:
    """Shape of one stage's KV cache per position."""

    layers: int
    kv_heads: int
    head_dim: int
    dtype: torch.dtype
    device: str

    def bytes_for(self, positions: int) -> int:
        """Bytes of K and V for ``positions`` positions over every local layer."""
        item = torch.empty((), dtype=self.dtype).element_size()
        return self.layers * 2 * self.kv_heads * self.head_dim * positions * item


@dataclass
class Session:
    """One generation's state on this stage."""

    session_id: str
    max_length: int
    sampling: SamplingParams
    seed: int
    reserved_bytes: int
    ttl_s: float
    last_used: float
    length: int = 0  # positions held in the cache
    kv_version: int = 0  # bumped by every change to the cache (step, rollback): batched caches check it
    kv: torch.Tensor | None = None  # (layers, 2, kv_heads, capacity, head_dim); None until the first step
    # last stage: (position, token) of every token sampled here, and tokens known to be in the context
    sampled: list[tuple[int, int]] = field(default_factory=list)
    context_tokens: list[int] = field(default_factory=list)
    fingerprints: object | None = None  # node.fingerprint.WindowAccumulator, owned by the runtime

    @property
    def capacity(self) -> int:
        return 0 if self.kv is None else self.kv.shape[3]

    def ensure_capacity(self, layout: KVLayout, positions: int) -> None:
        """Grow the cache (doubling, capped at ``max_length``) to hold ``positions`` positions."""
        if positions <= self.capacity:
            return
        new_cap = min(self.max_length, max(positions, 2 * self.capacity, _MIN_CAPACITY))
        kv = torch.empty(
            (layout.layers, 2, layout.kv_heads, new_cap, layout.head_dim),
            dtype=layout.dtype,
            device=layout.device,
        )
        if self.kv is not None and self.length:
            kv[:, :, :, : self.length] = self.kv[:, :, :, : self.length]
        self.kv = kv


class SessionTable:
    """Open sessions and the KV byte budget; every method is thread-safe."""

    def __init__(self, layout: KVLayout, budget_bytes: int, ttl_s: float) -> None:
        self.layout = layout
        self.budget_bytes = budget_bytes
        self.ttl_s = ttl_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def reserved_bytes(self) -> int:
        with self._lock:
            return sum(s.reserved_bytes for s in self._sessions.values())

    def open(
        self,
        session_id: str,
        max_length: int,
        sampling: SamplingParams,
        seed: int,
        ttl_s: float | None = None,
        now: float | None = None,
    ) -> Session:
        if not isinstance(max_length, int) or max_length < 1:
            raise RuntimeInputError(f"max_length must be a positive int, got {max_length!r}")
        need = self.layout.bytes_for(max_length)
        with self._lock:
            if session_id in self._sessions:
                raise RuntimeInputError(f"session {session_id!r} is already open")
            used = sum(s.reserved_bytes for s in self._sessions.values())
            if used + need > self.budget_bytes:
                raise CapacityError(need, max(0, self.budget_bytes - used), self.budget_bytes)
            session = Session(
                session_id=session_id,
                max_length=max_length,
                sampling=sampling,
                seed=seed,
                reserved_bytes=need,
                ttl_s=self.ttl_s if ttl_s is None else ttl_s,
                last_used=time.monotonic() if now is None else now,
            )
            self._sessions[session_id] = session
        logger.debug("opened session %s: max_length %d, %d bytes reserved", session_id, max_length, need)
        return session

    def get(self, session_id: str) -> Session:
        with self._lock:
            try:
                return self._sessions[session_id]
            except KeyError:
                raise SessionNotFound(session_id) from None

    def close(self, session_id: str) -> Session:
        with self._lock:
            try:
                return self._sessions.pop(session_id)
            except KeyError:
                raise SessionNotFound(session_id) from None

    def idle(self, now: float) -> list[str]:
        """Ids of sessions idle longer than their ttl at monotonic time ``now``."""
        with self._lock:
            return [sid for sid, s in self._sessions.items() if now - s.last_used > s.ttl_s]

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._sessions)


_HEADROOM = 32  # positions a batched cache is allocated beyond its longest row, so later steps reuse it


class BatchKV:
    """``past_key_values`` for one forward over ``sessions``, each adding ``new`` positions.

    One session: K/V are written straight into its cache and attention reads a view of it (no copy).
    Several sessions (decode, ``new == 1``): their caches are gathered into one right-padded tensor
    ``(B, layers, 2, kv_heads, kv_len, head_dim)`` (zeros past each row's end, hidden by the mask), each
    layer writes its new row with one indexed store, and :meth:`commit` copies the new position back into
    every session's own cache, which stays the one source of truth. The gathered tensor has headroom and
    is reused by the next step when it holds the same sessions and none was changed by another step since
    (steady-state decode), so a step copies O(B) rows instead of every session's whole cache. (A rollback
    alone would not make it stale, since it only forgets positions; it forces a fresh gather anyway.)
    """

    def __init__(self, sessions: list[Session], new: int, previous: BatchKV | None = None) -> None:
        self.sessions = sessions
        self.new = new
        self.past = [s.length for s in sessions]
        self._batch: torch.Tensor | None = None
        self._versions: list[int] = []
        for session in sessions:
            if session.kv is None:
                raise RuntimeError(f"session {session.session_id}: cache not allocated before the forward")
        if len(sessions) == 1:
            return
        if new != 1:
            raise RuntimeError("a batch of several sessions must be one-token decode steps")
        first = assert_kv(sessions[0].kv)
        if previous is not None and previous._extends_to(sessions):
            self._batch = previous._batch
        else:
            layers, _, kv_heads, _, head_dim = first.shape
            kv_len = max(self.past) + 1 + _HEADROOM
            batch = first.new_empty((len(sessions), layers, 2, kv_heads, kv_len, head_dim))
            for b, session in enumerate(sessions):
                p = self.past[b]
                batch[b, :, :, :, :p] = assert_kv(session.kv)[:, :, :, :p]
                # masked, but must be finite: softmax gives the padding weight 0, and 0 * NaN is NaN
                batch[b, :, :, :, p:] = 0
            self._batch = batch
        self._rows = torch.arange(len(sessions), device=first.device)
        self._cols = torch.tensor(self.past, device=first.device)

    @property
    def kv_len(self) -> int:
        """Key positions the attention sees: the padded batch length, or the one session's length."""
        if self._batch is None:
            return self.past[0] + self.new
        return int(self._batch.shape[4])

    def _extends_to(self, sessions: list[Session]) -> bool:
        """True when this committed batch is exactly ``sessions`` as they are now, with room for a row."""
        return (
            self._batch is not None
            and len(sessions) == len(self.sessions)
            and all(a is b for a, b in zip(sessions, self.sessions, strict=True))
            and [s.kv_version for s in sessions] == self._versions
            and max(s.length for s in sessions) < self._batch.shape[4]
        )

    def update(
        self,
        key_states: torch.Tensor,
        value_states: torch.Tensor,
        layer_idx: int,
        *args: object,
        **kwargs: object,  # transformers 5.24 also passes ``kwargs=`` (its attention kwargs; 5.17 does not)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # key_states, value_states: (B, kv_heads, new, head_dim)
        if self._batch is None:
            kv = assert_kv(self.sessions[0].kv)
            p, end = self.past[0], self.past[0] + self.new
            kv[layer_idx, 0, :, p:end] = key_states[0]
            kv[layer_idx, 1, :, p:end] = value_states[0]
            return kv[layer_idx, 0, :, :end][None], kv[layer_idx, 1, :, :end][None]  # (1, kv_heads, end, hd)
        # advanced indices (rows, cols) around a slice put the batch dim first: (B, kv_heads, head_dim)
        self._batch[self._rows, layer_idx, 0, :, self._cols] = key_states[:, :, 0]
        self._batch[self._rows, layer_idx, 1, :, self._cols] = value_states[:, :, 0]
        return self._batch[:, layer_idx, 0], self._batch[:, layer_idx, 1]  # (B, kv_heads, kv_len, head_dim)

    def commit(self) -> None:
        """Advance every session's length (and copy batched K/V home) once the forward has succeeded."""
        for b, session in enumerate(self.sessions):
            if self._batch is not None:
                p = self.past[b]
                assert_kv(session.kv)[:, :, :, p : p + 1] = self._batch[b, :, :, :, p : p + 1]
            session.length += self.new
            session.kv_version += 1
        self._versions = [s.kv_version for s in self.sessions]


def assert_kv(kv: torch.Tensor | None) -> torch.Tensor:
    if kv is None:
        raise RuntimeError("session cache not allocated before the forward")
    return kv


__all__ = ["BatchKV", "KVLayout", "Session", "SessionTable"]
