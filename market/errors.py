"""Errors the market answers with; each maps to one HTTP status and an ``ApiError`` body.

LayermarketError
├── TransientError
│   └── MarketUnavailable      503  the database, broker or chain cannot answer now; retry
└── PermanentError
    └── MarketRequestError     4xx  the request cannot succeed as sent; the message says what to change
        ├── NotFound           404  unknown model, job or spot check
        ├── Unauthorized       401  admin endpoint without the admin token
        ├── Conflict           409  contradicts what the market already holds
        └── Unprocessable      422  well-formed but impossible (bad signature, no route, price cap)
"""

from __future__ import annotations

from protocol.errors import PermanentError, TransientError


class MarketUnavailable(TransientError):
    status = 503

    def __init__(self, message: str, code: str = "unavailable") -> None:
        super().__init__(message)
        self.code = code


class MarketRequestError(PermanentError):
    status = 400

    def __init__(self, message: str, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


class NotFound(MarketRequestError):
    status = 404


class Unauthorized(MarketRequestError):
    status = 401


class Conflict(MarketRequestError):
    status = 409


class Unprocessable(MarketRequestError):
    status = 422


__all__ = ["Conflict", "MarketRequestError", "MarketUnavailable", "NotFound", "Unauthorized", "Unprocessable"]
