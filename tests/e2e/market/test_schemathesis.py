"""Property-based fuzzing of every operation in the market's OpenAPI schema: no input may cause a 5xx.

Schemathesis generates requests from the schema (valid and invalid bodies, paths and queries) against a
real server seeded with a model, nodes and a job. Its pytest plugin does not run under pytest 9, so the
test drives schemathesis' hypothesis strategies itself, one operation at a time, and reports every
operation that answered 5xx with the request that did it (shrunk by hypothesis).
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.e2e.market.conftest import LiveMarket
from tests.e2e.market.seed import seed

EXAMPLES_PER_OPERATION = 40


@pytest.mark.timeout(120)
def test_no_operation_answers_5xx(live_market: LiveMarket) -> None:
    seed(live_market)
    schema = schemathesis.openapi.from_url(f"{live_market.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    failures: dict[str, str] = {}
    calls = 0
    started = time.monotonic()
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(checks=[not_a_server_error])

        try:
            fuzz()
        except Exception as exc:  # one failing operation must not hide the others
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:2000]
    elapsed = time.monotonic() - started
    assert failures == {}, f"{len(failures)} operation(s) answered 5xx after {calls} calls in {elapsed:.1f} s"
    assert calls >= len(operations) * 5
    print(f"schemathesis: {len(operations)} operations, {calls} calls, {elapsed:.1f} s, no 5xx")  # noqa: T201
