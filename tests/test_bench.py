"""A smoke run of the benchmark harness (tiny counts), so that `make bench` cannot rot.

It measures nothing worth reading: it checks that every scenario ran against real
servers, got answers without errors, and that the report files have the schema.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from grpctest_devtools.repo import command

SCENARIOS = {
    "article_sync_direct",
    "server_direct",
    "envoy_1_replica",
    "envoy_3_replicas",
    "rest_keepalive",
    "rest_new_connection",
    "server_direct_10KiB",
    "envoy_3_replicas_10KiB",
    "rest_keepalive_10KiB",
    "latency_c1_direct",
    "latency_c1_envoy",
}
FIELDS = {"name", "rps", "p50_ms", "p90_ms", "p99_ms", "errors", "cpu_ms_per_1k"}


def test_bench_smoke_run_writes_every_scenario(tmp_path: Path) -> None:
    result = subprocess.run(
        [command("grpctest-bench"), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "latest.json").read_text())
    scenarios = {s["name"]: s for s in report["scenarios"]}
    assert set(scenarios) == SCENARIOS
    for s in scenarios.values():
        assert set(s) >= FIELDS, s
        assert s["errors"] == 0, s
        assert s["rps"] > 0, s
        assert 0 < s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"], s
        assert s["cpu_ms_per_1k"] > 0, s
    assert len(report["goals"]) == 6
    assert "| server_direct |" in (tmp_path / "latest.md").read_text()
    assert (tmp_path / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
