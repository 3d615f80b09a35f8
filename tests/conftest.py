"""Fixtures for the end-to-end tests: real replicas and a real Envoy on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.ports import free_port

REPLICAS = 3

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


def local_stack(log_dir: Path, **kwargs: object) -> LocalStack:
    """A stack of REPLICAS replicas and Envoy, every port a free one."""
    return LocalStack(
        ports=[free_port() for _ in range(REPLICAS)],
        envoy_port=free_port(),
        admin_port=free_port(),
        tls_port=free_port(),
        log_dir=log_dir,
        **kwargs,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A shared stack for tests that do not disturb it."""
    with local_stack(tmp_path_factory.mktemp("logs")) as running:
        yield running


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A stack of its own, for tests that stop or kill replicas."""
    with local_stack(tmp_path, server_args=["--drain-seconds", "3"]) as running:
        yield running
