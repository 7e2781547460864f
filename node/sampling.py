"""The last stage's choice of a token from logits, re-derivable by anyone who has the same inputs.

A token depends only on the logits, the :class:`~protocol.sampling.SamplingParams`, the tokens already
in the context (for the repetition penalty) and the token's absolute *position*: the random draw uses a
generator seeded from ``(session seed, position)``, never a shared stream, so batching, rollback and
replay never change which token a given position gets::

    params = SamplingParams(temperature=0.7, top_p=0.9, seed=42)
    sample(logits, params, seed=42, position=17, context=[5, 9])   # the same int every time
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from protocol.sampling import SamplingParams


def session_seed(params: SamplingParams, session_id: str) -> int:
    """The session's seed: the client's, or one derived from the session id (stable across nodes)."""
    if params.seed is not None:
        return params.seed
    digest = hashlib.sha256(f"layermarket-seed:{session_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def position_seed(seed: int, position: int) -> int:
    """The generator seed for the token at ``position`` of a session seeded with ``seed``."""
    digest = hashlib.sha256(seed.to_bytes(8, "big") + position.to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def sample(
    logits: torch.Tensor, params: SamplingParams, *, seed: int, position: int, context: Sequence[int] = ()
) -> int:
    """One token id from ``logits`` ``(V,)``, in the order transformers applies the same processors:
    repetition penalty, temperature, top-k, top-p, then argmax (greedy) or a seeded draw."""
    scores = logits.detach().to(device="cpu", dtype=torch.float32).clone()  # (V,)
    if params.repetition_penalty != 1.0 and context:
        seen = torch.tensor(sorted(set(context)), dtype=torch.long)
        seen = seen[seen < scores.shape[0]]
        picked = scores[seen]
        scores[seen] = torch.where(
            picked > 0, picked / params.repetition_penalty, picked * params.repetition_penalty
        )
    if params.greedy:
        return int(torch.argmax(scores))
    scores = scores / params.temperature
    if 0 < params.top_k < scores.shape[0]:
        kth = torch.topk(scores, params.top_k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if params.top_p < 1.0:
        ordered, order = torch.sort(scores, descending=True)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
        # drop a token when the tokens before it already reach top_p; the most likely always stays
        drop = (cumulative - torch.softmax(ordered, dim=-1)) >= params.top_p
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    generator = torch.Generator(device="cpu").manual_seed(position_seed(seed, position))
    return int(torch.multinomial(probs, 1, generator=generator))


__all__ = ["position_seed", "sample", "session_seed"]
