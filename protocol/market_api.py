"""The market's HTTP API as typed models: what nodes, clients and validators send and get back.

Every body the market accepts or returns is one of these pydantic models, so a node, the client SDK and a
validator build and parse requests without importing ``market``. Paths (all JSON)::

    POST /v1/nodes/heartbeat          SignedHeartbeat      -> HeartbeatAck
    GET  /v1/nodes?model_id=          -                    -> list[NodeView]
    POST /v1/models                   ModelRegistration    -> ModelView
    GET  /v1/models/{model_id}        -                    -> ModelView
    GET  /v1/models/{model_id}/allocation?max_layers=N     -> AllocationAdvice
    POST /v1/quotes                   QuoteRequest         -> Quote            (creates a job record)
    GET  /v1/jobs/{job_id}            -                    -> JobRecord
    POST /v1/jobs/{job_id}/progress   JobProgress          -> JobRecord
    POST /v1/jobs/{job_id}/receipts   ReceiptSubmission    -> ReceiptRecord
    POST /v1/spotchecks               SpotCheckRequest     -> SpotCheckRecord  (queued for validators)
    GET  /v1/spotchecks/{id}          -                    -> SpotCheckRecord
    POST /v1/spotchecks/{id}/verdict  SpotCheckVerdict     -> SpotCheckRecord

Errors come back as ``ApiError`` with a 4xx status for bad input (the message says what to change) and
503 when the market cannot answer now (retry later).

Layer ranges are half-open ``[layer_start, layer_end)`` everywhere, as on-chain. Prices are integers in the
payment token's base units per generated token.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocol import messages
from protocol.heartbeat import Address, ModelId, Signature
from protocol.receipts import Receipt

MAX_TOKENS = 1_000_000
MAX_TRANSCRIPT_TOKENS = 131_072
MAX_LAYERS = 65_535

_Hex32 = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$")]
_PeerId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[1-9A-HJ-NP-Za-km-z]+$")]
_Price = Annotated[int, Field(ge=0, lt=2**256)]
_NO_NUL = r"^[^\x00]*$"  # free text is stored as is; PostgreSQL text cannot hold NUL


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiError(_Model):
    """The body of every 4xx/5xx answer."""

    error: str
    """Machine-readable kind, e.g. ``unknown_model``, ``no_route``, ``price_cap``, ``bad_signature``."""
    message: str
    """What went wrong and what to change, for a human."""


# ------------------------------------------------------------------ node directory


class HeartbeatAck(_Model):
    operator: Address
    routable: bool
    """True when the market will route to this node now (bonded, unjailed, fresh, known model)."""
    reason: str | None = None
    """Why the node is not routable, when it is not."""
    next_heartbeat_s: int
    """Send the next heartbeat within this many seconds to stay live."""


class NodeView(_Model):
    peer_id: str
    operator: Address
    model_id: ModelId
    layer_start: int
    layer_end: int
    multiaddrs: list[str]
    price_per_token: int
    step_ms: float
    rtt_ms: float | None
    """Market-to-node TCP connect time (EWMA) from probes; None before the first probe."""
    free_sessions: int
    last_seen: int
    """Unix seconds of the last accepted heartbeat."""
    bonded: bool
    jailed: bool
    live: bool
    reliability: float
    """0..1: heartbeat uptime, probe success and spot-check record combined (see docs/MARKET.md)."""
    routable: bool
    reason: str | None = None
    """Why the market does not route to the node, when it does not (the heartbeat ack's reason)."""


class ModelRegistration(_Model):
    model_id: ModelId
    name: str = Field(min_length=1, max_length=128, pattern=_NO_NUL)
    num_layers: int = Field(ge=1, le=MAX_LAYERS)


class ModelView(_Model):
    model_id: ModelId
    name: str
    num_layers: int
    coverage: list[int]
    """Routable nodes serving each layer, index = layer."""
    complete: bool
    """True when every layer has at least one routable node (a route exists)."""


class AllocationAdvice(_Model):
    model_id: ModelId
    layer_start: int
    layer_end: int
    """Serve ``[layer_start, layer_end)``: the window where the pool's throughput is thinnest."""
    throughput_before: list[float]
    """Per layer, sum over routable nodes of tokens/s (1000 / step_ms) before the node joins."""


# ------------------------------------------------------------------ quotes and routes


class Hop(_Model):
    """One stage of a route: the node and the layers it is asked to run (a suffix of what it serves)."""

    peer_id: str
    multiaddrs: list[str]
    operator: Address
    layer_start: int
    layer_end: int
    price_per_token: int
    expected_ms: float
    """Expected time of this hop per token: network latency + step time, inflated by load."""

    def stage_hop(self) -> messages.Hop:
        """This hop as the stage protocol's route entry (OPEN), its quoted price included, so that the
        node's receipts name the price the market checks them against::

            route = [hop.stage_hop() for hop in quote.route.hops]
            async with stage_client.session(route, max_length=64, payment=terms) as session: ...
        """
        return messages.Hop(
            self.peer_id, tuple(self.multiaddrs), self.layer_start, self.layer_end, self.price_per_token
        )


class Route(_Model):
    hops: list[Hop]
    price_per_token: int
    """Sum of the hops' prices."""
    expected_ms_per_token: float


class QuoteRequest(_Model):
    model_id: ModelId
    max_tokens: int = Field(ge=1, le=MAX_TOKENS)
    max_price_per_token: _Price | None = None
    """Price cap for the whole route; None: no cap."""
    exclude_peers: list[_PeerId] = Field(default_factory=list, max_length=256)
    """Peers not to route to (e.g. a hop that just failed)."""
    alternates: int = Field(default=2, ge=0, le=4)
    """How many node-disjoint alternate routes to return for failover."""
    client: Address | None = None


class Quote(_Model):
    job_id: str
    model_id: ModelId
    route: Route
    alternates: list[Route]
    price_per_token: int
    max_cost: int
    """``price_per_token * max_tokens``: the most this job can cost on the primary route."""
    expires_at: int
    """Unix seconds after which the route should be re-quoted."""


class JobStatus(StrEnum):
    QUOTED = "quoted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class JobProgress(_Model):
    status: JobStatus
    tokens: int = Field(ge=0, le=MAX_TOKENS)
    """Tokens generated so far (cumulative, never decreasing)."""
    error: str | None = Field(default=None, max_length=2000, pattern=_NO_NUL)


class JobRecord(_Model):
    job_id: str
    model_id: ModelId
    status: JobStatus
    route: Route
    price_per_token: int
    max_tokens: int
    max_cost: int
    tokens: int
    receipts: int
    created_at: int
    updated_at: int
    error: str | None = None


class ReceiptSubmission(_Model):
    """A hop's EIP-712 receipt (``protocol.receipts.Receipt``) for a range of steps, as the client got it.

    Fields mirror the receipt's EIP-712 type one to one (bytes32 as 0x hex); ``peer_id`` says which hop of
    the job's route signed it. The market verifies the signature under the court's domain when it knows
    the deployment, and always checks that node, model, layers and price are those of a hop of the job.
    """

    peer_id: _PeerId
    node: Address
    """The signing node's operator address."""
    session_id: _Hex32
    model_id: ModelId
    layer_start: int = Field(ge=0, lt=MAX_LAYERS)
    layer_end: int = Field(gt=0, le=MAX_LAYERS)
    step_start: int = Field(ge=0, lt=2**32)
    step_end: int = Field(ge=1, lt=2**32)
    input_digest: _Hex32
    output_commitment: _Hex32
    tokens: int = Field(ge=0, lt=2**32)
    price_per_token: _Price
    client: Address
    signature: Signature

    @model_validator(mode="after")
    def _ranges_in_order(self) -> ReceiptSubmission:
        if self.step_end <= self.step_start:
            raise ValueError("step_end must be greater than step_start: steps are [step_start, step_end)")
        if self.layer_end <= self.layer_start:
            raise ValueError(
                "layer_end must be greater than layer_start: layers are [layer_start, layer_end)"
            )
        return self

    @classmethod
    def from_receipt(cls, receipt: Receipt, signature: bytes, peer_id: str) -> ReceiptSubmission:
        """The submission of a receipt a hop signed (``SignedReceipt.receipt()`` and ``.signature`` as the
        stage client got them) by the hop with libp2p id ``peer_id``."""
        return cls(
            peer_id=peer_id,
            node=receipt.node,
            session_id="0x" + receipt.session_id.hex(),
            model_id="0x" + receipt.model_id.hex(),
            layer_start=receipt.layer_start,
            layer_end=receipt.layer_end,
            step_start=receipt.step_start,
            step_end=receipt.step_end,
            input_digest="0x" + receipt.input_digest.hex(),
            output_commitment="0x" + receipt.output_commitment.hex(),
            tokens=receipt.tokens,
            price_per_token=receipt.price_per_token,
            client=receipt.client,
            signature="0x" + signature.hex(),
        )

    def to_receipt(self) -> Receipt:
        """The ``protocol.receipts.Receipt`` these fields describe (to verify or challenge it)."""
        return Receipt(
            node=self.node,
            session_id=bytes.fromhex(self.session_id[2:]),
            model_id=bytes.fromhex(self.model_id[2:]),
            layer_start=self.layer_start,
            layer_end=self.layer_end,
            step_start=self.step_start,
            step_end=self.step_end,
            input_digest=bytes.fromhex(self.input_digest[2:]),
            output_commitment=bytes.fromhex(self.output_commitment[2:]),
            tokens=self.tokens,
            price_per_token=self.price_per_token,
            client=self.client,
        )


class ReceiptRecord(_Model):
    id: int
    job_id: str
    peer_id: str
    step_start: int
    step_end: int
    tokens: int
    signature_verified: bool
    """True when the market checked the signature under the court's EIP-712 domain; False when it knows
    no deployment (development without a chain): validators and the court still check it."""


# ------------------------------------------------------------------ spot checks


class Transcript(_Model):
    """What a validator needs to re-run a job in one teacher-forced prefill."""

    token_ids: list[Annotated[int, Field(ge=0, lt=2**31)]] = Field(
        min_length=1, max_length=MAX_TRANSCRIPT_TOKENS
    )
    """Prompt then generated tokens."""
    prompt_len: int = Field(ge=1)
    seed: int = Field(ge=0, lt=2**64)
    temperature: float = Field(default=0.0, ge=0, le=10, allow_inf_nan=False)
    top_p: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _prompt_within(self) -> Transcript:
        if self.prompt_len > len(self.token_ids):
            raise ValueError("prompt_len exceeds the number of token_ids")
        return self


class SpotCheckRequest(_Model):
    job_id: str = Field(min_length=1, max_length=64)
    transcript: Transcript


class SpotCheckStatus(StrEnum):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    PASSED = "passed"
    FAILED = "failed"


class SpotCheckVerdict(_Model):
    passed: bool
    offending_peers: list[_PeerId] = Field(default_factory=list, max_length=64)
    detail: str = Field(default="", max_length=4000, pattern=_NO_NUL)
    validator: Address | None = None


class SpotCheckRecord(_Model):
    id: int
    job_id: str
    status: SpotCheckStatus
    offending_peers: list[str]
    detail: str
    created_at: int
    updated_at: int


__all__ = [
    "MAX_TOKENS",
    "AllocationAdvice",
    "ApiError",
    "HeartbeatAck",
    "Hop",
    "JobProgress",
    "JobRecord",
    "JobStatus",
    "ModelRegistration",
    "ModelView",
    "NodeView",
    "Quote",
    "QuoteRequest",
    "ReceiptRecord",
    "ReceiptSubmission",
    "Route",
    "SpotCheckRecord",
    "SpotCheckRequest",
    "SpotCheckStatus",
    "SpotCheckVerdict",
    "Transcript",
]
