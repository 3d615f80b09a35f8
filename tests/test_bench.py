"""A smoke run of the benchmark harness (short runs), so that `make bench` cannot rot.

It measures nothing worth reading: it checks that every scenario ran against real
servers and got answers without errors, that every call's CPU is split by role and
predicted, and that the report files have their schema.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from grpctest_devtools.repo import command

# Minutes of load on every core: make test-heavy (make test-all), not before every commit.
pytestmark = pytest.mark.heavy

SCALING = {f"envoy_{r}r_{w}w" for r in (1, 2, 3, 5) for w in (1, 2)}
THROUGH_ENVOY = SCALING | {
    "envoy_answers_itself", "envoy_go", "envoy_go_trace_every_call", "rest_behind_envoy",
    "rest_transcoded", "stream_envoy_3r_2w", "envoy_3r_2w_10KiB", "envoy_3r_2w_tls_jwt",
    "envoy_3r_2w_traced", "envoy_3r_2w_metrics", "envoy_3r_2w_concurrency_2",
    "envoy_3r_2w_one_connection", "envoy_3r_1w_one_connection", "envoy_3r_2w_default_windows",
    "envoy_3r_2w_no_access_log", "latency_c1_envoy", "mixed_round_robin", "mixed_least_request",
    "lb_envoy", "lb_envoy_c1",
}  # fmt: skip
DIRECT = {
    "article_sync_direct", "python_floor_direct", "server_direct_1w", "server_direct",
    "go_direct", "rest_keepalive", "rest_new_connection", "server_direct_10KiB",
    "rest_keepalive_10KiB", "server_direct_1w_asyncio", "server_direct_1w_metrics",
    "latency_c1_direct", "server_direct_1w_unchecked", "go_direct_unchecked",
    "lb_xds", "lb_xds_c1", "lb_client_side", "lb_client_side_c1",
}  # fmt: skip
FIELDS = {
    "name", "group", "rps", "messages_per_s", "p50_ms", "p90_ms", "p99_ms", "errors",
    "cpu_us_per_call", "predicted_rps", "measured_over_predicted", "limit", "server_cpu_shares",
    "cores_busy", "cores_busy_on_path", "envoy_read_write_calls_per_call",
}  # fmt: skip


# Its own subprocess timeout (600 s) must be the one that counts, not pytest's global 300 s.
@pytest.mark.timeout(660)
def test_bench_smoke_run_measures_every_scenario(tmp_path: Path) -> None:
    result = subprocess.run(
        [command("grpctest-bench"), "--smoke", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "latest.json").read_text())
    scenarios = {s["name"]: s for s in report["scenarios"]}
    assert set(scenarios) == THROUGH_ENVOY | DIRECT
    for name, s in scenarios.items():
        assert set(s) >= FIELDS, s
        assert s["errors"] == 0, s
        assert s["rps"] > 0, s
        assert 0 < s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"], s
        cpu = s["cpu_us_per_call"]
        # Every call's CPU, split by role: h2load, Envoy where it is on the path, servers.
        assert cpu["load"] > 0, s
        assert (cpu.get("envoy", 0) > 0) == (name in THROUGH_ENVOY), s
        assert bool(s["envoy_read_write_calls_per_call"]) == (name in THROUGH_ENVOY), s
        assert (cpu.get("server", 0) > 0) == (name != "envoy_answers_itself"), s
        assert s["predicted_rps"] > 0, s
        assert s["limit"] in {"machine", *cpu}, s
        assert 0 < s["cores_busy_on_path"] <= s["cores_busy"] + 0.05, s
    stream = scenarios["stream_envoy_3r_2w"]
    assert stream["messages_per_s"] == pytest.approx(100 * stream["rps"], rel=1e-3)
    assert len(report["goals"]) == 12
    assert {c["name"] for c in report["comparisons"]} >= {
        "envoy_3r_2w_tls_jwt", "envoy_3r_2w_traced", "server_direct_1w_asyncio", "rest_transcoded",
        "server_direct_1w_unchecked", "go_direct_unchecked",
    }  # fmt: skip
    mixed = report["mixed_rotation"]
    for policy in ("round_robin", "least_request"):
        shares = mixed[policy]["call_shares"]
        assert sum(shares.values()) == pytest.approx(1, abs=0.01), mixed
        assert shares["go"] > 0, mixed  # the Go replica answered its share
        assert all(mixed[policy]["server_cpu_us_per_answered_call"].values()), mixed
    assert mixed["recommendation"]
    # The three ways to the same replicas, with one client (grpctest-load).
    assert set(report["balancing"]) == {"envoy", "xds", "client-side"}
    assert report["balancing"]["envoy"]["cpu_per_call_vs_envoy"] == 1.0
    markdown = (tmp_path / "latest.md").read_text()
    assert "| envoy_3r_2w |" in markdown
    assert "## Goals" in markdown
    assert "## Mixed rotation" in markdown
    assert "## Which way to the replicas" in markdown
    for chart in ("latest.png", "scaling.png"):
        assert (tmp_path / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
