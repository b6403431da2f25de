"""Generated hostile input for the HTTP API: Schemathesis derives requests from the app's own
OpenAPI schema (bodies, query strings and paths, in and out of the schema) and each answer
must not be a 5xx.  Bounded for CI (QTTS_FUZZ_EXAMPLES per operation and mode, default 10);
raise it for a longer run."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

EXAMPLES = int(os.environ.get("QTTS_FUZZ_EXAMPLES", "10"))

pytestmark = pytest.mark.tally("bad_input")


def test_no_request_the_schema_allows_or_forbids_gets_a_5xx(service_url):
    schema = schemathesis.openapi.from_url(f"{service_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10  # the jobs, voices and speech endpoints are all in the schema
    failures, calls = [], 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case) -> None:  # noqa: ANN001
                nonlocal calls
                calls += 1
                response = case.call(base_url=service_url, timeout=120)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} ({mode.value}) -> {response.status_code}: "
                                    f"{response.text[:200]}")

            try:
                check()
            except Unsatisfiable:  # nothing to break in this mode (an operation without parameters)
                continue
    assert not failures, "\n".join(failures[:10])
    assert calls >= len(operations)
