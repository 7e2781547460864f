"""Compute fingerprint commitments (format and comparison: :mod:`protocol.fingerprints`) with torch.

A stage commits to its *output* activations: the residual stream it hands to the next hop, or on the
last stage the final-normed hidden states fed to the LM head. Windows are aligned to absolute positions,
so a node that decoded token by token and a validator that re-ran one prefill commit to the same rows::

    fp = commit(hidden, start=0, window=32, k=128)          # hidden (T, H); one commitment per full window
    acc = WindowAccumulator(window=32, k=128, hidden_size=H)
    acc.add(0, hidden[:40])   # -> [window 0]; rows 32..39 wait for the rest of window 1
"""

from __future__ import annotations

import numpy as np
import torch

from protocol.fingerprints import Fingerprint, WindowCommitment

DEFAULT_WINDOW = 32
DEFAULT_K = 128


def commit_window(block: torch.Tensor, start: int, k: int = DEFAULT_K) -> WindowCommitment:
    """Top-``k`` |entries| of ``block`` ``(N, H)``: ascending flat indices and their float32 values."""
    flat = block.detach().float().reshape(-1)
    k = min(k, flat.numel())
    idx = torch.topk(flat.abs(), k, sorted=False).indices.sort().values
    return WindowCommitment(
        start=start,
        length=int(block.shape[0]),
        indices=idx.cpu().numpy().astype(np.uint32),
        values=flat[idx].cpu().numpy().astype(np.float32),
    )


def commit(
    hidden: torch.Tensor, start: int, window: int = DEFAULT_WINDOW, k: int = DEFAULT_K, dtype: str = "float32"
) -> Fingerprint:
    """Commitments of every full window inside rows ``[start, start + T)`` of ``hidden`` ``(T, H)``.

    This is what a validator computes after one teacher-forced prefill over a whole transcript.
    """
    windows = []
    first = -(-start // window) * window  # first window boundary at or after start
    for w_start in range(first, start + hidden.shape[0] - window + 1, window):
        windows.append(commit_window(hidden[w_start - start : w_start - start + window], w_start, k))
    return Fingerprint(hidden_size=int(hidden.shape[-1]), windows=tuple(windows), dtype=dtype)


class WindowAccumulator:
    """Collects one session's output rows and commits each window as its last row arrives."""

    def __init__(self, window: int, k: int, hidden_size: int, device: torch.device | str = "cpu") -> None:
        self.window, self.k, self.hidden_size = window, k, hidden_size
        self._rows = torch.zeros((window, hidden_size), dtype=torch.float32, device=device)
        self._next = 0  # absolute position of the next row expected
        self._valid_from = 0  # rows of the current window before this position were lost to a rollback

    def add(self, start: int, hidden: torch.Tensor) -> list[WindowCommitment]:
        """Rows ``hidden`` ``(T, H)`` for positions ``[start, start + T)``; returns completed windows."""
        if start != self._next:
            self.rollback(start)
        done = []
        for offset in range(0, hidden.shape[0]):
            pos = start + offset
            self._rows[pos % self.window] = hidden[offset]
            if pos % self.window == self.window - 1:
                w_start = pos - self.window + 1
                if self._valid_from <= w_start:
                    done.append(commit_window(self._rows, w_start, self.k))
        self._next = start + int(hidden.shape[0])
        return done

    def rollback(self, length: int) -> None:
        """Forget rows at positions >= ``length``. Rolling back past a window boundary loses that
        window's earlier rows (only one window is kept), so that window is not committed again."""
        if length > self._next:
            raise ValueError(f"cannot roll fingerprint rows forward from {self._next} to {length}")
        window_start = length - length % self.window
        if length % self.window and self._next > window_start + self.window:
            self._valid_from = max(self._valid_from, window_start + self.window)
        self._next = length


__all__ = ["DEFAULT_K", "DEFAULT_WINDOW", "WindowAccumulator", "commit", "commit_window"]
