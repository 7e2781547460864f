"""The route planner: covering chains, cheapest-in-time under a price cap, alternates, allocation."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.planner import NoCoverage, Pool, PoolNode, PriceCapTooLow


def node(name: str, start: int, end: int, *, price: int = 10, step: float = 5.0, rtt: float = 1.0,
         free: int = 4) -> PoolNode:  # fmt: skip
    return PoolNode(
        peer_id=f"12D3KooW{name}",
        operator="0x" + "0" * 40,
        multiaddrs=("/ip4/127.0.0.1/tcp/1",),
        layer_start=start,
        layer_end=end,
        price_per_token=price,
        step_ms=step,
        rtt_ms=rtt,
        free_sessions=free,
    )


def _covers(route_hops: tuple, layers: int) -> bool:  # type: ignore[type-arg]
    position = 0
    for hop in route_hops:
        if hop.layer_start != position or not (
            hop.node.layer_start <= hop.layer_start < hop.layer_end <= hop.node.layer_end
        ):
            return False
        position = hop.layer_end
    return position == layers


def test_route_tiles_all_layers_with_overlapping_ranges() -> None:
    pool = Pool(8, [node("a", 0, 5), node("b", 3, 8)])
    hops = pool.route().primary.hops
    assert [(h.layer_start, h.layer_end) for h in hops] == [(0, 5), (5, 8)]
    assert _covers(hops, 8)


def test_faster_chain_wins_over_fewer_hops_when_it_is_faster() -> None:
    slow_single = node("slow", 0, 8, step=100.0)
    pool = Pool(8, [slow_single, node("x", 0, 4, step=5.0), node("y", 4, 8, step=5.0)])
    assert [h.node.peer_id for h in pool.route().primary.hops] == ["12D3KooWx", "12D3KooWy"]


def test_uncovered_layer_is_named() -> None:
    pool = Pool(8, [node("a", 0, 3), node("b", 4, 8)])
    with pytest.raises(NoCoverage, match="layer"):
        pool.route()
    assert pool.coverage[3] == 0


def test_price_cap_picks_the_fastest_route_that_fits() -> None:
    fast = node("fast", 0, 8, price=100, step=1.0)
    mid = node("mid", 0, 8, price=50, step=5.0)
    cheap = node("cheap", 0, 8, price=10, step=50.0)
    pool = Pool(8, [fast, mid, cheap])
    assert pool.route().primary.hops[0].node == fast
    assert pool.route(max_price_per_token=60).primary.hops[0].node == mid
    assert pool.route(max_price_per_token=10).primary.hops[0].node == cheap


def test_price_cap_below_the_cheapest_route_says_the_cheapest_price() -> None:
    pool = Pool(4, [node("a", 0, 2, price=7), node("b", 2, 4, price=8)])
    with pytest.raises(PriceCapTooLow) as info:
        pool.route(max_price_per_token=14)
    assert info.value.cheapest == 15


def test_alternates_are_node_disjoint() -> None:
    nodes = [node(f"{i}{half}", 4 * half, 4 * half + 4, step=1.0 + i) for i in range(3) for half in (0, 1)]
    plan = Pool(8, nodes).route(alternates=2, rng=random.Random(1))
    routes = [plan.primary, *plan.alternates]
    assert len(routes) == 3
    assert all(a.peers.isdisjoint(b.peers) for i, a in enumerate(routes) for b in routes[i + 1 :])


def test_excluded_peer_is_never_routed_to() -> None:
    pool = Pool(4, [node("a", 0, 4, step=1.0), node("b", 0, 4, step=9.0)])
    assert pool.route(exclude_peers=["12D3KooWa"]).primary.hops[0].node.peer_id == "12D3KooWb"


def test_spreading_stays_within_epsilon_of_the_best_replica() -> None:
    pool = Pool(
        4, [node("best", 0, 4, step=10.0), node("near", 0, 4, step=10.5), node("far", 0, 4, step=13.0)]
    )
    rng = random.Random(0)
    chosen = {pool.route(rng=rng).primary.hops[0].node.peer_id for _ in range(100)}
    assert chosen == {"12D3KooWbest", "12D3KooWnear"}


def test_load_spreads_over_equal_replicas() -> None:
    pool = Pool(4, [node(f"r{i}", 0, 4) for i in range(4)])
    rng = random.Random(0)
    chosen = {pool.route(rng=rng).primary.hops[0].node.peer_id for _ in range(200)}
    assert len(chosen) == 4


def test_allocation_fills_the_thinnest_layers() -> None:
    pool = Pool(12, [node("a", 0, 8), node("b", 0, 8), node("c", 8, 12, step=50.0)])
    assert pool.allocation(max_layers=4) == (8, 12)
    assert Pool(6, []).allocation(max_layers=10) == (0, 6)


def _brute_force_best(pool: Pool) -> float:
    """Minimum expected time over every chain, by exhaustive search (small pools only)."""
    best = float("inf")

    def walk(position: int, total: float) -> None:
        nonlocal best
        if position == pool.num_layers:
            best = min(best, total)
            return
        for n in pool.nodes:
            if n.layer_start <= position < n.layer_end:
                walk(n.layer_end, total + n.expected_ms)

    walk(0, 0.0)
    return best


@settings(max_examples=60, deadline=None)
@given(
    layers=st.integers(2, 8),
    specs=st.lists(
        st.tuples(st.integers(0, 7), st.integers(1, 8), st.floats(0.5, 50.0), st.floats(0.0, 30.0)),
        min_size=1,
        max_size=7,
    ),
)
def test_route_is_as_fast_as_exhaustive_search(
    layers: int, specs: list[tuple[int, int, float, float]]
) -> None:
    nodes = [
        node(f"n{i}", min(s, layers - 1), min(layers, max(s + 1, min(s, layers - 1) + w)), step=t, rtt=r)
        for i, (s, w, t, r) in enumerate(specs)
    ]
    pool = Pool(layers, nodes, spread_epsilon=0.0)  # no load spreading: the optimum itself
    expected = _brute_force_best(pool)
    if expected == float("inf"):
        with pytest.raises(NoCoverage):
            pool.route()
        return
    route = pool.route().primary
    assert _covers(route.hops, layers)
    assert route.expected_ms_per_token == pytest.approx(expected)
