"""When the Python client resumes a broken stream, and what a resumed chat sends again
(streams resumed through real replica faults: tests/test_stream_faults.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_client.calls import Resume, chat, stream_server_responses
from grpctest_client.resume import Messages, Outbox, OutOfSequenceError, retryable

NO_RESUME = Resume(0, lambda after, replica: None)


class Broken(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


@pytest.mark.parametrize(
    ("code", "progress", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, False, True),  # a replica shutting down
        (grpc.StatusCode.INTERNAL, True, True),  # Envoy's reset: the replica died
        (grpc.StatusCode.INTERNAL, False, False),  # before any reply: a real error
        (grpc.StatusCode.DEADLINE_EXCEEDED, True, False),
        (grpc.StatusCode.INVALID_ARGUMENT, False, False),
    ],
)
def test_which_breaks_are_resumed(code: grpc.StatusCode, progress: bool, expected: bool) -> None:
    assert retryable(Broken(code), progress) is expected


def test_a_new_chat_sends_the_unanswered_messages_again() -> None:
    outbox = Outbox(Messages("m", 3))
    first = outbox.requests()
    assert [next(first).message, next(first).message] == ["m", "m"]
    outbox.answered()  # one of two answered, then the chat breaks
    second = outbox.requests()
    assert [m.message for m in second] == ["m", "m"]  # the unanswered one, then the last
    assert list(first) == []  # the broken chat takes no new message


def test_the_pause_between_messages_holds_no_lock_and_ends_at_the_deadline() -> None:
    outbox = Outbox(Messages("m", 2, interval=3600), deadline=time.monotonic() + 1)
    requests = outbox.requests()
    next(requests)
    taken: list[grpctest_pb2.Message] = []
    sender = threading.Thread(target=lambda: taken.extend(requests))
    sender.start()
    time.sleep(0.05)  # (the sender is pausing now)
    start = time.monotonic()
    assert outbox.answered()
    assert time.monotonic() - start < 0.5, "a reply waits for the next message to be taken"
    sender.join(timeout=5)
    assert not sender.is_alive(), "the sender outlives the deadline"
    assert taken == []  # no message after the deadline


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[grpc.Channel]:
    """The real py-server (grpctest-server of this .venv) on a free loopback port, and a
    channel to it, ready. Without the server the test fails: run `make setup` first."""
    port = _free_port()
    command = [str(Path(sys.executable).parent / "grpctest-server"), "--port", str(port)]
    process = subprocess.Popen([*command, "--replica", "py-test-replica", "--drain-seconds", "0"])
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            yield channel
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_each_chat_reply_comes_before_the_next_message_is_sent(server: grpc.Channel) -> None:
    interval, start = 0.5, time.monotonic()
    at = [
        time.monotonic() - start
        for _ in chat(server, Messages("c", 3, interval), 10, resume=NO_RESUME)
    ]
    assert len(at) == 3
    for n, arrived in enumerate(at):  # message n+1 is sent at n intervals
        assert arrived < n * interval + interval / 2, f"reply {n + 1} held back: replies at {at}"


class Misbehaving(grpctest_pb2_grpc.GrpctestServicer):
    """Breaks the sequence contract: each chat message gets two replies, and a server
    stream ends (with OK) one reply short."""

    def StreamServerResponses(self, request, context) -> Iterator[grpctest_pb2.MessageResponse]:
        for n in range(request.resume_after + 1, request.count):
            yield grpctest_pb2.MessageResponse(replica="short", sequence=n)

    def Chat(self, request_iterator, context) -> Iterator[grpctest_pb2.MessageResponse]:
        for i, _ in enumerate(request_iterator):
            for sequence in (2 * i + 1, 2 * i + 2):
                yield grpctest_pb2.MessageResponse(replica="twice", sequence=sequence)


@pytest.fixture
def misbehaving() -> Iterator[grpc.Channel]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    # (GetServerResponse is the generated servicer's own: UNIMPLEMENTED.)
    grpctest_pb2_grpc.add_GrpctestServicer_to_server(Misbehaving(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        server.stop(None)


def test_a_reply_too_many_in_a_chat_is_out_of_sequence(misbehaving: grpc.Channel) -> None:
    with pytest.raises(OutOfSequenceError) as err:
        list(chat(misbehaving, Messages("c", 1), 5, resume=NO_RESUME))
    assert str(err.value) == "expected no reply, got 2 from twice"


def test_a_stream_that_ends_short_is_out_of_sequence(misbehaving: grpc.Channel) -> None:
    replies = stream_server_responses(misbehaving, "s", 3, 0, 5, resume=NO_RESUME)
    with pytest.raises(OutOfSequenceError) as err:
        list(replies)
    assert str(err.value) == "expected reply 3, got end of stream"
