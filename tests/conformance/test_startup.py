"""Starting up: settings both programs take alike, and a port they cannot have."""

from __future__ import annotations

import os
import socket
import subprocess

from grpctest_devtools.ports import LOOPBACK
from grpctest_devtools.repo import command
from grpctest_server.healthcheck import check_health

from .conftest import IMPLEMENTATIONS


def test_log_level_is_read_in_any_case(start_server) -> None:
    server = start_server(log_level="debug")
    assert check_health(server.target, "grpctest.Grpctest") == "SERVING"


def test_a_taken_port_exits_1_saying_which(implementation: str) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "GRPCTEST_PORT": str(port), "GRPCTEST_REPLICA": "taken"}
        # The timeout ends a server that would serve nothing instead of exiting.
        done = subprocess.run(
            [command(IMPLEMENTATIONS[implementation])],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert "failed to start" in done.stderr
    assert f"{LOOPBACK}:{port}" in done.stderr
