"""The ``market-node`` daemon: one concern per module.

- :mod:`node.daemon.host` — the libp2p host (TCP + Noise + Yamux) and dialling hops;
- :mod:`node.daemon.service` — the stage protocol handler: sessions on a route, forwarding, the ring;
- :mod:`node.daemon.receipts` — per-session digests, commitments and signed receipts;
- :mod:`node.daemon.metrics` — Prometheus counters and histograms, served on ``/metrics``;
- :mod:`node.daemon.announce` — heartbeats to the market and the DHT record;
- :mod:`node.daemon.server` — wires them together and runs until stopped, draining sessions.
"""
