"""The Python and Go clients as a user runs them, and what they report (--output json);
the ways from a client to the replicas (CallPath), named as docs/load-balancing.md names
them."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grpctest_devtools.control_plane import BOOTSTRAP_VARIABLE, XDS_TARGET
from grpctest_devtools.repo import command

CLIENTS = {"py-client": "grpctest-client", "go-client": "go-client"}

# What a program passes to a client to read its replies as data (one JSON object a line).
JSON_OUTPUT = ("--output", "json")


@dataclass(frozen=True)
class CallPath:
    """One way from the clients to the replicas: `name` ("envoy", "xds", "client-side"),
    the target the clients dial, and what their environment needs for it (the xDS
    bootstrap)."""

    name: str
    target: str
    environment: Mapping[str, str] = field(default_factory=dict)


def through_envoy(target: str) -> CallPath:
    """Through Envoy, which balances every call: one connection from each client."""
    return CallPath("envoy", target)


def proxyless(bootstrap: Path | str) -> CallPath:
    """Proxyless over xDS (xds:///grpctest): the control plane that the bootstrap file
    names sends the replicas, their health and how to balance."""
    return CallPath("xds", XDS_TARGET, {BOOTSTRAP_VARIABLE: str(bootstrap)})


def client_side(replicas: Sequence[str]) -> CallPath:
    """Balanced by the client over a fixed list of ip:port (ipv4:A,B,...), as over the
    addresses a DNS name resolves to (dns:///NAME:PORT in compose and Kubernetes, where
    one name has every replica's address; on loopback the replicas differ by port,
    which DNS cannot say)."""
    return CallPath("client-side", "ipv4:" + ",".join(replicas))


def client_argv(name: str, target: str, *flags: str) -> list[str]:
    """The command line of one client; both take the same --flags (Go's flag accepts --)."""
    return [command(CLIENTS[name]), "--target", target, *flags]


def run_client(
    name: str, target: str, *flags: str, timeout: float = 120, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs the Python or Go client (with `env` added to its environment) and captures
    its output."""
    return subprocess.run(
        client_argv(name, target, *flags),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
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
