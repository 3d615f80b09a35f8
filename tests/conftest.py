"""Fixtures for the end-to-end tests: real replicas and a real Envoy on free loopback
ports; for the container tests, a real Docker engine and the project's images."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grpctest_devtools.localstack import LocalStack
from grpctest_harness.base_images import ensure_base_images
from grpctest_harness.compose import ComposeProject
from grpctest_harness.docker_engine import DockerEngine

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
    """A stack of its own, for tests that stop or kill replicas: 3 py-server replicas
    and 1 go-server replica (go-1, the last), as the local run has them."""
    with LocalStack.on_free_ports(
        go_replicas=1, log_dir=tmp_path, server_args=["--drain-seconds", "3"]
    ) as running:
        yield running


@pytest.fixture(scope="session")
def engine_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("containers")


@pytest.fixture(scope="session")
def engine(engine_workdir: Path) -> Iterator[None]:
    """A running Docker engine (started here if none runs, and stopped again)."""
    with DockerEngine(engine_workdir / "dockerd.log"):
        yield


@pytest.fixture(scope="session")
def images(engine, engine_workdir: Path, figures) -> None:
    """Every image the compose file and the swarm stack run: the base images (offline
    stand-ins where no registry is reachable) and the project's own, built."""
    figures["base images"] = ensure_base_images(engine_workdir)
    start = time.monotonic()
    ComposeProject("grpctest-images")("--profile", "clients", "build")
    figures["image build seconds"] = round(time.monotonic() - start, 1)
