"""How the last stage turns logits into a token: the parameters a client sends with a session.

The node samples with these, and anyone holding the logits, the parameters and the token's position can
re-derive the token (see ``node/sampling.py``), so ``seed`` is part of what a receipt commits to::

    SamplingParams()                                  # greedy, no stop tokens, 256 new tokens at most
    SamplingParams(temperature=0.8, top_p=0.95, seed=7, stop_token_ids=(2,))
    SamplingParams(top_k=-1)                          # raises ValueError: top_k must be >= 0
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    """Sampling of one session; validated on construction, immutable, and plain-data for the wire."""

    temperature: float = 0.0
    """0 means greedy (argmax); otherwise logits are divided by it before softmax."""
    top_k: int = 0
    """Keep only the k most likely tokens; 0 disables."""
    top_p: float = 1.0
    """Keep the smallest set of tokens whose probability reaches top_p (nucleus); 1.0 disables."""
    repetition_penalty: float = 1.0
    """CTRL-style penalty on tokens in the context (positive logits divided, negative multiplied); 1.0 off."""
    stop_token_ids: tuple[int, ...] = field(default_factory=tuple)
    """Generation finishes after emitting any of these."""
    seed: int | None = None
    """Seed of the per-session generator; None lets the node derive one from the session id."""
    max_new_tokens: int = 256
    """Generation finishes after this many sampled tokens."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature >= 0.0):
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be an int >= 0 (0 disables), got {self.top_k!r}")
        if not (0.0 < self.top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not (math.isfinite(self.repetition_penalty) and self.repetition_penalty > 0.0):
            raise ValueError(
                f"repetition_penalty must be a finite number > 0, got {self.repetition_penalty!r}"
            )
        stops = tuple(self.stop_token_ids)
        if any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in stops):
            raise ValueError(f"stop_token_ids must be ints >= 0, got {self.stop_token_ids!r}")
        object.__setattr__(self, "stop_token_ids", stops)
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63
        ):
            raise ValueError(f"seed must be an int in [0, 2**63) or None, got {self.seed!r}")
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int):
            raise ValueError(f"max_new_tokens must be an int, got {self.max_new_tokens!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    @property
    def greedy(self) -> bool:
        """True when sampling is argmax (temperature 0)."""
        return self.temperature == 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a msgpack header (tuples become lists)."""
        data = asdict(self)
        data["stop_token_ids"] = list(self.stop_token_ids)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingParams:
        """The inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` rather than pass silently."""
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown sampling fields: {', '.join(sorted(unknown))}")
        values = dict(data)
        if "stop_token_ids" in values:
            values["stop_token_ids"] = tuple(values["stop_token_ids"])
        return cls(**values)


__all__ = ["SamplingParams"]
