"""Fixtures for the end-to-end tests: real replicas and a real Envoy on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from grpctest_devtools.localstack import LocalStack

# Figures measured by the tests (sizes, seconds, call counts), printed after the run.
_FIGURES: dict[str, object] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("figures measured")
        for name, value in _FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def figures() -> dict[str, object]:
    """Record a measured figure: figures["what"] = value; printed at the end of the run."""
    return _FIGURES


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A shared stack for tests that do not disturb it."""
    with LocalStack.on_free_ports(log_dir=tmp_path_factory.mktemp("logs")) as running:
        yield running


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A stack of its own, for tests that stop or kill replicas."""
    with LocalStack.on_free_ports(
        log_dir=tmp_path, server_args=["--drain-seconds", "3"]
    ) as running:
        yield running
