"""Health probes: how long a TCP connect to a node's libp2p listener takes, from the market.

The market speaks no libp2p (it imports no node code); a TCP handshake to the first ``/ip4|ip6|dns/.../tcp``
multiaddr measures reachability and network latency, which is what the planner's ``rtt_ms`` needs. Step
time comes from the node's own heartbeat and is checked by spot checks, not by probes.
"""

from __future__ import annotations

import socket
import time

RTT_ALPHA = 0.3


def tcp_target(multiaddrs: list[str]) -> tuple[str, int] | None:
    """(host, port) of the first TCP multiaddr, e.g. ``/ip4/10.0.0.5/tcp/4001`` → ('10.0.0.5', 4001)."""
    for addr in multiaddrs:
        parts = addr.strip("/").split("/")
        if len(parts) >= 4 and parts[0] in {"ip4", "ip6", "dns", "dns4", "dns6"} and parts[2] == "tcp":
            try:
                return parts[1], int(parts[3])
            except ValueError:
                continue
    return None


def probe_rtt_ms(multiaddrs: list[str], timeout_s: float) -> float | None:
    """Milliseconds to open a TCP connection to the node, or None when it cannot be reached."""
    target = tcp_target(multiaddrs)
    if target is None:
        return None
    started = time.perf_counter()
    try:
        with socket.create_connection(target, timeout=timeout_s):
            return (time.perf_counter() - started) * 1000.0
    except OSError:
        return None


def smoothed(previous: float | None, sample: float) -> float:
    return sample if previous is None else (1 - RTT_ALPHA) * previous + RTT_ALPHA * sample


__all__ = ["probe_rtt_ms", "smoothed", "tcp_target"]
