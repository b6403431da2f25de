"""The reliability suite: hostile input, faults and load, each test counted in a tally that
is printed at the end of the run (bad-input classes handled, fault scenarios survived, jobs
lost, worst /health latency under load).

A test joins the tally with ``@pytest.mark.tally("bad_input" | "fault")`` and may record
numbers with the ``tally`` fixture (``tally.jobs_lost += n``, ``tally.health_worst_s``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.integration.conftest import (  # noqa: F401
    engine_shell,
    engine_voice,
    library_voice,
    service_settings,
    service_url,
    tiny_engine,
)


@dataclass
class Tally:
    passed: dict = field(default_factory=lambda: {"bad_input": [], "fault": []})
    failed: dict = field(default_factory=lambda: {"bad_input": [], "fault": []})
    jobs_lost: int = 0
    jobs_checked: int = 0
    health_worst_s: float | None = None


TALLY = Tally()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tally(kind): count this test in the reliability tally")


@pytest.fixture()
def tally() -> Tally:
    return TALLY


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("tally")
    if marker is None or report.when != "call" and not (report.when == "setup" and report.failed):
        return
    kind = marker.args[0]
    (TALLY.passed if report.passed else TALLY.failed)[kind].append(item.name)
