"""Errors the stage runtime raises, under the shared hierarchy of :mod:`protocol.errors`::

LayermarketError
├── TransientError
│   └── CapacityError          the KV budget cannot hold another session now; retry later or elsewhere
└── PermanentError
    ├── SessionNotFound        no open session has this id (never opened, closed or expired)
    ├── RuntimeInputError      a step, open or rollback that cannot work: wrong shape, dtype, position,
    │                          length past ``max_length``, duplicate session id
    └── ConfigurationError
        └── UnsupportedModelError   a model directory the runtime cannot serve (family, files, layers)
"""

from __future__ import annotations

from protocol.errors import ConfigurationError, PermanentError, TransientError


class CapacityError(TransientError):
    """The KV-cache budget is full: the session was not opened. Retrying after others close may work."""

    def __init__(self, needed: int, available: int, budget: int) -> None:
        super().__init__(
            f"KV budget full: the session needs {needed} bytes, {available} of {budget} are free"
        )
        self.needed = needed
        self.available = available
        self.budget = budget


class SessionNotFound(PermanentError):
    """No open session has this id: it was never opened, or was closed or expired."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no open session {session_id!r} (never opened, closed, or expired)")
        self.session_id = session_id


class RuntimeInputError(PermanentError):
    """A request the runtime cannot serve as asked; the message names the field and what was expected."""


class UnsupportedModelError(ConfigurationError):
    """A model directory the runtime cannot serve (unknown family, missing weights, bad layer range)."""


__all__ = ["CapacityError", "RuntimeInputError", "SessionNotFound", "UnsupportedModelError"]
