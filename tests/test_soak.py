"""A small soak (`make soak` is the full one): sustained concurrent load through Envoy
loses no call, uses every replica and leaves memory where it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from grpctest_bench.soak import SoakSettings, print_report, soak

# A minute of load on every core: make test-heavy (make test-all), not before every commit.
pytestmark = pytest.mark.heavy


def test_sustained_load_loses_nothing_and_memory_stays_bounded(tmp_path: Path, figures) -> None:
    settings = SoakSettings(calls=10_000, concurrency=200, connections=20, settle_seconds=3)
    report = soak(settings, tmp_path)
    print_report(report)
    for run in report.runs:
        assert run.statuses == {"OK": settings.calls}, run.errors
        assert run.envoy["retry overflow"] == 0
        # Every replica answered (how evenly is Envoy's round robin per worker, with
        # hedged and retried calls counted on each replica asked).
        assert len(run.per_replica) == 3, run
        assert all(n > 0 for n in run.per_replica.values()), run
    first, second = report.rss_mb["after run 1"], report.rss_mb["after run 2"]
    for process, size in second.items():
        assert size <= first[process] * 1.15 + 5, f"{process} grew: {first} -> {second}"
    figures["soak (small): calls/s per run"] = [run.rps for run in report.runs]
    figures["soak (small): resident MB"] = report.rss_mb
