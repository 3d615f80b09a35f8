"""Starting up: settings both programs take alike (the same forms, and for the same bad
value the same usage error: exit 2 and the same message), and a port they cannot have."""

from __future__ import annotations

import os
import re
import socket
import subprocess

import pytest

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


SECONDS = "seconds (like 5, 0.5 or 500ms)"
BOOLEANS = "0 1 F FALSE False T TRUE True f false t true"
# The message after `error: ` (argparse writes `grpctest-server: error: MESSAGE` after its
# usage, Go `error: MESSAGE` before it).
USAGE_ERROR = re.compile(r"^(?:grpctest-server: )?error: (.*)$", re.MULTILINE)

BAD_SETTINGS = [
    (["--port", "http"], {}, '--port: want a whole number, got "http"'),
    ([], {"GRPCTEST_PORT": "65536"},
     "--port must be between 0 (any free port) and 65535, got 65536"),
    (["--metrics-port", "-1"], {}, "--metrics-port must be between 0 (none) and 65535, got -1"),
    (["--max-message-bytes", "0"], {}, "--max-message-bytes must be positive"),
    # (`--drain-seconds=-500ms`: argparse takes a separate `-500ms` for an option of its own)
    (["--drain-seconds=-500ms"], {}, "--drain-seconds and --grace-seconds must not be negative"),
    ([], {"GRPCTEST_GRACE_SECONDS": "-1"},
     "--drain-seconds and --grace-seconds must not be negative"),
    (["--drain-seconds", "soon"], {}, f'--drain-seconds: want {SECONDS}, got "soon"'),
    ([], {"GRPCTEST_GRACE_SECONDS": "1d"},
     f'GRPCTEST_GRACE_SECONDS (for --grace-seconds): want {SECONDS}, got "1d"'),
    ([], {"GRPCTEST_REFLECTION": "yes"},
     f'GRPCTEST_REFLECTION (for --reflection): want one of {BOOLEANS}, got "yes"'),
    (["--log-level", "verbose"], {},
     '--log-level: want one of DEBUG, INFO, WARNING, ERROR, got "verbose"'),
    (["--tls-cert", "server.crt"], {}, "--tls-cert and --tls-key go together"),
    (["--tls-cert", "/nonexistent/server.crt", "--tls-key", "/nonexistent/server.key"], {},
     "--tls-cert /nonexistent/server.crt: no such file"),
]  # fmt: skip


@pytest.mark.parametrize(("flags", "env", "message"), BAD_SETTINGS, ids=lambda v: str(v)[:40])
def test_a_bad_setting_is_the_same_usage_error(
    implementation: str, flags: list[str], env: dict[str, str], message: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GRPCTEST_")}
    # The timeout ends a server that would start instead of refusing the setting.
    done = subprocess.run(
        [command(IMPLEMENTATIONS[implementation]), *flags],
        env={**clean, "GRPCTEST_PORT": "0", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert USAGE_ERROR.findall(done.stderr)[:1] == [message], done.stderr


@pytest.mark.parametrize("drain", ["0.25", "250ms", "0.1s"])
def test_durations_are_taken_plain_or_with_a_unit(start_server, drain: str) -> None:
    # (The drain is served at the stop: a short one.)
    server = start_server(drain_seconds=drain, grace_seconds="1m30s")
    assert check_health(server.target, "grpctest.Grpctest") == "SERVING"
