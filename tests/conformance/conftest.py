"""The conformance suite's servers: each implementation of the contract as the real
program (py-server's `grpctest-server`, `go-server`), on a free loopback port.

Every test of the suite runs once per implementation; a server conforms when it passes
them all. The settings go in as environment variables (GRPCTEST_*), which both
programs read the same way, so the suite checks those too.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from grpctest_devtools.ports import LOOPBACK, free_port
from grpctest_devtools.processes import Process
from grpctest_devtools.repo import command
from grpctest_devtools.waiting import wait_until
from grpctest_server.healthcheck import check_health
from grpctest_server.servicer import SERVICE_NAME

# Each implementation's program; both take the same settings.
IMPLEMENTATIONS = {"python": "grpctest-server", "go": "go-server"}
MAX_MESSAGE_BYTES = 64 * 1024


@dataclass
class Server:
    """One running server under test."""

    implementation: str
    process: Process
    port: int
    replica: str

    @property
    def target(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def sigterm(self) -> None:
        self.process.signal(signal.SIGTERM)


@contextlib.contextmanager
def running_server(implementation: str, log_dir: Path, **settings: str) -> Iterator[Server]:
    """Starts `implementation` with GRPCTEST_<NAME> set for each setting (on top of a
    free port, a replica name, a small message limit and no drain); stops it afterwards."""
    port = free_port()
    replica = f"{implementation}-conformance"
    env = {
        "GRPCTEST_PORT": str(port),
        "GRPCTEST_REPLICA": replica,
        "GRPCTEST_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
        # No drain at the stop, unless the test is about it (drain_seconds=...): the default
        # 3 s at each of the suite's server stops would be a third of its time.
        "GRPCTEST_DRAIN_SECONDS": "0",
        **{f"GRPCTEST_{name.upper()}": value for name, value in settings.items()},
    }
    log_path = log_dir / f"{implementation}-{port}.log"
    process = Process(implementation, [command(IMPLEMENTATIONS[implementation])], log_path, env)
    server = Server(implementation, process, port, replica)
    process.start()
    try:
        wait_until(
            lambda: (
                process.check_alive() and check_health(server.target, SERVICE_NAME, 1) == "SERVING"
            ),
            30,
            f"{implementation} server to be SERVING",
        )
        yield server
    finally:
        process.stop(timeout=30)


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def server(implementation: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server shared by the module's tests that do not disturb it."""
    with running_server(implementation, tmp_path_factory.mktemp("servers")) as started:
        yield started


@pytest.fixture
def start_server(implementation: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts servers of its own for one test (settings as keyword arguments)."""
    with contextlib.ExitStack() as stack:
        yield lambda **settings: stack.enter_context(
            running_server(implementation, tmp_path, **settings)
        )
