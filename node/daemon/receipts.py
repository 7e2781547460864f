"""What one hop owes a client for one session: digests of its inputs, commitments of its outputs, receipts.

Each hop keeps a :class:`ReceiptBook` per session. Every step adds its input bytes (as received on the
wire: int64 token ids on the first hop, the encoded hidden states elsewhere) to a running SHA-256 and the
runtime's fingerprint of any completed window to the pending commitment. Every ``receipt_every`` steps, and
at close, the book cuts a receipt over the steps since the last one::

    sessionId        = the 16-byte session id, left-padded with zeros to 32 bytes
    inputDigest      = sha256(input bytes of steps [stepStart, stepEnd) in order)
    outputCommitment = protocol.fingerprints.Fingerprint(windows completed in the range).digest
                       (32 zero bytes when no window completed, e.g. a short tail)
    tokens           = positions processed in the range (prompt tokens count once, at prefill)
    pricePerToken    = this hop's price in the route (OPEN), else the payment terms' price

and signs it with the operator key (EIP-712, ``protocol.receipts``, the court's domain). Signing costs about
a millisecond, so it happens once per range, not per step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from protocol.eip712 import Domain
from protocol.fingerprints import Fingerprint
from protocol.messages import Open, SignedReceipt
from protocol.receipts import Receipt, sign_receipt

ReceiptSigner = Callable[[dict[str, Any]], bytes]
"""Signs a receipt's fields (keyed by the EIP-712 field names) and returns 65 bytes."""


def receipt_signer(operator_key: bytes, domain: Domain) -> ReceiptSigner:
    """EIP-712 signing of receipts with the operator key, for the court's domain."""

    def sign(fields: dict[str, Any]) -> bytes:
        return sign_receipt(Receipt.from_eip712(fields), operator_key, domain)

    return sign


ZERO32 = b"\0" * 32


class ReceiptBook:
    """Accumulates one session's work on one hop and cuts signed receipts."""

    def __init__(self, open_message: Open, node: str, model_id: bytes, sign: ReceiptSigner | None) -> None:
        self._open = open_message
        self._node = node
        self._model_id = model_id
        self._sign = sign if open_message.payment is not None else None
        self._step_start = 0
        self._step_end = 0
        self._tokens = 0
        self._inputs = hashlib.sha256()
        self._fingerprint: Fingerprint | None = None
        self.total_tokens = 0
        self.earned = 0  # wei: tokens * price of every receipt cut

    @property
    def enabled(self) -> bool:
        return self._sign is not None

    def record(self, step: int, positions: int, input_bytes: bytes, fingerprint: bytes | None) -> None:
        self._step_end = step + 1
        self._tokens += positions
        self.total_tokens += positions
        if self._sign is None:
            return
        self._inputs.update(input_bytes)
        if fingerprint:
            fp = Fingerprint.from_bytes(fingerprint)
            self._fingerprint = fp if self._fingerprint is None else self._fingerprint.merge(fp)

    def due(self) -> bool:
        return self.enabled and self._step_end - self._step_start >= self._open.receipt_every

    def cut(self) -> SignedReceipt | None:
        """A signed receipt over the steps since the last cut; None if there are none or receipts are off."""
        if self._sign is None or self._open.payment is None or self._step_end == self._step_start:
            return None
        hop = self._open.hop
        # the hop's own quoted price when the route names it; the payment terms' price otherwise
        price = hop.price_per_token if hop.price_per_token is not None else self._open.payment.price_per_token
        fields: dict[str, Any] = {
            "node": self._node,
            "sessionId": bytes.fromhex(self._open.session_id).rjust(32, b"\0"),
            "modelId": self._model_id,
            "layerStart": hop.layer_start,
            "layerEnd": hop.layer_end,
            "stepStart": self._step_start,
            "stepEnd": self._step_end,
            "inputDigest": self._inputs.digest(),
            "outputCommitment": self._fingerprint.digest() if self._fingerprint is not None else ZERO32,
            "tokens": self._tokens,
            "pricePerToken": price,
            "client": self._open.payment.client,
        }
        signature = self._sign(fields)
        receipt = SignedReceipt(
            node=self._node,
            session_id=fields["sessionId"],
            model_id=self._model_id,
            layer_start=hop.layer_start,
            layer_end=hop.layer_end,
            step_start=self._step_start,
            step_end=self._step_end,
            input_digest=fields["inputDigest"],
            output_commitment=fields["outputCommitment"],
            tokens=self._tokens,
            price_per_token=price,
            client=self._open.payment.client,
            signature=signature,
        )
        self.earned += self._tokens * price
        self._step_start = self._step_end
        self._tokens = 0
        self._inputs = hashlib.sha256()
        self._fingerprint = None
        return receipt


__all__ = ["ReceiptBook", "ReceiptSigner", "receipt_signer"]
