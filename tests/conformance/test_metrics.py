"""Prometheus metrics (--metrics-port): the same names and labels from every server."""

from __future__ import annotations

import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_devtools.ports import LOOPBACK, free_port
from grpctest_devtools.waiting import wait_until

from .calls import read_stream, stream_request

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


def test_health_watch_streams_with_metrics_on(start_server) -> None:
    """Health/Watch (a stream whose replies the handler writes itself) answers with the
    metrics' interceptor in place, as the control plane asks it of every replica."""
    server = start_server(metrics_port=str(free_port()))
    with grpc.insecure_channel(server.target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service="grpctest.Grpctest"), timeout=5
        )
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()


def test_streams_are_counted_when_they_end(start_server) -> None:
    """Server streams and a chat, each counted once it has ended: completed, refused
    (INVALID_ARGUMENT) or cancelled by the caller half-way."""
    port = free_port()
    server = start_server(metrics_port=str(port))
    with grpc.insecure_channel(server.target) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        assert read_stream(stub.StreamServerResponses(stream_request(count=3), timeout=5)) == (
            [1, 2, 3],
            None,
        )
        _, err = read_stream(stub.StreamServerResponses(stream_request(count=0), timeout=5))
        assert err is not None
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        chat = stub.Chat(iter([grpctest_pb2.Message(message=m) for m in "ab"]), timeout=5)
        assert [reply.sequence for reply in chat] == [1, 2]
        slow = stub.StreamServerResponses(stream_request(count=100, interval=1), timeout=30)
        assert next(slow).sequence == 1
        slow.cancel()

    def counted(name: str, grpc_type: str) -> float:
        return total(scrape(port), name, grpc_service="grpctest.Grpctest", grpc_type=grpc_type)

    wait_until(
        lambda: counted("grpc_server_handled_total", "server_stream") == 3,
        10,
        "the cancelled stream to be counted as handled",
    )
    for name in ("grpc_server_started_total", "grpc_server_handling_seconds_count"):
        assert counted(name, "server_stream") == 3, name
    for name in ("grpc_server_started_total", "grpc_server_handled_total"):
        assert counted(name, "bidi_stream") == 1, name
