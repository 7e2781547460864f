"""Continuous batching: decode steps of different sessions that arrive within a short window run as one
batched forward.

Callers (the daemon's worker threads) block in :meth:`StepBatcher.submit`; one forward runs at a time,
in the scheduler thread, or inline in the caller's thread when nothing could join it anyway. The
scheduler takes the oldest waiting request; a multi-token step (prefill, replay) runs alone at once; a
one-token decode waits up to ``window_s`` for decodes of other sessions, or less when every open session
is already waiting, then all of them (one per session, ordered by session id so that the runtime can
reuse the batched cache) run together. Steps that arrive while a forward runs are simply in the next
batch, so a busy stage is never idle between batches.

The window stretches to a quarter of the last batched forward's duration when that is longer: the
sessions of the last batch come back a few scheduler-thread wake-ups later, and splitting them over two
forwards would read every weight twice, for a wait that costs at most a quarter of a step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class StepRequest:
    """One session's step, waiting for the scheduler; ``result`` or ``error`` is set before ``done``."""

    session_id: str
    inputs: torch.Tensor  # (T,) token ids or (T, H) hidden states, validated by the runtime
    positions_start: int | None
    arrived: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None

    @property
    def is_decode(self) -> bool:
        return int(self.inputs.shape[0]) == 1


class BatcherClosed(RuntimeError):
    """The runtime was shut down while a step waited."""


class StepBatcher:
    """Groups concurrent decode steps; ``run_batch`` receives requests and must settle every one."""

    def __init__(
        self,
        run_batch: Callable[[list[StepRequest]], None],
        *,
        window_s: float,
        waiting_target: Callable[[], int],
        max_batch: int = 128,
    ) -> None:
        self._run_batch = run_batch
        self._window_s = window_s
        self._waiting_target = waiting_target  # how many sessions could be waiting: flush when all are
        self._max_batch = max_batch
        self._pending: list[StepRequest] = []
        self._cond = threading.Condition()
        self._closed = False
        self.batches = 0
        self.batched_steps = 0
        self._last_forward_s = 0.0
        self._last_finished = 0.0
        self._last_sessions: set[str] = set()
        self._busy = False  # a batch is running, in the scheduler thread or inline in a caller's
        self._thread = threading.Thread(target=self._loop, name="stage-batcher", daemon=True)
        self._thread.start()

    def submit(self, request: StepRequest) -> Any:
        """Run ``request`` (batched with others when they come) and block until it ran; returns its result
        or raises its error.

        When nothing runs or waits and no other session could join (a prefill, or the only open
        session's decode), the step runs right here in the caller's thread: no hand-off to the scheduler
        thread and back, which on a busy CPU costs a scheduling delay per hop.
        """
        with self._cond:
            if self._closed:
                raise BatcherClosed("the stage runtime is shut down")
            inline = (
                not self._busy
                and not self._pending
                and (not request.is_decode or self._waiting_target() <= 1)
            )
            if inline:
                self._busy = True
            else:
                self._pending.append(request)
                self._cond.notify_all()
        if inline:
            self._execute([request])
        else:
            request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=10)

    def _take(self) -> list[StepRequest] | None:
        """Under the lock: wait for work and pick the next batch (None once closed)."""
        while (not self._pending or self._busy) and not self._closed:
            self._cond.wait()
        if self._closed:
            for r in self._pending:
                r.error = BatcherClosed("the stage runtime is shut down")
                r.done.set()
            self._pending.clear()
            return None
        oldest = self._pending[0]
        if not oldest.is_decode:
            self._pending.pop(0)
            self._busy = True
            return [oldest]
        # Wait from the later of the oldest arrival and the end of the last batch: otherwise two halves of
        # the sessions, each arriving while the other half runs, lock into alternating half batches.
        deadline = max(oldest.arrived, self._last_finished) + max(self._window_s, 0.25 * self._last_forward_s)
        while not self._closed:
            waiting = {r.session_id for r in self._pending if r.is_decode}
            # expect the last batch's sessions back, and whoever waits now; never more than are open
            expected = min(self._waiting_target(), len(waiting | self._last_sessions))
            remaining = deadline - time.monotonic()
            if len(waiting) >= expected or len(waiting) >= self._max_batch or remaining <= 0:
                break
            self._cond.wait(remaining)
        batch: list[StepRequest] = []
        seen: set[str] = set()
        for r in self._pending:
            if r.is_decode and r.session_id not in seen and len(batch) < self._max_batch:
                batch.append(r)
                seen.add(r.session_id)
        taken = {id(r) for r in batch}
        batch.sort(key=lambda r: r.session_id)  # a stable order lets the runtime reuse the batched KV cache
        self._pending = [r for r in self._pending if id(r) not in taken]
        self._busy = True
        return batch

    def _loop(self) -> None:
        while True:
            with self._cond:
                batch = self._take()
            if batch is None:
                return
            self._execute(batch)

    def _execute(self, batch: list[StepRequest]) -> None:
        """Run one batch (the caller set ``_busy``); settles every request, then frees the model."""
        started = time.monotonic()
        try:
            self._run_batch(batch)
        except BaseException as exc:  # the scheduler thread must survive any one bad batch
            logger.exception("stage batch of %d failed", len(batch))
            for r in batch:
                if r.result is None and r.error is None:
                    r.error = exc
        finally:
            if batch[0].is_decode:
                self._last_forward_s = time.monotonic() - started
                self._last_sessions = {r.session_id for r in batch}
            self._last_finished = time.monotonic()
            self.batches += 1
            self.batched_steps += len(batch)
            with self._cond:
                self._busy = False
                if self._pending:
                    # Only the scheduler thread waits on the condition, and only for pending work: waking it
                    # for nothing after an inline step makes it contend for the GIL on every hop.
                    self._cond.notify_all()
            for r in batch:
                r.done.set()


__all__ = ["BatcherClosed", "StepBatcher", "StepRequest"]
