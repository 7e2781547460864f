"""Route planning in two phases, as Parallax splits it: allocation advice, then per-request routes.

Pure computation over a snapshot of one model's pool (:class:`Pool`); the database is someone else's
concern (``market.directory`` builds pools). A pool is indexed once per snapshot, then answers many
requests::

    pool = Pool(num_layers=32, nodes=[PoolNode(...), ...])
    plan = pool.route(max_price_per_token=5_000, alternates=2)
    plan.primary.hops      # [RouteHop(node=..., layer_start=0, layer_end=12), ...]
    pool.allocation(max_layers=8)   # (start, end): where a joining node helps most

**Route selection.** A route is a chain of hops whose layer ranges tile ``[0, L)``. A node serving
``[s, e)`` may be entered at any layer ``l`` in ``[s, e)`` (it then runs the suffix ``[l, e)``), so
overlapping ranges still chain. The cost of a hop is what one token waits there:

    cost(n) = rtt_ms(n) + step_ms(n) * queue(n) / reliability(n)      (+ lambda * price(n) under a cap)

where ``queue = 1 / (1 - rho)`` with ``rho`` the node's estimated utilisation (M/M/1 waiting), and a hop
entered mid-range is charged its whole step time (step time is measured over the node's whole range;
this is conservative and keeps the search cheap). Nodes with the same range form a *group*; only the
cheapest of a group can be on a best route, so the dynamic programme runs over groups:

    dist[e] = min over groups g ending at e of ( min(dist[start_g .. e-1]) + mincost_g )

``O(L^2 + G)`` per search with numpy doing the inner minima (``G`` = distinct ranges, at most ``L^2/2``,
far fewer in practice). The chosen group's node is then drawn at random among the group's nodes within
``spread_epsilon`` of its best cost, weighted by free sessions: replicas share load instead of the single
best node taking every job.

**Price cap.** Minimising time under a total price cap is a resource-constrained shortest path (NP-hard in
general); we use Lagrangian relaxation: minimise ``time + lambda * price`` and bisect ``lambda`` on a log
scale until the route fits under the cap, keeping the fastest feasible route found. When even the cheapest
route exceeds the cap the planner says so with the cheapest price, so the client knows what to offer.

**Alternates.** Up to ``alternates`` further routes, each node-disjoint from every route before it, for
failover without a new quote.

**Allocation advice.** For a joining node that can hold ``max_layers`` layers: per layer, sum the pool's
throughput (tokens/s = 1000 / step_ms of every node serving it) and advise the window whose weakest layer
is weakest (ties: lowest total), i.e. fill the thinnest coverage first, as Petals and Parallax do.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from protocol.errors import PermanentError

_LAMBDA_STEPS = 10
_INF = math.inf


class PlanningError(PermanentError):
    """No route can be planned for the request as asked."""


class NoCoverage(PlanningError):
    """Some layer has no routable node: no route exists at any price."""

    def __init__(self, missing_layers: list[int]) -> None:
        self.missing_layers = missing_layers
        shown = ", ".join(map(str, missing_layers[:10])) + (" ..." if len(missing_layers) > 10 else "")
        super().__init__(f"no routable node serves layer(s) {shown}")


class PriceCapTooLow(PlanningError):
    """Routes exist, but the cheapest costs more per token than the cap."""

    def __init__(self, cap: int, cheapest: int) -> None:
        self.cap = cap
        self.cheapest = cheapest
        super().__init__(
            f"the cheapest route costs {cheapest} per token, above max_price_per_token={cap}; "
            f"raise the cap to at least {cheapest}"
        )


@dataclass(frozen=True)
class PoolNode:
    """What the planner knows of one routable node."""

    peer_id: str
    operator: str
    multiaddrs: tuple[str, ...]
    layer_start: int
    layer_end: int  # exclusive
    price_per_token: int
    step_ms: float  # one decode step over the node's whole range, batch 1
    rtt_ms: float  # market-to-node latency estimate
    utilisation: float = 0.0  # 0..1 estimated share of capacity in use
    reliability: float = 1.0  # 0..1
    free_sessions: int = 1

    @property
    def expected_ms(self) -> float:
        rho = min(max(self.utilisation, 0.0), 0.95)
        return self.rtt_ms + self.step_ms / (1.0 - rho) / max(self.reliability, 0.05)


@dataclass(frozen=True)
class RouteHop:
    node: PoolNode
    layer_start: int
    layer_end: int


@dataclass(frozen=True)
class PlannedRoute:
    hops: tuple[RouteHop, ...]

    @property
    def price_per_token(self) -> int:
        return sum(h.node.price_per_token for h in self.hops)

    @property
    def expected_ms_per_token(self) -> float:
        return sum(h.node.expected_ms for h in self.hops)

    @property
    def peers(self) -> frozenset[str]:
        return frozenset(h.node.peer_id for h in self.hops)


@dataclass(frozen=True)
class Plan:
    primary: PlannedRoute
    alternates: tuple[PlannedRoute, ...] = field(default=())


class Pool:
    """One model's routable nodes, indexed for fast route searches. Immutable after construction."""

    def __init__(self, num_layers: int, nodes: Sequence[PoolNode], spread_epsilon: float = 0.10) -> None:
        if num_layers < 1:
            raise ValueError("num_layers must be at least 1")
        self.num_layers = num_layers
        self.spread_epsilon = spread_epsilon
        usable = [n for n in nodes if 0 <= n.layer_start < n.layer_end <= num_layers]
        # Sort by (end, start) so each group (same range) is one contiguous slice.
        usable.sort(key=lambda n: (n.layer_end, n.layer_start))
        self.nodes: list[PoolNode] = usable
        count = len(usable)
        self._time = np.fromiter((n.expected_ms for n in usable), dtype=np.float64, count=count)
        # Prices can exceed float precision; the float copy only steers the search, exact ints decide.
        self._price = np.fromiter((float(n.price_per_token) for n in usable), dtype=np.float64, count=count)
        self._peer_index = {n.peer_id: i for i, n in enumerate(usable)}
        keys = [(n.layer_start, n.layer_end) for n in usable]
        offsets = [i for i in range(count) if i == 0 or keys[i] != keys[i - 1]]
        self._offsets = np.asarray(offsets, dtype=np.intp)
        self._bounds = [*offsets, count]
        self._gstart = np.asarray([keys[o][0] for o in offsets], dtype=np.intp)
        self._gend = [keys[o][1] for o in offsets]
        by_end: list[list[int]] = [[] for _ in range(num_layers + 1)]
        for g, end in enumerate(self._gend):
            by_end[end].append(g)
        self._by_end = [np.asarray(gs, dtype=np.intp) for gs in by_end]
        coverage = np.zeros(num_layers + 1, dtype=np.int64)
        for n in usable:
            coverage[n.layer_start] += 1
            coverage[n.layer_end] -= 1
        self.coverage: list[int] = np.cumsum(coverage)[:num_layers].tolist()

    # ------------------------------------------------------------------ route selection

    def route(
        self,
        max_price_per_token: int | None = None,
        alternates: int = 0,
        exclude_peers: Iterable[str] = (),
        rng: random.Random | None = None,
    ) -> Plan:
        """The fastest route under the price cap, and up to ``alternates`` node-disjoint alternates."""
        missing = [layer for layer, c in enumerate(self.coverage) if c == 0]
        if missing:
            raise NoCoverage(missing)
        rng = rng or random.Random()
        excluded = np.zeros(len(self.nodes), dtype=bool)
        for peer in exclude_peers:
            index = self._peer_index.get(peer)
            if index is not None:
                excluded[index] = True
        primary = self._best(excluded, max_price_per_token, rng)
        routes = [primary]
        for _ in range(alternates):
            for hop in routes[-1].hops:
                excluded[self._peer_index[hop.node.peer_id]] = True
            try:
                routes.append(self._best(excluded, max_price_per_token, rng))
            except PlanningError:
                break
        return Plan(primary=routes[0], alternates=tuple(routes[1:]))

    def _best(self, excluded: NDArray[np.bool_], cap: int | None, rng: random.Random) -> PlannedRoute:
        fastest = self._search(self._time, excluded, rng)
        if fastest is None:
            raise NoCoverage(self._uncovered(excluded))
        if cap is None or fastest.price_per_token <= cap:
            return fastest
        # Cheapest route first (time only breaks ties), to know whether any route fits.
        tiny = 1e-9 / max(float(self._time.max(initial=1.0)), 1e-9)
        cheapest = self._search(self._price + tiny * self._time, excluded, None)
        if cheapest is None or cheapest.price_per_token > cap:
            raise PriceCapTooLow(cap, cheapest.price_per_token if cheapest else 0)
        best = cheapest
        # Bisect lambda (ms per price unit) on a log scale between "time only" and "price only".
        positive = self._price[self._price > 0]
        low = 1e-6 * float(self._time.min(initial=1.0)) / float(positive.max(initial=1.0))
        high = 1e6 * float(self._time.max(initial=1.0)) / float(positive.min(initial=1.0))
        for _ in range(_LAMBDA_STEPS):
            mid = math.sqrt(low * high)
            candidate = self._search(self._time + mid * self._price, excluded, None)
            if candidate is not None and candidate.price_per_token <= cap:
                if candidate.expected_ms_per_token < best.expected_ms_per_token:
                    best = candidate
                high = mid
            else:
                low = mid
        return best

    def _search(
        self, cost: NDArray[np.float64], excluded: NDArray[np.bool_], rng: random.Random | None
    ) -> PlannedRoute | None:
        """The DP of the module docstring over ``cost`` per node; None when some layer is uncovered."""
        if len(self.nodes) == 0:
            return None
        masked = np.where(excluded, _INF, cost)
        gmin = np.minimum.reduceat(masked, self._offsets)  # (G,) cheapest node per group
        size = self.num_layers
        dist = np.full(size + 1, _INF)
        dist[0] = 0.0
        choice = np.full(size + 1, -1, dtype=np.intp)
        for end in range(1, size + 1):
            groups = self._by_end[end]
            if groups.size == 0:
                continue
            # suffix[s] = min(dist[s:end]): the best place to enter a group that starts at s
            suffix = np.minimum.accumulate(dist[end - 1 :: -1])[::-1]
            values = suffix[self._gstart[groups]] + gmin[groups]
            k = int(np.argmin(values))
            if values[k] < _INF:
                dist[end] = values[k]
                choice[end] = groups[k]
        if not dist[size] < _INF:
            return None
        hops: list[RouteHop] = []
        end = size
        while end > 0:
            group = int(choice[end])
            start = int(self._gstart[group])
            enter = start + int(np.argmin(dist[start:end]))
            node = self._pick(group, masked, float(gmin[group]), rng)
            hops.append(RouteHop(node=node, layer_start=enter, layer_end=end))
            end = enter
        hops.reverse()
        return PlannedRoute(hops=tuple(hops))

    def _pick(
        self, group: int, cost: NDArray[np.float64], best: float, rng: random.Random | None
    ) -> PoolNode:
        """A node of ``group``: the cheapest, or (with ``rng``) one of the near-cheapest by free capacity."""
        lo, hi = self._bounds[group], self._bounds[group + 1]
        costs = cost[lo:hi]
        if rng is None or hi - lo == 1:
            return self.nodes[lo + int(np.argmin(costs))]
        near = np.flatnonzero(costs <= best * (1.0 + self.spread_epsilon) + 1e-12)
        weights = [max(self.nodes[lo + int(i)].free_sessions, 0) + 1 for i in near]
        return self.nodes[lo + int(rng.choices(near.tolist(), weights=weights)[0])]

    def _uncovered(self, excluded: NDArray[np.bool_]) -> list[int]:
        covered = np.zeros(self.num_layers + 1, dtype=np.int64)
        for i, n in enumerate(self.nodes):
            if not excluded[i]:
                covered[n.layer_start] += 1
                covered[n.layer_end] -= 1
        counts = np.cumsum(covered)[: self.num_layers]
        return [int(layer) for layer in np.flatnonzero(counts == 0)]

    # ------------------------------------------------------------------ allocation advice

    def throughput(self) -> list[float]:
        """Per layer, the summed tokens/s of every node serving it."""
        delta = np.zeros(self.num_layers + 1)
        for n in self.nodes:
            rate = 1000.0 / max(n.step_ms, 1e-3)
            delta[n.layer_start] += rate
            delta[n.layer_end] -= rate
        return [float(x) for x in np.cumsum(delta)[: self.num_layers]]

    def allocation(self, max_layers: int) -> tuple[int, int]:
        """The ``[start, end)`` a joining node holding ``max_layers`` layers should serve."""
        if max_layers < 1:
            raise ValueError("max_layers must be at least 1")
        width = min(max_layers, self.num_layers)
        tp = np.asarray(self.throughput())
        windows = np.lib.stride_tricks.sliding_window_view(tp, width)  # (L - width + 1, width)
        weakest = windows.min(axis=1)
        total = windows.sum(axis=1)
        start = int(np.lexsort((total, weakest))[0])
        return start, start + width


__all__ = [
    "NoCoverage",
    "Plan",
    "PlannedRoute",
    "PlanningError",
    "Pool",
    "PoolNode",
    "PriceCapTooLow",
    "RouteHop",
]
