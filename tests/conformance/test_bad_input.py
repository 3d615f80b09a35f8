"""Bad input, straight to the server: each gets a precise status, and the server keeps
answering. Compared by meaning, the same from every implementation: the status code,
and for a broken rule of the contract the google.rpc.BadRequest's field paths and rule
ids (and the project's own words: the status message's shape, its own rule's message);
the protobuf runtimes' and protovalidate's wording is theirs."""

from __future__ import annotations

import os
import queue
import socket
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpctest import grpctest_pb2, grpctest_pb2_grpc

from .calls import (
    RESUME_RULE,
    UNPARSED,
    assert_deadlines_end_ok_or_deadline_exceeded,
    assert_unparsed,
    exchange,
    raw_call,
    read_stream,
    status_of,
    stream_request,
    violations,
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


EMPTY = ("message", "required")
COUNT = ("count", "uint32.gte_lte")
INTERVAL = ("interval", "duration.gte_lte")


def test_empty_message_is_invalid_argument(stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetServerResponse(grpctest_pb2.Message(message=""), timeout=5)
    assert violations(err.value) == [EMPTY]


@pytest.mark.parametrize(
    "body", [b"\x0a\x02\xff\xfe", b"\x0a\x10ab", b"\xff\xff\xff\xff"],
    ids=["invalid UTF-8", "truncated", "no protobuf"],
)  # fmt: skip
def test_malformed_request_is_invalid_argument(server, body: bytes) -> None:
    assert_unparsed(status_of(server.target, body))
    assert_still_serving(server)


def test_unknown_fields_are_no_reason_to_refuse(server) -> None:
    """A newer client's request (a field this server does not know) is answered."""
    body = grpctest_pb2.Message(message="hi").SerializeToString() + b"\x48\x01"  # field 9
    assert grpctest_pb2.MessageResponse.FromString(raw_call(server.target, body)).received


def chat(server, messages: list[bytes]) -> tuple[list[int], grpc.RpcError | None]:
    """A chat sending `messages` as they are, each once the previous one is answered (so
    that what ends the chat cannot overtake an answer): the sequences answered, and the
    error that ended it."""
    answered: queue.Queue[None] = queue.Queue()

    def one_at_a_time() -> Iterator[bytes]:
        for i, body in enumerate(messages):
            if i:
                answered.get(timeout=5)
            yield body

    sequences = []
    with grpc.insecure_channel(server.target) as channel:
        call: grpc.StreamStreamMultiCallable[bytes, bytes]
        call = channel.stream_stream("/grpctest.Grpctest/Chat")
        replies = call(one_at_a_time(), timeout=5)
        try:
            for reply in replies:
                sequences.append(grpctest_pb2.MessageResponse.FromString(reply).sequence)
                answered.put(None)
        except grpc.RpcError as err:
            return sequences, err
    return sequences, None


def message(text: str) -> bytes:
    return grpctest_pb2.Message(message=text).SerializeToString()


def test_malformed_message_in_a_chat_is_invalid_argument(server) -> None:
    answered, err = chat(server, [message("ok"), b"\x0a\x10ab", message("never")])
    assert answered == [1]
    assert err is not None
    assert_unparsed(err)


def test_a_bad_message_in_the_middle_of_a_chat_ends_it(server) -> None:
    answered, err = chat(server, [message("a"), message("b"), message(""), message("never")])
    assert answered == [1, 2]
    assert err is not None
    assert violations(err) == [EMPTY]


def test_an_oversized_message_in_a_chat_is_resource_exhausted(server) -> None:
    answered, err = chat(server, [message("a"), message("x" * MAX_MESSAGE_BYTES)])
    assert answered == [1]
    assert err is not None
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_still_serving(server)


def test_oversized_request_is_resource_exhausted(server, stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetServerResponse(grpctest_pb2.Message(message="x" * MAX_MESSAGE_BYTES), timeout=5)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in (err.value.details() or "")
    assert_still_serving(server)


@pytest.mark.parametrize(
    ("request_", "broken"),
    [
        (stream_request(count=0), [COUNT]),
        (stream_request(count=100_001), [COUNT]),
        (stream_request(interval=11), [INTERVAL]),
        (stream_request(interval=10.5), [INTERVAL]),
        (stream_request(interval=-0.25), [INTERVAL]),
        # Beyond what a timedelta (Python) or a time.Duration (Go) can hold.
        (huge_interval(seconds=10**15), [INTERVAL]),
        (huge_interval(seconds=-(10**15)), [INTERVAL]),
        (huge_interval(nanos=-1), [INTERVAL]),
        (huge_interval(seconds=10, nanos=1), [INTERVAL]),
        (stream_request(message=""), [EMPTY]),
        # Wrong in several ways: every broken rule, in the same order from each server.
        (stream_request(count=5, resume_after=5, interval=11), [RESUME_RULE, INTERVAL]),
        (stream_request(message="", count=0, interval=-1), [EMPTY, COUNT, INTERVAL]),
    ],
)
def test_bad_stream_request_is_invalid_argument(stub, request_, broken) -> None:
    _, err = read_stream(stub.StreamServerResponses(request_, timeout=5))
    assert err is not None
    assert violations(err) == broken


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
    assert violations(err) == [RESUME_RULE]


@pytest.mark.parametrize(
    ("request_", "sequences"),
    [
        # The most replies: resumed near the end, so that only the last two are sent.
        (stream_request(count=100_000, resume_after=99_998), [99_999, 100_000]),
        # The longest pause (none is taken after the last reply).
        (stream_request(count=2, resume_after=1, interval=10), [2]),
        (stream_request(count=1), [1]),
    ],
    ids=["count 100,000", "interval 10 s", "count 1"],
)
def test_the_boundary_values_are_accepted(stub, request_, sequences: list[int]) -> None:
    assert read_stream(stub.StreamServerResponses(request_, timeout=5)) == (sequences, None)


def test_chat_rejects_an_empty_message(stub) -> None:
    replies = stub.Chat(
        iter([grpctest_pb2.Message(message="ok"), grpctest_pb2.Message(message="")]), timeout=5
    )
    assert next(replies).sequence == 1
    with pytest.raises(grpc.RpcError) as err:
        next(replies)
    assert violations(err.value) == [EMPTY]


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
        if not (err.details() or "").startswith(UNPARSED):
            assert violations(err) == [EMPTY], body
    else:
        assert reply.received
        assert reply.replica == server.replica
