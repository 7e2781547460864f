"""The stage runtime: what the node daemon and the validator call to run one stage of a model.

::

    rt = StageRuntime.load(Path("models/llama-tiny"), (0, 8))            # a single stage: first and last
    rt.open("s1", max_length=128, sampling=SamplingParams(max_new_tokens=16))
    out = rt.step("s1", torch.tensor([5, 17, 42]))   # prefill -> StepOutput(tokens=[...], ...)
    out = rt.step("s1", torch.tensor(out.tokens))    # decode one token
    rt.close("s1")

``step`` is blocking and thread-safe: decode steps of different sessions that arrive within
``batch_window_ms`` run as one batched forward (:mod:`node.batching`). Inputs are token ids ``(T,)`` on the
first stage and hidden states ``(T, H)`` elsewhere; the last stage samples (:mod:`node.sampling`) and every
stage commits to its outputs every ``fingerprint_every`` positions (:mod:`node.fingerprint`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from node.batching import StepBatcher, StepRequest
from node.errors import CapacityError, RuntimeInputError, SessionNotFound, UnsupportedModelError
from node.fingerprint import DEFAULT_K, WindowAccumulator
from node.loader import dtype_name, parse_dtype
from node.sampling import sample, session_seed
from node.sessions import BatchKV, KVLayout, Session, SessionTable
from node.stage import StageModel, attention_mask
from protocol.errors import LayermarketError
from protocol.fingerprints import Fingerprint
from protocol.sampling import SamplingParams

logger = logging.getLogger(__name__)

DEFAULT_SESSION_TTL_S = 300.0


@dataclass(frozen=True)
class StageSpec:
    """What a loaded stage serves."""

    family: str
    num_layers: int  # of the whole model
    layer_start: int
    layer_end: int  # exclusive
    is_first: bool
    is_last: bool
    hidden_size: int
    vocab_size: int
    dtype: str
    model_dir: Path
    device: str = "cpu"
    attn_implementation: str = "sdpa"


@dataclass(frozen=True)
class StepOutput:
    """The result of one step of one session."""

    hidden: torch.Tensor | None  # (T, H) on non-last stages, else None
    tokens: list[int]  # last stage: the sampled next token (one per step); else []
    fingerprint: bytes | None  # protocol.fingerprints.Fingerprint of windows completed by this step
    finished: bool  # last stage: a stop token was sampled or max_new_tokens reached


def _default_budget(device: str) -> int:
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free * 0.9)
    import psutil

    return int(psutil.virtual_memory().available * 0.5)


class StageRuntime:
    """One stage of one model, serving many sessions. Build with :meth:`load`."""

    def __init__(
        self,
        stage: StageModel,
        spec: StageSpec,
        *,
        kv_budget_bytes: int,
        batch_window_ms: float,
        fingerprint_every: int,
        fingerprint_k: int = DEFAULT_K,
        session_ttl_s: float = DEFAULT_SESSION_TTL_S,
    ) -> None:
        self.stage = stage
        self.spec = spec
        cfg = stage.config
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self._dtype = parse_dtype(spec.dtype)
        self._sliding_window = getattr(cfg, "sliding_window", None) if spec.family == "mistral" else None
        self.sessions = SessionTable(
            KVLayout(len(stage.layers), cfg.num_key_value_heads, head_dim, self._dtype, spec.device),
            budget_bytes=kv_budget_bytes,
            ttl_s=session_ttl_s,
        )
        self.fingerprint_every = fingerprint_every
        self.fingerprint_k = fingerprint_k
        self._state_lock = threading.Lock()  # session state: held by a forward, rollback and close
        self._tokens_served = 0
        self._steps = 0
        self._last_batch: BatchKV | None = None  # the last batched step's cache, reused while it matches
        self._batcher = StepBatcher(
            self._run_batch, window_s=batch_window_ms / 1000.0, waiting_target=lambda: len(self.sessions)
        )

    @classmethod
    def load(
        cls,
        model_dir: Path,
        layers: tuple[int, int],
        *,
        device: str = "cpu",
        dtype: str = "float32",
        kv_budget_bytes: int | None = None,
        batch_window_ms: float = 2.0,
        threads: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        fingerprint_every: int = 32,
        attn_implementation: str = "sdpa",
        session_ttl_s: float = DEFAULT_SESSION_TTL_S,
    ) -> StageRuntime:
        """Load layers ``[layers[0], layers[1])`` of ``model_dir``, reading only their weights."""
        model_dir = Path(model_dir)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UnsupportedModelError(f"device {device!r} asked for, but torch sees no CUDA device")
        if device == "mps" and not torch.backends.mps.is_available():
            raise UnsupportedModelError("device 'mps' asked for, but torch sees no MPS device")
        if threads is not None:
            torch.set_num_threads(threads)
        torch_dtype = parse_dtype(dtype)
        start, end = layers
        stage = StageModel.load(
            model_dir,
            start,
            end,
            dtype=torch_dtype,
            device=device,
            attn_implementation=attn_implementation,
            progress=progress,
        )
        cfg = stage.config
        spec = StageSpec(
            family=stage.family,
            num_layers=stage.num_model_layers,
            layer_start=start,
            layer_end=end,
            is_first=stage.is_first,
            is_last=stage.is_last,
            hidden_size=cfg.hidden_size,
            vocab_size=cfg.vocab_size,
            dtype=dtype_name(torch_dtype),
            model_dir=model_dir,
            device=device,
            attn_implementation=attn_implementation,
        )
        budget = _default_budget(device) if kv_budget_bytes is None else kv_budget_bytes
        if kv_budget_bytes is None:
            logger.info("KV budget not set: using %.0f MB (half of free memory)", budget / 1e6)
        return cls(
            stage,
            spec,
            kv_budget_bytes=budget,
            batch_window_ms=batch_window_ms,
            fingerprint_every=fingerprint_every,
            session_ttl_s=session_ttl_s,
        )

    # ---- sessions -------------------------------------------------------------------------------------

    def open(
        self,
        session_id: str,
        max_length: int,
        sampling: SamplingParams | None = None,
        *,
        context_tokens: list[int] | None = None,
        ttl_s: float | None = None,
    ) -> None:
        """Reserve KV memory for ``max_length`` positions; :class:`CapacityError` when the budget is full.

        ``context_tokens`` (last stage only, optional): prompt tokens the repetition penalty should see,
        since a last stage that is not also the first never sees token ids.
        """
        params = sampling or SamplingParams()
        session = self.sessions.open(session_id, max_length, params, session_seed(params, session_id), ttl_s)
        session.context_tokens = list(context_tokens or [])
        if self.fingerprint_every:
            session.fingerprints = WindowAccumulator(
                self.fingerprint_every, self.fingerprint_k, self.spec.hidden_size, self.spec.device
            )

    def close(self, session_id: str) -> None:
        """Free the session's KV memory; :class:`SessionNotFound` when it is not open."""
        with self._state_lock:
            self.sessions.close(session_id)
            self._last_batch = None  # drop the batched copy of its cache with it

    def rollback(self, session_id: str, n: int) -> None:
        """Forget the session's last ``n`` positions (e.g. rejected speculative tokens)."""
        with self._state_lock:
            session = self.sessions.get(session_id)
            if not isinstance(n, int) or not 0 <= n <= session.length:
                raise RuntimeInputError(f"cannot roll back {n!r} of {session.length} positions")
            self._rollback_to(session, session.length - n)

    def expire_idle(self, now: float | None = None) -> list[str]:
        """Close sessions idle past their ttl (``now`` is ``time.monotonic()`` time); returns their ids."""
        now = time.monotonic() if now is None else now
        expired = []
        with self._state_lock:
            for sid in self.sessions.idle(now):
                self.sessions.close(sid)
                expired.append(sid)
            if expired:
                self._last_batch = None
        if expired:
            logger.info("expired %d idle sessions", len(expired))
        return expired

    def stats(self) -> dict[str, Any]:
        return {
            "sessions": len(self.sessions),
            "kv_bytes_used": self.sessions.reserved_bytes,
            "kv_bytes_budget": self.sessions.budget_bytes,
            "tokens_served": self._tokens_served,
            "steps": self._steps,
            "batches": self._batcher.batches,
            "mean_batch": self._batcher.batched_steps / max(1, self._batcher.batches),
        }

    def shutdown(self) -> None:
        """Stop the scheduler thread; waiting steps fail. The runtime cannot step afterwards."""
        self._batcher.close()

    def __enter__(self) -> StageRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ---- steps ----------------------------------------------------------------------------------------

    def step(self, session_id: str, inputs: torch.Tensor, positions_start: int | None = None) -> StepOutput:
        """Run ``inputs`` through the stage for one session; blocks until done (batched with others).

        ``positions_start`` (optional) is the absolute position of ``inputs[0]``; it must not be past the
        session's length, and when it is before, the session first rolls back to it (replay).
        """
        inputs = self._check_inputs(inputs)
        session = self.sessions.get(session_id)  # fail fast, before queueing
        start = session.length if positions_start is None else positions_start
        if start + int(inputs.shape[0]) > session.max_length:
            raise RuntimeInputError(
                f"session {session_id!r}: positions {start}..{start + inputs.shape[0] - 1} "
                f"exceed its max_length {session.max_length}"
            )
        result: StepOutput = self._batcher.submit(StepRequest(session_id, inputs, positions_start))
        return result

    def _check_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        if not isinstance(inputs, torch.Tensor):
            raise RuntimeInputError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
        if self.spec.is_first:
            if inputs.dtype not in (torch.int64, torch.int32) or inputs.dim() != 1 or inputs.numel() == 0:
                raise RuntimeInputError(
                    "the first stage takes token ids: int64 of shape (T,), "
                    f"got {inputs.dtype} {tuple(inputs.shape)}"
                )
            if int(inputs.min()) < 0 or int(inputs.max()) >= self.spec.vocab_size:
                raise RuntimeInputError(f"token ids must be in [0, {self.spec.vocab_size})")
            return inputs.to(device=self.spec.device, dtype=torch.int64)
        if not inputs.is_floating_point() or inputs.dim() != 2 or inputs.shape[0] == 0:
            raise RuntimeInputError(
                f"stage {self.spec.layer_start}:{self.spec.layer_end} takes hidden states (T, "
                f"{self.spec.hidden_size}), got {inputs.dtype} {tuple(inputs.shape)}"
            )
        if inputs.shape[1] != self.spec.hidden_size:
            raise RuntimeInputError(f"hidden size {inputs.shape[1]} != the model's {self.spec.hidden_size}")
        return inputs.to(device=self.spec.device, dtype=self._dtype)

    def _rollback_to(self, session: Session, length: int) -> None:
        session.length = length
        session.kv_version += 1
        session.sampled = [(p, t) for p, t in session.sampled if p <= length]
        if isinstance(session.fingerprints, WindowAccumulator):
            session.fingerprints.rollback(length)

    def _run_batch(self, requests: list[StepRequest]) -> None:
        """Scheduler thread: one forward for ``requests`` (one prefill, or decodes of distinct sessions)."""
        with self._state_lock:
            ready: list[tuple[StepRequest, Session]] = []
            for r in requests:
                try:
                    session = self.sessions.get(r.session_id)
                    start = session.length if r.positions_start is None else r.positions_start
                    if not 0 <= start <= session.length:
                        raise RuntimeInputError(
                            f"session {r.session_id!r}: positions_start {start} "
                            f"is past its length {session.length}"
                        )
                    if start + int(r.inputs.shape[0]) > session.max_length:
                        raise RuntimeInputError(
                            f"session {r.session_id!r}: max_length {session.max_length} reached"
                        )
                    if start < session.length:
                        self._rollback_to(session, start)
                    session.ensure_capacity(self.sessions.layout, start + int(r.inputs.shape[0]))
                    ready.append((r, session))
                except LayermarketError as exc:
                    r.error = exc
            if not ready:
                return
            outputs = self._forward([r for r, _ in ready], [s for _, s in ready])
            for (r, _), out in zip(ready, outputs, strict=True):
                r.result = out

    def _forward(self, requests: list[StepRequest], sessions: list[Session]) -> list[StepOutput]:
        new = int(requests[0].inputs.shape[0])
        kv = BatchKV(sessions, new, self._last_batch)
        device = self.spec.device
        positions = torch.tensor(kv.past, device=device)[:, None] + torch.arange(new, device=device)  # (B, T)
        inputs = torch.stack([r.inputs for r in requests])  # (B, T) ids or (B, T, H) hidden
        mask = attention_mask(
            kv.past,
            new,
            dtype=self._dtype,
            device=device,
            kernel=self.spec.attn_implementation,
            sliding_window=self._sliding_window,
            kv_len=kv.kv_len,
        )
        with torch.inference_mode():
            hidden = self.stage(inputs, positions, kv, mask)  # (B, T, H)
            kv.commit()
            self._last_batch = kv if len(sessions) > 1 else None
            if self.spec.is_last:
                logits = self.stage.logits(hidden[:, -1])  # (B, V) float32
                greedy = logits.argmax(dim=-1).tolist()  # one transfer for the whole batch
        now = time.monotonic()
        outputs = []
        for b, (r, session) in enumerate(zip(requests, sessions, strict=True)):
            session.last_used = now
            fingerprint = None
            if isinstance(session.fingerprints, WindowAccumulator):
                windows = session.fingerprints.add(kv.past[b], hidden[b])
                if windows:
                    fingerprint = Fingerprint(
                        self.spec.hidden_size, tuple(windows), self.spec.dtype
                    ).to_bytes()
            tokens: list[int] = []
            finished = False
            if self.spec.is_last:
                token, finished = self._sample(session, r, logits[b], greedy[b])
                tokens = [token]
            outputs.append(
                StepOutput(
                    hidden=None if self.spec.is_last else hidden[b],
                    tokens=tokens,
                    fingerprint=fingerprint,
                    finished=finished,
                )
            )
        self._tokens_served += new * len(requests)
        self._steps += len(requests)
        return outputs

    def _sample(
        self, session: Session, request: StepRequest, logits: torch.Tensor, argmax: int
    ) -> tuple[int, bool]:
        params = session.sampling
        position = session.length  # the sampled token is the input at this position
        context: list[int] = list(session.context_tokens)
        if self.spec.is_first:
            session.context_tokens.extend(int(t) for t in request.inputs.tolist())
            context = list(session.context_tokens)
        context.extend(t for _, t in session.sampled)
        if params.greedy and params.repetition_penalty == 1.0:
            token = argmax  # what sample() returns here, without moving the logits off the device
        else:
            token = sample(logits, params, seed=session.seed, position=position, context=context)
        session.sampled.append((position, token))
        finished = token in params.stop_token_ids or len(session.sampled) >= params.max_new_tokens
        return token, finished


__all__ = ["CapacityError", "RuntimeInputError", "SessionNotFound", "StageRuntime", "StageSpec", "StepOutput"]
