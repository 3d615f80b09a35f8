"""The Python and Go clients as a user runs them, and what they report (--output json)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from grpctest_devtools.repo import command

CLIENTS = {"py-client": "grpctest-client", "go-client": "go-client"}

# What a program passes to a client to read its replies as data (one JSON object a line).
JSON_OUTPUT = ("--output", "json")


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


def records(output: str) -> list[dict[str, Any]]:
    """The JSON objects of a client's --output json (lines that are not JSON are skipped:
    a container's log may interleave other lines)."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def replies(output: str) -> list[dict[str, Any]]:
    """The replies of --output json: {"n", "replica", "message", "received", "sequence"}."""
    return [record for record in records(output) if not {"summary", "error"} & record.keys()]


def failure(output: str) -> dict[str, Any] | None:
    """Why a run of --output json failed: {"code", "message", "field_violations": [{"field",
    "reason", "description"}]}, the last object; None if it did not fail."""
    errors = [record["error"] for record in records(output) if "error" in record]
    return errors[-1] if errors else None


def calls_per_replica(output: str) -> dict[str, int]:
    """The replies per replica from the summary object of --output json ({} if none)."""
    summaries = [record["summary"] for record in records(output) if "summary" in record]
    return summaries[-1]["per_replica"] if summaries else {}
