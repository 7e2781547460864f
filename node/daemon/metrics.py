"""Prometheus metrics of one node, in a registry of its own, served on 127.0.0.1 ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class NodeMetrics:
    """Counters, gauges and histograms the stage service updates."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.steps = Counter("layermarket_node_steps", "Steps served", registry=r)
        self.tokens = Counter("layermarket_node_tokens", "Positions processed by this stage", registry=r)
        self.sessions_opened = Counter("layermarket_node_sessions_opened", "Sessions opened", registry=r)
        self.errors = Counter("layermarket_node_errors", "Error frames sent, by code", ["code"], registry=r)
        self.receipts = Counter("layermarket_node_receipts", "Receipts signed", registry=r)
        self.sessions = Gauge("layermarket_node_sessions", "Open sessions", registry=r)
        self.kv_used = Gauge("layermarket_node_kv_bytes_used", "KV-cache bytes reserved", registry=r)
        self.kv_budget = Gauge("layermarket_node_kv_bytes_budget", "KV-cache budget in bytes", registry=r)
        self.step_seconds = Histogram(
            "layermarket_node_step_seconds", "Stage compute per step", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.hop_seconds = Histogram(
            "layermarket_node_hop_seconds",
            "Frame in to frame out at this hop, compute included",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def serve(self, port: int) -> int:
        """Serve ``/metrics`` on 127.0.0.1:``port`` (0 = a free port) in a daemon thread; returns the port."""
        server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        return int(server.server_port)


__all__ = ["NodeMetrics"]
