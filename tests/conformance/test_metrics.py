"""Prometheus metrics (--metrics-port): the same names and labels from every server."""

from __future__ import annotations

import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_devtools.ports import LOOPBACK, free_port

METHOD = {"grpc_service": "grpctest.Grpctest", "grpc_method": "GetServerResponse"}


def scrape(port: int) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def total(samples, name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and labels.items() <= lab.items())


def test_calls_and_health_are_counted(start_server) -> None:
    port = free_port()
    server = start_server(metrics_port=str(port))
    with grpc.insecure_channel(server.target) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        for message in ("one", "two"):
            stub.GetServerResponse(grpctest_pb2.Message(message=message), timeout=5)
        with pytest.raises(grpc.RpcError):
            stub.GetServerResponse(grpctest_pb2.Message(message=""), timeout=5)
    samples = scrape(port)
    assert total(samples, "grpc_server_started_total", **METHOD, grpc_type="unary") == 3
    assert total(samples, "grpc_server_handled_total", **METHOD, grpc_type="unary") == 3
    assert total(samples, "grpc_server_handling_seconds_count", **METHOD) == 3
    for service in ("", "grpctest.Grpctest"):
        assert total(samples, "grpc_health_serving", service=service) == 1, service
