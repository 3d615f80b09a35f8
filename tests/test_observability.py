"""Metrics and traces from the local stack, read back from real backends.

Metrics: a real Prometheus (Debian's) scrapes Envoy and every replica, and the numbers
add up: the calls Envoy sent to the replicas are the calls the replicas counted.
Traces: a real Jaeger receives OTLP from the clients, Envoy and the replicas, and one
call is one trace whose client, Envoy and server spans nest.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from grpctest_devtools.clients import run_client
from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.observability import Jaeger, Prometheus
from grpctest_devtools.ports import free_port, free_port_block, port_in_use
from grpctest_devtools.waiting import wait_until
from grpctest_harness.load import GhzLoad

GRPCTEST = 'grpc_service="grpctest.Grpctest"'


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[tuple[LocalStack, Prometheus]]:
    stack = LocalStack.on_free_ports(
        log_dir=tmp_path, metrics_ports=[free_port() for _ in range(3)]
    )
    with stack, Prometheus(stack, free_port()) as prometheus:
        yield stack, prometheus


def test_prometheus_scrapes_envoy_and_every_replica_and_the_numbers_add_up(
    metered, figures
) -> None:
    stack, prometheus = metered
    ok = run_client("go-client", stack.target, "--count", "60")
    bad = run_client("py-client", stack.target, "--message", "")
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode == 1

    def counted(expression: str, expected: float) -> bool:
        return prometheus.value(expression) == expected

    # Every target is up: Envoy and the three replicas.
    wait_until(lambda: counted("sum(up)", 4), 30, "Prometheus to scrape 4 targets")
    # 61 calls of the service: Envoy sent them, the replicas handled them.
    envoy = 'sum(envoy_cluster_upstream_rq_total{envoy_cluster_name="grpctest"})'
    replicas = f"sum(grpc_server_handled_total{{{GRPCTEST}}})"
    wait_until(lambda: counted(envoy, 61) and counted(replicas, 61), 30,
               "Envoy's and the replicas' counts of the 61 calls")  # fmt: skip
    # ... every replica its share, by status code, each timed, none in flight now.
    per_replica = prometheus.query(f"sum by (instance) (grpc_server_handled_total{{{GRPCTEST}}})")
    assert len(per_replica) == 3
    assert prometheus.value(f'sum(grpc_server_handled_total{{{GRPCTEST},grpc_code="OK"}})') == 60
    invalid = f'sum(grpc_server_handled_total{{{GRPCTEST},grpc_code="InvalidArgument"}})'
    assert prometheus.value(invalid) == 1
    assert prometheus.value(f"sum(grpc_server_handling_seconds_count{{{GRPCTEST}}})") == 61
    assert prometheus.value(f"sum(grpc_server_in_flight{{{GRPCTEST}}})") == 0
    # The health each replica reports, as Envoy's health checks see it.
    serving = prometheus.query('grpc_health_serving{service="grpctest.Grpctest"}')
    assert [s["value"][1] for s in serving] == ["1", "1", "1"]
    figures["metrics: calls counted by Envoy / by the replicas"] = (
        f"{prometheus.value(envoy):.0f} / {prometheus.value(replicas):.0f}"
    )


def handled_calls(metrics_port: int) -> float:
    """GetServerResponse calls one server process has answered OK, from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        families = text_string_to_metric_families(reply.read().decode())
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "grpc_server_handled_total"
        and sample.labels.get("grpc_method") == "GetServerResponse"
        and sample.labels.get("grpc_code") == "OK"
    )


def test_envoy_reaches_every_worker_process_of_a_replica(tmp_path: Path, figures) -> None:
    """A replica started with --workers 2 (two processes on one port) serves on both:
    Envoy opens several connections to it (at most 8 calls each), and the kernel hands
    each new connection to one of the processes."""
    metrics = free_port_block(2)  # worker i serves its metrics on this port + i
    stack = LocalStack.on_free_ports(
        1, log_dir=tmp_path, server_args=["--workers", "2"], metrics_ports=[metrics]
    )
    with stack:
        # Both processes have bound the port (each serves its metrics once it has): a
        # connection Envoy opens before the second one binds can only reach the first.
        wait_until(lambda: all(port_in_use(metrics + i) for i in range(2)), 60,
                   "both worker processes to serve")  # fmt: skip
        with GhzLoad(stack.target, concurrency=128, connections=8, total=5000) as load:
            wait_until(lambda: not load.running, 120, "ghz to finish its 5,000 calls")
            report = load.report()
        assert (report.sent, report.failed) == (5000, 0), report.failures
        per_worker = [handled_calls(metrics + i) for i in range(2)]
    assert sum(per_worker) == 5000
    # Each process served calls (the kernel spreads Envoy's connections at random: how
    # evenly is luck, that both get some is not, at 16 connections).
    assert min(per_worker) > 0, per_worker
    figures["calls per worker process of one replica (--workers 2)"] = per_worker


@pytest.fixture
def traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalStack, Jaeger]]:
    with Jaeger(free_port(), free_port(), free_port()) as jaeger:
        # The replicas (started below) and the clients send their spans to Jaeger.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.otlp_endpoint)
        otlp_port = int(jaeger.otlp_endpoint.rsplit(":", 1)[1])
        with LocalStack.on_free_ports(log_dir=tmp_path, otlp_port=otlp_port) as stack:
            yield stack, jaeger


def spans_of(trace: dict) -> list[tuple[str, str, str, str]]:
    """(service, operation, span id, parent span id) of each span of a Jaeger trace."""
    processes = trace["processes"]
    spans = []
    for span in trace["spans"]:
        parents = [r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
        service = processes[span["processID"]]["serviceName"]
        spans.append((service, span["operationName"], span["spanID"], next(iter(parents), "")))
    return spans


@pytest.mark.parametrize(
    ("client", "service"), [("py-client", "grpctest-client"), ("go-client", "go-client")]
)
def test_one_call_is_one_trace_from_the_client_through_envoy_to_the_replica(
    traced, client: str, service: str
) -> None:
    stack, jaeger = traced
    assert os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] == jaeger.otlp_endpoint
    result = run_client(client, stack.target, "--message", "traced")
    assert result.returncode == 0, result.stderr

    def whole_trace() -> list[tuple[str, str, str, str]] | None:
        for trace in jaeger.traces(service):
            spans = spans_of(trace)
            if {s[0] for s in spans} == {service, "envoy", "grpctest-server"}:
                return spans
        return None

    wait_until(lambda: whole_trace() is not None, 30, "the trace of the call in Jaeger")
    spans = {s[0]: s for s in whole_trace() or []}
    client_span, envoy_span, server_span = spans[service], spans["envoy"], spans["grpctest-server"]
    # One trace (Jaeger groups by trace ID), nested client -> Envoy -> replica.
    assert client_span[3] == ""  # the root
    assert envoy_span[3] == client_span[2]
    assert server_span[3] == envoy_span[2]
    assert server_span[1] == "/grpctest.Grpctest/GetServerResponse"
