"""The Python and Go clients as a user runs them, and their per-replica summaries."""

from __future__ import annotations

import re
import subprocess

from grpctest_devtools.repo import command

CLIENTS = {"py-client": "grpctest-client", "go-client": "go-client"}

_SUMMARY_LINE = re.compile(r"^\s+(\S+): (\d+) (?:calls|replies)$")


def client_argv(name: str, target: str, *flags: str) -> list[str]:
    """The command line of one client; both take the same --flags (Go's flag accepts --)."""
    return [command(CLIENTS[name]), "--target", target, *flags]


def run_client(
    name: str, target: str, *flags: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Runs the Python or Go client and captures its output."""
    return subprocess.run(
        client_argv(name, target, *flags), capture_output=True, text=True, timeout=timeout
    )


def calls_per_replica(output: str) -> dict[str, int]:
    """Parses the clients' summary lines ('  replica-1: 10 calls', '... 10 replies')."""
    return {m[1]: int(m[2]) for m in map(_SUMMARY_LINE.match, output.splitlines()) if m}
