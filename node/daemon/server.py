"""Run one node: the libp2p host, the stage service, metrics, status and announcements, until stopped.

SIGINT or SIGTERM starts a graceful shutdown: new sessions are refused (``SHUTTING_DOWN``), open ones get
``drain_timeout_s`` to finish, then everything is cancelled and the host closes.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

import trio

from node.daemon.announce import heartbeat_loop
from node.daemon.discovery import dht_loop
from node.daemon.metrics import NodeMetrics
from node.daemon.receipts import ReceiptSigner
from node.daemon.service import StageService
from node.keys import NodeKeys
from node.runtime import StageRuntime
from node.settings import NodeSettings
from protocol.p2p import STAGE_PROTOCOL, full_addrs, listen_multiaddr, make_host

logger = logging.getLogger(__name__)

STATUS_FILE = "status.json"


def _write_json(path: Path, document: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=2), encoding="utf-8")
    tmp.replace(path)


async def serve_node(
    runtime: StageRuntime,
    settings: NodeSettings,
    keys: NodeKeys,
    *,
    model_id: bytes,
    sign: ReceiptSigner | None = None,
    ready_file: Path | None = None,
    stop: trio.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set), then drain and return."""
    metrics = NodeMetrics()
    metrics_port = metrics.serve(settings.metrics_port) if settings.metrics_port is not None else None
    host = make_host(keys.libp2p_key_pair)
    service = StageService(
        host, runtime, settings, operator=keys.operator_address, model_id=model_id, sign=sign, metrics=metrics
    )
    host.set_stream_handler(STAGE_PROTOCOL, service.handle)
    stop = stop or trio.Event()
    async with host.run(listen_addrs=[listen_multiaddr(settings.listen_host, settings.listen_port)]):
        addrs = settings.announce_addrs or full_addrs(host)
        spec = runtime.spec
        identity = {
            "peer_id": service.peer_id,
            "addrs": addrs,
            "operator": keys.operator_address,
            "binding": keys.binding.to_json(),
            "model_id": "0x" + model_id.hex(),
            "layers": [spec.layer_start, spec.layer_end],
            "num_layers": spec.num_layers,
            "metrics_port": metrics_port,
            "pid": os.getpid(),
        }
        logger.info(
            "serving layers [%d, %d) as %s on %s", spec.layer_start, spec.layer_end, service.peer_id, addrs
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_status_loop, service, settings.home / STATUS_FILE, identity)
            if settings.market_url:
                nursery.start_soon(heartbeat_loop, service, settings, keys, addrs, model_id)
            if settings.dht:
                record = {
                    "peer_id": service.peer_id,
                    "addrs": addrs,
                    "model_id": identity["model_id"],
                    "layers": identity["layers"],
                    "price_per_token": settings.price_per_token,
                    "binding": keys.binding.to_json(),
                }
                nursery.start_soon(
                    dht_loop, host, record, model_id, settings.bootstrap, settings.dht_republish_s
                )
            nursery.start_soon(_stop_on_signal, stop)
            if ready_file is not None:
                _write_json(ready_file, identity)
            await stop.wait()
            logger.info("shutting down: draining %d sessions", len(service.sessions))
            service.draining = True
            with trio.move_on_after(settings.drain_timeout_s):
                while service.sessions:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    runtime.shutdown()


async def _stop_on_signal(stop: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            stop.set()
            return


async def _status_loop(service: StageService, path: Path, identity: dict[str, Any]) -> None:
    """Keep ``status.json`` in the node's home current (``market-node status`` reads it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        while True:
            _write_json(path, {**identity, **service.status(), "running": True})
            await trio.sleep(1.0)
    finally:
        _write_json(path, {**identity, **service.status(), "running": False})


__all__ = ["STATUS_FILE", "serve_node"]
