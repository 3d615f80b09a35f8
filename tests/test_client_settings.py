"""Both clients read their settings by one spec (docs/settings.md): for the same bad
value, flag or environment variable, the Python and the Go client exit 2 with the same
message; both take seconds plain (`0.5`) or with a unit (`500ms`).

The message is the one after `error: ` (argparse writes `grpctest-client: error: MESSAGE`,
Go `error: MESSAGE`, each followed or preceded by its usage).
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from grpctest_devtools.clients import CLIENTS, client_argv

# Nothing listens on port 1 of loopback: a call there fails at once (UNAVAILABLE).
NOWHERE = "127.0.0.1:1"
BOOLEANS = "0 1 F FALSE False T TRUE True f false t true"
SECONDS = "seconds (like 5, 0.5 or 500ms)"
USAGE_ERROR = re.compile(r"^(?:grpctest-client: )?error: (.*)$", re.M)

BAD_VALUES = [
    (["--count", "abc"], {}, '--count: want a whole number, got "abc"'),
    ([], {"GRPCTEST_COUNT": "abc"}, 'GRPCTEST_COUNT (for --count): want a whole number, got "abc"'),
    (["--timeout", "soon"], {}, f'--timeout: want {SECONDS}, got "soon"'),
    ([], {"GRPCTEST_TIMEOUT": "5 s"},
     f'GRPCTEST_TIMEOUT (for --timeout): want {SECONDS}, got "5 s"'),
    (["--interval", "1d"], {}, f'--interval: want {SECONDS}, got "1d"'),
    ([], {"GRPCTEST_TLS": "yes"}, f'GRPCTEST_TLS (for --tls): want one of {BOOLEANS}, got "yes"'),
    (["--mode", "bidi"], {}, '--mode: want one of unary, server-stream, chat, got "bidi"'),
    ([], {"GRPCTEST_OUTPUT": "yaml"},
     'GRPCTEST_OUTPUT (for --output): want one of text, json, got "yaml"'),
    # Values of the right kind that no call can use, and settings that go together.
    (["--count", "0"], {}, "--count must be at least 1, got 0"),
    ([], {"GRPCTEST_COUNT": "-3"}, "--count must be at least 1, got -3"),
    (["--timeout", "0"], {}, "--timeout must be positive, got 0s"),
    # (`--timeout=-500ms`: argparse takes a separate `-500ms` for an option of its own)
    (["--timeout=-500ms"], {}, "--timeout must be positive, got -0.5s"),
    ([], {"GRPCTEST_INTERVAL": "-1m30s"}, "--interval must not be negative, got -90s"),
    (["--resume-attempts", "-1"], {}, "--resume-attempts must not be negative, got -1"),
    (["--cert", "client.crt"], {}, "--cert and --key go together"),
    (["--token", "t"], {},
     "--token needs TLS (--tls, --ca; Envoy's :8443): a token is never sent in the clear"),
    (["--ca", "/nonexistent/ca.crt"], {},
     "cannot read --ca /nonexistent/ca.crt: no such file or directory"),
    ([], {"GRPCTEST_KEY": "/", "GRPCTEST_CERT": "/nonexistent/client.crt"},
     "cannot read --cert /nonexistent/client.crt: no such file or directory"),
    (["--admin-port", "70000"], {}, "--admin-port must be between 0 (none) and 65535, got 70000"),
    # An xDS target with no bootstrap (an empty variable counts as unset).
    (["--target", "xds:///grpctest"], {"GRPC_XDS_BOOTSTRAP": "", "GRPC_XDS_BOOTSTRAP_CONFIG": ""},
     "--target xds:///grpctest needs an xDS bootstrap: set GRPC_XDS_BOOTSTRAP (a file) or "
     "GRPC_XDS_BOOTSTRAP_CONFIG (its JSON)"),
]  # fmt: skip


def run(client: str, flags: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GRPCTEST_")}
    return subprocess.run(
        client_argv(client, NOWHERE, *flags),
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("flags", "env", "message"), BAD_VALUES, ids=lambda v: str(v)[:40])
@pytest.mark.parametrize("client", CLIENTS)
def test_a_bad_value_is_the_same_usage_error_in_both_clients(
    client: str, flags: list[str], env: dict[str, str], message: str
) -> None:
    result = run(client, flags, env)
    assert result.returncode == 2, result.stderr
    assert USAGE_ERROR.findall(result.stderr)[:1] == [message], result.stderr
    assert "Traceback" not in result.stderr
    assert "panic" not in result.stderr


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        (["--timeout", "500ms"], {}),
        (["--timeout", "0.5"], {}),
        ([], {"GRPCTEST_TIMEOUT": "1.5s"}),
        # (No resume: the stream's one attempt fails as the unary call does.)
        (["--mode", "server-stream", "--interval", "10ms", "--timeout", "1s",
          "--resume-attempts", "0"], {}),
    ],
)  # fmt: skip
@pytest.mark.parametrize("client", CLIENTS)
def test_both_clients_take_seconds_plain_or_with_a_unit(
    client: str, flags: list[str], env: dict[str, str]
) -> None:
    # Accepted: the run gets as far as calling, which fails (nothing listens there).
    result = run(client, flags, env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: UNAVAILABLE: "), result.stderr


@pytest.mark.parametrize(
    ("flags", "status"),
    [
        # Pauses of 50, 100, 200, 400 ms fit in 1 s, the next (800 ms) would not: the
        # deadline ends the call while resuming, whatever the attempts took.
        (["--timeout", "1s"],
         "DEADLINE_EXCEEDED: deadline exceeded while resuming after UNAVAILABLE: "),
        # One resume, a minute left: the resumes run out first.
        (["--timeout", "60s", "--resume-attempts", "1"], "UNAVAILABLE: "),
    ],
    ids=["deadline first", "resumes used up first"],
)  # fmt: skip
@pytest.mark.parametrize("client", CLIENTS)
def test_a_stream_that_cannot_be_resumed_ends_with_one_status_in_both_clients(
    client: str, flags: list[str], status: str
) -> None:
    """docs/streaming.md: a deadline that ends a call while it is being resumed is
    DEADLINE_EXCEEDED, naming the break; with time left, the last break's status. (The
    clients' errors are text by design: `error: STATUS: details` on stderr.)"""
    result = run(client, ["--mode", "server-stream", *flags], {})
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"error: {status}"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no resume reported
