"""Bad input, straight to the server: each gets a precise status and a readable message
(the same words from every implementation), and the server keeps answering."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpctest import grpctest_pb2, grpctest_pb2_grpc

from .calls import (
    assert_deadlines_end_ok_or_deadline_exceeded,
    exchange,
    raw_call,
    read_stream,
    status_of,
    stream_request,
)
from .conftest import MAX_MESSAGE_BYTES


def huge_interval(seconds: int = 0, nanos: int = 0) -> grpctest_pb2.StreamRequest:
    """A stream request whose interval is set field by field, as no timedelta could."""
    request = stream_request()
    request.interval.seconds, request.interval.nanos = seconds, nanos
    return request


@pytest.fixture
def stub(server) -> Iterator[grpctest_pb2_grpc.GrpctestStub]:
    with grpc.insecure_channel(server.target) as channel:
        yield grpctest_pb2_grpc.GrpctestStub(channel)


def assert_still_serving(server) -> None:
    server.process.check_alive()
    reply = grpctest_pb2.MessageResponse.FromString(
        raw_call(server.target, grpctest_pb2.Message(message="ok").SerializeToString())
    )
    assert reply.replica == server.replica


def test_empty_message_is_invalid_argument(stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetServerResponse(grpctest_pb2.Message(message=""), timeout=5)
    assert (err.value.code(), err.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "message must not be empty",
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x0a\x02\xff\xfe", "String field had bad UTF-8"),
        (b"\x0a\x10ab", "Wire format was corrupt"),
        (b"\xff\xff\xff\xff", "Wire format was corrupt"),
    ],
)
def test_malformed_request_is_invalid_argument(server, body: bytes, reason: str) -> None:
    err = status_of(server.target, body)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == (
        "request is not a valid grpctest.Message: Error parsing message "
        f"with type 'grpctest.Message': {reason}"
    )
    assert_still_serving(server)


def test_malformed_message_in_a_chat_is_invalid_argument(server) -> None:
    with grpc.insecure_channel(server.target) as channel:
        chat = channel.stream_stream("/grpctest.Grpctest/Chat")
        replies = chat(
            iter([grpctest_pb2.Message(message="ok").SerializeToString(), b"\x0a\x10ab"]), timeout=5
        )
        assert grpctest_pb2.MessageResponse.FromString(next(replies)).sequence == 1
        with pytest.raises(grpc.RpcError) as err:
            next(replies)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("request is not a valid grpctest.Message: ")


def test_oversized_request_is_resource_exhausted(server, stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetServerResponse(grpctest_pb2.Message(message="x" * MAX_MESSAGE_BYTES), timeout=5)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in err.value.details()
    assert_still_serving(server)


@pytest.mark.parametrize(
    ("request_", "detail"),
    [
        (stream_request(count=0), "count must be between 1 and 100000, got 0"),
        (stream_request(count=100_001), "count must be between 1 and 100000, got 100001"),
        (stream_request(interval=11), "interval must be between 0 and 10 s, got 11 s"),
        (stream_request(interval=10.5), "interval must be between 0 and 10 s, got 10.5 s"),
        (stream_request(interval=-0.25), "interval must be between 0 and 10 s, got -0.25 s"),
        # Beyond what a timedelta (Python) or a time.Duration (Go) can hold.
        (huge_interval(seconds=10**15), "interval must be between 0 and 10 s, got 1e+15 s"),
        (huge_interval(seconds=-(10**15)), "interval must be between 0 and 10 s, got -1e+15 s"),
        (huge_interval(nanos=-1), "interval must be between 0 and 10 s, got -1e-09 s"),
        # Wrong in two ways: each server names the same one (resume_after before interval).
        (
            stream_request(count=5, resume_after=5, interval=11),
            "resume_after must be less than count (5), got 5",
        ),
        (stream_request(message=""), "message must not be empty"),
    ],
)
def test_bad_stream_request_is_invalid_argument(stub, request_, detail: str) -> None:
    _, err = read_stream(stub.StreamServerResponses(request_, timeout=5))
    assert err is not None
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, detail)


@pytest.mark.parametrize(("resume_after", "count"), [(5, 5), (6, 5)])
def test_resuming_at_or_past_the_end_is_invalid_argument(
    stub, resume_after: int, count: int
) -> None:
    _, err = read_stream(
        stub.StreamServerResponses(
            stream_request(count=count, resume_after=resume_after), timeout=5
        )
    )
    assert err is not None
    assert (err.code(), err.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"resume_after must be less than count ({count}), got {resume_after}",
    )


def test_chat_rejects_an_empty_message(stub) -> None:
    replies = stub.Chat(
        iter([grpctest_pb2.Message(message="ok"), grpctest_pb2.Message(message="")]), timeout=5
    )
    assert next(replies).sequence == 1
    with pytest.raises(grpc.RpcError) as err:
        next(replies)
    assert (err.value.code(), err.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "message must not be empty",
    )


@pytest.mark.parametrize("method", ["/grpctest.Grpctest/NoSuchMethod", "/no.Such/Service"])
def test_unknown_method_is_unimplemented(server, method: str) -> None:
    assert status_of(server.target, b"", method).code() == grpc.StatusCode.UNIMPLEMENTED


def test_expired_and_near_expired_deadlines(server) -> None:
    assert_deadlines_end_ok_or_deadline_exceeded(server.target)
    assert_still_serving(server)


def test_a_stream_past_its_deadline_ends_deadline_exceeded(stub) -> None:
    """10 s of replies in a 1 s deadline: the stream ends DEADLINE_EXCEEDED, its replies
    so far in order (how many came depends on the machine: none is fine)."""
    sequences, err = read_stream(
        stub.StreamServerResponses(stream_request(count=100, interval=0.1), timeout=1)
    )
    assert err is not None
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert sequences == list(range(1, len(sequences) + 1))
    assert len(sequences) < 100


@pytest.mark.parametrize(
    "payload",
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(4096)],
    ids=["plain HTTP/1.1", "garbage"],
)
def test_what_is_not_http2_gets_a_closed_connection(server, payload: bytes) -> None:
    exchange(server.port, payload)
    assert_still_serving(server)


def test_idle_and_half_open_connections_do_not_block_service(server) -> None:
    held = []
    try:
        for i in range(20):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            if i % 2:
                sock.sendall(b"PRI * HTTP/2.0\r\n")  # half an HTTP/2 preface, then silence
            held.append(sock)
        assert_still_serving(server)
    finally:
        for sock in held:
            sock.close()


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=st.binary(max_size=512))
def test_fuzz_arbitrary_bytes_get_ok_or_invalid_argument(server, body: bytes) -> None:
    try:
        reply = grpctest_pb2.MessageResponse.FromString(raw_call(server.target, body))
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (body, err.code(), err.details())
    else:
        assert reply.received
        assert reply.replica == server.replica
