"""SIGTERM and SIGINT: NOT_SERVING while still answering for the drain, open streams
ended with UNAVAILABLE and their progress a second before the grace period ends, calls
that fit finished, exit 0."""

from __future__ import annotations

import queue
import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc

from .calls import read_stream, stream_request

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_drain_reports_not_serving_keeps_answering_and_exits_0(start_server, sig: int) -> None:
    server = start_server(drain_seconds="2", grace_seconds="2")
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service="grpctest.Grpctest"), timeout=10)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        server.process.signal(sig)
        assert next(watch).status == NOT_SERVING  # (the signal's first effect: an event)
        watch.cancel()
        # Answered, so during the drain: once it is over the server takes no new call.
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        assert stub.GetServerResponse(grpctest_pb2.Message(message="draining"), timeout=2).received
        listed = health.List(health_pb2.HealthListRequest(), timeout=2)
    assert {name: s.status for name, s in listed.statuses.items()} == {
        "": NOT_SERVING,
        "grpctest.Grpctest": NOT_SERVING,
    }
    assert server.process.wait(10) == 0


def test_health_watch_sees_not_serving_on_sigterm(start_server) -> None:
    server = start_server(drain_seconds="1", grace_seconds="1")
    with grpc.insecure_channel(server.target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service="grpctest.Grpctest"), timeout=10
        )
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        server.sigterm()
        assert next(watch).status == NOT_SERVING
        watch.cancel()
    assert server.process.wait(10) == 0


def test_shutdown_ends_open_streams_with_unavailable_and_their_progress(start_server) -> None:
    """A stream that would outlast the grace period ends a second before it, saying how
    far it got; one that fits finishes; a chat still open says how many it answered."""
    server = start_server(drain_seconds="0.5", grace_seconds="3")
    with grpc.insecure_channel(server.target) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        # 10 s of replies, and 0.5 s: the cut comes 2.5 s after the signal.
        long = stub.StreamServerResponses(stream_request(count=100, interval=0.1), timeout=20)
        short = stub.StreamServerResponses(stream_request(count=5, interval=0.1), timeout=20)
        outbox: queue.Queue[grpctest_pb2.Message | None] = queue.Queue()
        chat = stub.Chat(iter(outbox.get, None), timeout=20)
        outbox.put(grpctest_pb2.Message(message="one"))
        outbox.put(grpctest_pb2.Message(message="two"))
        # Every call under way (its first replies here) before the signal.
        firsts = {name: next(call).sequence for name, call in (("long", long), ("short", short))}
        chatted = [next(chat).sequence, next(chat).sequence]
        signaled = time.monotonic()
        server.sigterm()
        results = {name: read_stream(call) for name, call in (("short", short), ("long", long))}
        ended_after = time.monotonic() - signaled
        chat_rest, chat_error = read_stream(chat)
        outbox.put(None)
    long_rest, long_error = results["long"]
    long_sequences = [firsts["long"], *long_rest]
    assert long_error is not None
    assert long_error.code() == grpc.StatusCode.UNAVAILABLE
    assert long_error.details() == (
        f"replica {server.replica} is shutting down: {len(long_sequences)} of 100 replies sent; "
        "continue on another replica"
    )
    # In order, and it went on after the signal (through the drain), not to the end.
    assert long_sequences == list(range(1, len(long_sequences) + 1))
    assert 1 < len(long_sequences) < 100
    assert ([firsts["short"], *results["short"][0]], results["short"][1]) == ([1, 2, 3, 4, 5], None)
    assert (chatted, chat_rest) == ([1, 2], [])
    assert chat_error is not None
    assert (chat_error.code(), chat_error.details()) == (
        grpc.StatusCode.UNAVAILABLE,
        f"replica {server.replica} is shutting down: 2 messages answered; "
        "continue on another replica",
    )
    # Drain 0.5 s + grace 3 s: the streams were served until a second before the grace
    # ran out, not cut sooner (later is only the machine's load; the status above shows
    # the cut was the server's, not its exit).
    assert ended_after >= 2.5, ended_after
    assert server.process.wait(10) == 0


def test_a_resumed_stream_reports_progress_in_the_callers_numbering(start_server) -> None:
    server = start_server(drain_seconds="0", grace_seconds="1.5")
    with grpc.insecure_channel(server.target) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        replies = stub.StreamServerResponses(
            stream_request(count=500, interval=0.05, resume_after=200), timeout=20
        )
        first = next(replies)
        server.sigterm()
        sequences, error = read_stream(replies)
    sequences = [first.sequence, *sequences]
    assert sequences == list(range(201, 201 + len(sequences)))
    assert error is not None
    assert error.details() == (
        f"replica {server.replica} is shutting down: {sequences[-1]} of 500 replies sent; "
        "continue on another replica"
    )
