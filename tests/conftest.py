"""Fixtures for the end-to-end tests: real replicas and a real Envoy on free loopback ports."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import stack as local_stack
from stack import LocalStack, child_env, free_port

REPLICAS = 3

# Figures measured by the tests (sizes, seconds, call counts), printed after the run.
FIGURES: dict[str, object] = {}


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("figures measured")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


def start_stack(log_dir: Path, **kwargs) -> LocalStack:
    ports = [free_port() for _ in range(REPLICAS)]
    return LocalStack(ports=ports, envoy_port=free_port(), admin_port=free_port(),
                      tls_port=free_port(), log_dir=log_dir, **kwargs).__enter__()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A shared stack for tests that do not disturb it."""
    running = start_stack(tmp_path_factory.mktemp("logs"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A stack of its own, for tests that stop or kill replicas."""
    running = start_stack(tmp_path, server_args=["--drain-seconds", "3"])
    try:
        yield running
    finally:
        running.stop()


def tool(name: str) -> str:
    """A binary `make setup` installs into bin/; missing means the setup did not run."""
    path = shutil.which(name) or str(local_stack.REPO / "bin" / name)
    if not Path(path).exists():
        pytest.fail(f"{name} not found: run `make setup` (or `make test`, which does)")
    return path


def run_client(name: str, target: str, *flags: str,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs the Python or Go client as a user would and captures its output."""
    if name == "go-client":
        tool("go-client")
    return subprocess.run(local_stack.client_argv(name, target, *flags), env=child_env(),
                          capture_output=True, text=True, timeout=timeout)
