"""The root of every Layermarket exception.

Each package hangs its own errors under these three classes, so a caller can catch by kind::

    LayermarketError
    ├── TransientError        retrying later may succeed (network blip, busy node, full capacity)
    │   └── ...               e.g. node.runtime.CapacityError, protocol.chain.errors.RpcUnavailable
    └── PermanentError        retrying the same request will fail again (bad input, bad signature)
        ├── ConfigurationError   settings that cannot work (unknown family, missing file, bad URL)
        └── ...               e.g. protocol.wire.FrameError, protocol.chain.errors.EscrowVoucherExpired

Rule: raise a subclass of exactly one of ``TransientError`` or ``PermanentError``; retry loops retry
only ``TransientError``, with capped backoff.
"""

from __future__ import annotations


class LayermarketError(Exception):
    """Base class of every error Layermarket raises on purpose."""


class TransientError(LayermarketError):
    """The operation may succeed if retried later (with backoff)."""


class PermanentError(LayermarketError):
    """The operation will fail again if retried unchanged."""


class ConfigurationError(PermanentError):
    """Settings, paths or arguments that cannot work; the message says what to change."""


__all__ = ["ConfigurationError", "LayermarketError", "PermanentError", "TransientError"]
