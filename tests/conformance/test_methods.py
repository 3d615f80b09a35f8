"""Every method of grpctest.Grpctest with good input: the replies, their order and pace,
and the replica that answered."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from grpctest import grpctest_pb2, grpctest_pb2_grpc

from .calls import REPLY, read_stream, stream_request


@pytest.fixture
def stub(server) -> Iterator[grpctest_pb2_grpc.GrpctestStub]:
    with grpc.insecure_channel(server.target) as channel:
        yield grpctest_pb2_grpc.GrpctestStub(channel)


@pytest.mark.parametrize("message", ["hi there", "héllo ✓", "x" * 60_000])
def test_reply_keeps_the_article_form_and_names_the_replica(server, stub, message: str) -> None:
    reply = stub.GetServerResponse(grpctest_pb2.Message(message=message), timeout=5)
    assert reply.message == REPLY.format(message)
    assert (reply.received, reply.replica, reply.sequence) == (True, server.replica, 0)


def test_server_stream_sends_count_replies_in_order(server, stub) -> None:
    replies = list(stub.StreamServerResponses(stream_request("hi", 1000), timeout=10))
    assert [r.sequence for r in replies] == list(range(1, 1001))
    assert {r.message for r in replies} == {REPLY.format("hi")}
    assert {r.replica for r in replies} == {server.replica}


def test_server_stream_is_paced_by_its_interval(stub) -> None:
    start = time.monotonic()
    sequences, error = read_stream(
        stub.StreamServerResponses(stream_request(count=4, interval=0.1), timeout=5)
    )
    assert (sequences, error) == ([1, 2, 3, 4], None)
    assert time.monotonic() - start >= 0.3  # three pauses between four replies


@pytest.mark.parametrize(
    ("resume_after", "count", "expected"),
    [(0, 3, [1, 2, 3]), (7, 10, [8, 9, 10]), (99, 100, [100])],
)
def test_a_resumed_stream_continues_after_the_last_reply_received(
    stub, resume_after: int, count: int, expected: list[int]
) -> None:
    request = stream_request(count=count, resume_after=resume_after)
    assert read_stream(stub.StreamServerResponses(request, timeout=5)) == (expected, None)


def test_chat_answers_each_message_as_it_arrives(server, stub) -> None:
    messages = [grpctest_pb2.Message(message=f"m{i}") for i in range(1, 4)]
    replies = list(stub.Chat(iter(messages), timeout=5))
    assert [(r.sequence, r.message, r.replica) for r in replies] == [
        (i, REPLY.format(f"m{i}"), server.replica) for i in range(1, 4)
    ]


def test_chat_with_no_messages_ends_cleanly(stub) -> None:
    assert list(stub.Chat(iter([]), timeout=5)) == []


def test_concurrent_calls_on_one_connection(stub) -> None:
    """A hundred unary calls in flight at once on one HTTP/2 connection."""
    futures = [
        stub.GetServerResponse.future(grpctest_pb2.Message(message=f"c{i}"), timeout=10)
        for i in range(100)
    ]
    assert [f.result().message for f in futures] == [REPLY.format(f"c{i}") for i in range(100)]
