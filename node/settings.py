"""Settings of the node daemon ``market-node`` (``[node]`` in layermarket.toml, ``LAYERMARKET_NODE_*``).

Every field has a comment saying what it controls and its unit; the CLI's flags override them::

    NodeSettings(listen_port=4001).listen_port     # 4001
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from protocol.settings import LayermarketSettings


class NodeSettings(LayermarketSettings, section="node"):
    """What one ``market-node`` process needs; nothing here is read at import time."""

    home: Path = Path.home() / ".layermarket" / "node"
    """Directory holding the encrypted keystore (``operator.json``) and libp2p key (``libp2p.key``)."""
    passphrase: SecretStr | None = None
    """Unlocks both keys. Prefer ``LAYERMARKET_NODE_PASSPHRASE`` or the prompt; never logged."""
    listen_host: str = "0.0.0.0"
    """IPv4 address the libp2p TCP transport listens on."""
    listen_port: int = Field(default=0, ge=0, le=65535)
    """TCP port for libp2p; 0 picks a free one (printed at start and written to the ready file)."""
    announce_addrs: list[str] = Field(default_factory=list)
    """Multiaddrs to advertise instead of the listening ones (behind NAT or a load balancer)."""
    device: str = "cpu"
    """Torch device of the stage: ``cpu``, ``cuda``, ``cuda:1``, ``mps``."""
    dtype: str = "float32"
    """Weights and activations dtype of the stage."""
    threads: int | None = None
    """Torch CPU threads; None keeps torch's default."""
    kv_budget_bytes: int | None = None
    """KV-cache memory for all sessions; None = half of free memory (CPU) or 90% of free GPU memory."""
    batch_window_ms: float = Field(default=2.0, ge=0)
    """How long a decode step waits for other sessions' steps to batch with (only while others are open)."""
    session_idle_s: float = Field(default=60.0, gt=0)
    """A session with no frame (step or keep-alive) for this long expires and frees its KV memory."""
    max_sessions: int = Field(default=64, ge=1)
    """Open sessions at most (beyond the KV budget)."""
    dial_timeout_s: float = Field(default=5.0, gt=0)
    """Dialling the next hop and getting its stream must finish within this."""
    attach_timeout_s: float = Field(default=5.0, gt=0)
    """The last hop waits this long for the client's return leg before failing a step."""
    drain_timeout_s: float = Field(default=10.0, ge=0)
    """On shutdown, open sessions get this long to finish before they are cancelled."""
    price_per_token: int = Field(default=0, ge=0)
    """Price per token (wei of the payment token) named in receipts and heartbeats."""
    receipt_every: int = Field(default=32, ge=1)
    """Most steps one receipt covers when the client asks for none (a receipt is also signed at close)."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Prometheus ``/metrics`` on 127.0.0.1 at this port; None disables, 0 picks a free port."""
    market_url: str | None = None
    """Market service base URL for heartbeats (``POST /v1/nodes/heartbeat``); None disables them."""
    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    """Seconds between heartbeats to the market."""
    dht: bool = True
    """Run a Kademlia DHT server and publish this node's records on it (discovery without the market)."""
    dht_republish_s: float = Field(default=60.0, gt=0)
    """Seconds between republishing the node and provider records."""
    bootstrap: list[str] = Field(default_factory=list)
    """Multiaddrs (with /p2p/<peer id>) of DHT peers to join; empty = this node starts its own DHT."""
    chain_rpc_url: str = "http://127.0.0.1:8545"
    """EVM JSON-RPC endpoint for the chain commands and the receipt domain."""
    chain_id: int = 31337
    """Chain id of the EIP-712 domain of receipts (anvil's default)."""
    deployment_file: Path | None = None
    """``deployments/<chainId>.json`` with the contract addresses, for the chain commands."""
    court_address: str | None = None
    """SpotCheckCourt address: the EIP-712 verifying contract of receipts. None: the SpotCheckCourt of the
    deployment file (``deployment_file``, else ``deployments/<chain_id>.json``); without either no receipts
    are signed (the node says so at start) and a client that asks for payment gets none."""


__all__ = ["NodeSettings"]
