"""`grpctest-soak` (`make soak`): sustained load through Envoy, and what it leaves behind.

Starts the local stack (3 replicas behind Envoy), then runs ghz twice: by default
1,000 concurrent calls over 100 connections, 100,000 calls each time. Reports per run
every call's status, how evenly the replicas were used, and the resident memory of
Envoy and each replica before, after each run and some time after the last one.
`make test-heavy` (in `make test-all`) runs a small version (tests/test_soak.py).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grpctest_bench import ghz
from grpctest_common.settings import PATH, SECONDS, WHOLE_NUMBER, Setting, Table
from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.processes import signals_raise_interrupt
from grpctest_devtools.repo import REPO


@dataclass
class SoakRun:
    calls: int
    statuses: dict[str, int]
    errors: dict[str, int]
    rps: float
    p99_ms: float
    per_replica: dict[str, int]
    # Envoy's view of the run: retries, hedges (per-try timeouts), ejections.
    envoy: dict[str, int]


@dataclass(frozen=True)
class SoakSettings:
    calls: int = 100_000
    concurrency: int = 1000
    connections: int = 100
    runs: int = 2
    settle_seconds: float = 30


@dataclass
class SoakReport:
    settings: SoakSettings
    runs: list[SoakRun] = field(default_factory=list)
    # "before", "after run 1", ...: {"envoy": MB, "replica-1": MB, ...}
    rss_mb: dict[str, dict[str, float]] = field(default_factory=dict)


ENVOY_STATS = {
    "retries": "upstream_rq_retry",
    "retry overflow": "upstream_rq_retry_overflow",
    "per-try timeouts (hedged)": "upstream_rq_per_try_timeout",
    "ejections": "outlier_detection.ejections_enforced_total",
}


def envoy_stats(stack: LocalStack) -> dict[str, int]:
    stats = stack.admin.stats("cluster.grpctest.")
    return {name: stats.get(f"cluster.grpctest.{stat}", 0) for name, stat in ENVOY_STATS.items()}


def one_run(stack: LocalStack, calls: int, concurrency: int, connections: int) -> SoakRun:
    before = stack.admin.requests_per_host()
    stats_before = envoy_stats(stack)
    result = ghz.run(stack.target, calls=calls, concurrency=concurrency, connections=connections)
    after = stack.admin.requests_per_host()
    stats_after = envoy_stats(stack)
    names = {stack.replica_target(i): r.name for i, r in enumerate(stack.replicas)}
    return SoakRun(
        calls=int(result.get("count", 0)),
        statuses=result.get("statusCodeDistribution") or {},
        errors=dict(ghz.failures(result)),
        rps=round(result.get("rps", 0.0), 1),
        p99_ms=round(ghz.p99_ms(result), 1),
        per_replica=dict(sorted((names[h], n - before.get(h, 0)) for h, n in after.items())),
        envoy={name: n - stats_before[name] for name, n in stats_after.items()},
    )


def soak(settings: SoakSettings, log_dir: Path) -> SoakReport:
    """Runs the soak on a fresh local stack (its logs in log_dir) and reports."""
    report = SoakReport(settings)
    stack = LocalStack.on_free_ports(
        log_dir=log_dir,
        server_args=["--log-level", "WARNING", "--drain-seconds", "0"],
        envoy_args=["--log-level", "error"],
    )
    with stack:
        report.rss_mb["before"] = stack.resident_mb()
        for run in range(1, settings.runs + 1):
            report.runs.append(
                one_run(stack, settings.calls, settings.concurrency, settings.connections)
            )
            report.rss_mb[f"after run {run}"] = stack.resident_mb()
        time.sleep(settings.settle_seconds)
        report.rss_mb[f"{settings.settle_seconds:.0f} s later"] = stack.resident_mb()
    return report


def print_report(report: SoakReport) -> None:
    for i, run in enumerate(report.runs, start=1):
        print(
            f"run {i}: {run.calls} calls, statuses {run.statuses}, {run.rps:.0f} calls/s, "
            f"p99 {run.p99_ms:.0f} ms, per replica {run.per_replica}; Envoy: {run.envoy}"
        )
        for error, n in run.errors.items():
            print(f"  {n} x {error}")
    names = list(next(iter(report.rss_mb.values())))
    print("resident memory (MB): " + " | ".join(["when", *names]))
    for when, sizes in report.rss_mb.items():
        print(f"  {when}: " + " | ".join(f"{sizes.get(n, 0):.0f}" for n in names))


DEFAULTS = SoakSettings()
# The soak's knobs (no environment variables: it runs from `make soak`).
SETTINGS = Table(
    Setting("--calls", WHOLE_NUMBER, DEFAULTS.calls, "calls per run", env=None),
    Setting("--concurrency", WHOLE_NUMBER, DEFAULTS.concurrency, "calls in flight", env=None),
    Setting("--connections", WHOLE_NUMBER, DEFAULTS.connections, "HTTP/2 connections", env=None),
    Setting("--runs", WHOLE_NUMBER, DEFAULTS.runs, "runs, one after another", env=None),
    Setting(
        "--settle-seconds",
        SECONDS,
        DEFAULTS.settle_seconds,
        "how long after the runs to measure memory again",
        env=None,
    ),
    Setting(
        "--out",
        PATH,
        REPO / "bench" / "results" / "soak.json",
        "where the report goes",
        env=None,
        shown="bench/results/soak.json",
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = SETTINGS.parser("grpctest-soak", __doc__.splitlines()[0])
    args = SETTINGS.parse(parser, argv)
    settings = SoakSettings(
        args.calls, args.concurrency, args.connections, args.runs, args.settle_seconds
    )
    try:
        with signals_raise_interrupt(), tempfile.TemporaryDirectory() as log_dir:
            report = soak(settings, Path(log_dir))
    except KeyboardInterrupt:
        print("interrupted: every process stopped", file=sys.stderr)
        return 130
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(asdict(report), indent=2) + "\n")
    failed = sum(run.calls - run.statuses.get("OK", 0) for run in report.runs)
    return 1 if failed else 0
