"""Prometheus metrics (--metrics-port): the same series from every server, for the same
calls: names, label sets, label values, and the counts."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_devtools.ports import LOOPBACK, free_port
from grpctest_devtools.waiting import wait_until

from .calls import read_stream, stream_request
from .conftest import IMPLEMENTATIONS, running_server

SERVICE = {"grpc_service": "grpctest.Grpctest"}
METHOD = {**SERVICE, "grpc_method": "GetServerResponse"}
# Process metrics both runtimes' client libraries serve (beside them, each its own:
# python_* and go_*).
PROCESS = {
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
}

Sample = tuple[str, dict[str, str], float]


def scrape(port: int) -> list[Sample]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def total(samples: list[Sample], name: str, **labels: str) -> float:
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
    unary = {**METHOD, "grpc_type": "unary"}
    assert total(samples, "grpc_server_started_total", **unary) == 3
    assert total(samples, "grpc_server_handled_total", **unary) == 3
    # The code's name as grpc-go spells it (go-grpc-middleware's convention).
    assert total(samples, "grpc_server_handled_total", **unary, grpc_code="OK") == 2
    assert total(samples, "grpc_server_handled_total", **unary, grpc_code="InvalidArgument") == 1
    assert total(samples, "grpc_server_handling_seconds_count", **METHOD) == 3
    assert total(samples, "grpc_server_msg_received_total", **unary) == 3
    assert total(samples, "grpc_server_msg_sent_total", **unary) == 2
    assert total(samples, "grpc_server_in_flight", **unary) == 0
    for service in ("", "grpctest.Grpctest"):
        assert total(samples, "grpc_health_serving", service=service) == 1, service


def _streams(stub: grpctest_pb2_grpc.GrpctestStub) -> None:
    """Server streams and a chat: completed, refused (INVALID_ARGUMENT), and one
    cancelled by the caller after its first reply (the next would come 10 s later)."""
    assert read_stream(stub.StreamServerResponses(stream_request(count=3), timeout=5)) == (
        [1, 2, 3],
        None,
    )
    _, err = read_stream(stub.StreamServerResponses(stream_request(count=0), timeout=5))
    assert err is not None
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    chat = stub.Chat(iter([grpctest_pb2.Message(message=m) for m in "ab"]), timeout=5)
    assert [reply.sequence for reply in chat] == [1, 2]
    slow = stub.StreamServerResponses(stream_request(count=100, interval=10), timeout=30)
    assert next(slow).sequence == 1
    slow.cancel()


def _streams_scraped(target: str, port: int) -> list[Sample]:
    """_streams' calls made, and the metrics once the cancelled stream has ended."""
    with grpc.insecure_channel(target) as channel:
        _streams(grpctest_pb2_grpc.GrpctestStub(channel))

    def handled() -> float:
        streams = {**SERVICE, "grpc_type": "server_stream"}
        return total(scrape(port), "grpc_server_handled_total", **streams)

    wait_until(lambda: handled() == 3, 10, "the cancelled stream to be counted as handled")
    return scrape(port)


def test_streams_are_counted_when_they_end(start_server) -> None:
    port = free_port()
    samples = _streams_scraped(start_server(metrics_port=str(port)).target, port)

    def counted(name: str, grpc_type: str, **labels: str) -> float:
        return total(samples, name, **SERVICE, grpc_type=grpc_type, **labels)

    for name in ("grpc_server_started_total", "grpc_server_handling_seconds_count"):
        assert counted(name, "server_stream") == 3, name
    assert counted("grpc_server_handled_total", "server_stream", grpc_code="Canceled") == 1
    assert counted("grpc_server_msg_sent_total", "server_stream") == 4  # 3 + the cancelled one's 1
    for name in ("grpc_server_started_total", "grpc_server_handled_total"):
        assert counted(name, "bidi_stream") == 1, name
    assert counted("grpc_server_msg_received_total", "bidi_stream") == 2
    assert counted("grpc_server_msg_sent_total", "bidi_stream") == 2


def _series(samples: list[Sample], keep: Callable[[str, dict[str, str]], bool]) -> dict:
    """{(name, labels): value} of the samples `keep` accepts. A bucket's bound is read
    as the number it is, as Prometheus 3 stores it: Python writes le="5.0", Go le="5"."""
    return {
        (name, tuple(sorted({**labels, **_bound(labels)}.items()))): value
        for name, labels, value in samples
        if keep(name, labels)
    }


def _bound(labels: dict[str, str]) -> dict[str, str]:
    return {"le": str(float(labels["le"]))} if "le" in labels else {}


def _grpc(name: str, labels: dict[str, str]) -> bool:
    return name.startswith("grpc_")


def _counted_exactly(name: str, labels: dict[str, str]) -> bool:
    """The service's series whose values the same calls fix (not its times)."""
    ours = labels.get("grpc_service") == SERVICE["grpc_service"]
    return _grpc(name, labels) and ours and not name.endswith(("_bucket", "_sum"))


def test_both_servers_serve_the_same_series_for_the_same_calls(tmp_path: Path) -> None:
    """One dashboard for both: after the same calls, the same gRPC metric names, the same
    label sets and values (every method of every service served, every status code),
    and the same counts for the service's calls; and the process metrics both runtimes
    have. (Health and reflection counts differ: the suite's readiness checks vary.)"""
    scraped = {}
    for implementation in IMPLEMENTATIONS:
        port = free_port()
        with running_server(implementation, tmp_path, metrics_port=str(port)) as server:
            scraped[implementation] = _streams_scraped(server.target, port)
    python, go = scraped["python"], scraped["go"]
    assert _series(python, _grpc).keys() == _series(go, _grpc).keys()
    assert _series(python, _counted_exactly) == _series(go, _counted_exactly)
    for samples in (python, go):
        assert {name for name, _, _ in samples} >= PROCESS
