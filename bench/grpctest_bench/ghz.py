"""ghz (grpc-go; pinned in the Makefile) calling grpctest.Grpctest/GetServerResponse, and
what its JSON report says. The soak runs it to the end (`run`); the test harness's fault
drills run it as a background load (grpctest_harness.load) from the same command line.

    result = run("127.0.0.1:8080", calls=10_000, concurrency=200, connections=20)
    failures(result), p99_ms(result), result["rps"]
"""

from __future__ import annotations

import collections
import json
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grpctest_devtools.processes import DIE_WITH_PARENT
from grpctest_devtools.repo import REPO, command

METHOD = "grpctest.Grpctest.GetServerResponse"
Report = dict[str, Any]


def argv(
    target: str, *, concurrency: int, connections: int, deadline: float, amount: Sequence[str]
) -> list[str]:
    """ghz's command line: `concurrency` workers over `connections` connections, each call
    with `deadline` seconds, as many calls as `amount` says ("--total", "N" or "--duration",
    "60s"), its report as JSON. A stopped ghz (SIGINT) lets the calls in flight finish
    instead of cancelling them (which it would report as failed calls)."""
    return [
        command("ghz"), "--insecure",
        "--import-paths", str(REPO / "proto"), "--proto", "grpctest/grpctest.proto",
        "--call", METHOD, "--data", '{"message": "load"}',
        "--concurrency", str(concurrency), "--connections", str(connections),
        "--timeout", f"{deadline}s", *amount,
        "--duration-stop", "wait",
        "--format", "json", target,
    ]  # fmt: skip


def run(
    target: str,
    *,
    calls: int,
    concurrency: int,
    connections: int,
    deadline: float = 5.0,
    timeout: float = 3600,
) -> Report:
    """Makes `calls` calls and returns ghz's report; RuntimeError if ghz failed (its exit
    status) or did not end within `timeout` seconds (then it is killed)."""
    command_line = argv(
        target, concurrency=concurrency, connections=connections, deadline=deadline,
        amount=["--total", str(calls)],
    )  # fmt: skip
    # The report (one entry per call) goes to a file, not to a pipe.
    with tempfile.NamedTemporaryFile(prefix="ghz-", suffix=".json") as output:
        done = subprocess.run(
            [*DIE_WITH_PARENT, *command_line, "--output", output.name],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        report = Path(output.name).read_text()
    if done.returncode != 0 or not report:
        raise RuntimeError(f"ghz failed ({done.returncode}): {done.stderr[-2000:]}")
    result: Report = json.loads(report)
    return result


def failures(result: Report) -> collections.Counter[str]:
    """The failed calls by "STATUS: detail" (ghz's words)."""
    return collections.Counter(result.get("errorDistribution") or {})


def p99_ms(result: Report) -> float:
    """The 99th percentile of the calls' latencies, in milliseconds."""
    latencies = {p["percentage"]: p["latency"] for p in result.get("latencyDistribution") or []}
    return float(latencies.get(99, 0)) / 1e6


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (0 for none): the nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0
