"""When the Python client resumes a broken stream, and what a resumed chat sends again
(streams resumed through real replica faults: tests/test_stream_faults.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from concurrent import futures
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import grpc
import pytest

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest.grpctest_pb2_grpc import GrpctestStub
from grpctest_client import resume
from grpctest_client.calls import Resume, chat, stream_server_responses
from grpctest_client.resume import (
    Messages,
    Outbox,
    OutOfSequenceError,
    Policy,
    ResumeDeadlineExceeded,
    resumable_chat,
    resumable_stream,
    retryable,
)

NO_RESUME = Resume(0, lambda after, replica: None)
UNAVAILABLE, DEADLINE_EXCEEDED = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED


class Broken(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


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


def test_no_message_is_taken_after_the_deadline() -> None:
    """(The pause before the next message would be an hour: it is not even begun.)"""
    outbox = Outbox(Messages("m", 2, interval=3600), deadline=time.monotonic())
    requests = outbox.requests()
    assert next(requests).message == "m"  # the first goes at once (its call has the deadline)
    assert list(requests) == []


# -- the deadline while resuming: one clock for the client's pauses and its deadline ----------


class Clock:
    """A stand-in for the time module in grpctest_client.resume: time passes only in
    sleep(), which records every pause."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


class Stub:
    """A stub whose calls fail, one status after the other (the last repeats); a
    failure given as (replies, code) first delivers that many replies (a chat's, one
    per message it reads)."""

    def __init__(self, *failures: grpc.StatusCode | tuple[int, grpc.StatusCode]) -> None:
        self.failures, self.calls = list(failures), 0

    def _fail(self, replies: Iterator[grpctest_pb2.MessageResponse]) -> Iterator:
        failure = self.failures[min(self.calls, len(self.failures) - 1)]
        self.calls += 1
        count, code = failure if isinstance(failure, tuple) else (0, failure)
        for _ in range(count):
            yield next(replies)
        raise Broken(code, f"{code.name.lower()} at call {self.calls}")

    def StreamServerResponses(
        self, request: grpctest_pb2.StreamRequest, timeout: float
    ) -> Iterator[grpctest_pb2.MessageResponse]:
        first = request.resume_after + 1
        return self._fail(grpctest_pb2.MessageResponse(sequence=n) for n in range(first, 99))

    def Chat(self, requests: Iterator[grpctest_pb2.Message], timeout: float) -> Iterator:
        replies = (grpctest_pb2.MessageResponse(sequence=n) for n, _ in enumerate(requests, 1))
        return self._fail(replies)


def run_stream(stub: Stub, policy: Policy) -> None:
    request = grpctest_pb2.StreamRequest(count=9)
    list(resumable_stream(cast(GrpctestStub, stub), request, policy, lambda *_: None))


def run_chat(stub: Stub, policy: Policy) -> None:
    list(resumable_chat(cast(GrpctestStub, stub), Messages("m", 9), policy, lambda *_: None))


KINDS = pytest.mark.parametrize("run", [run_stream, run_chat], ids=["stream", "chat"])
RunKind = Callable[[Stub, Policy], None]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(resume, "time", SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep))
    return fake


@KINDS
def test_a_pause_that_would_outlast_the_deadline_ends_the_call_at_once(
    clock: Clock, run: RunKind
) -> None:
    """Pauses of 50, 100, 200 and 400 ms fit in a 1 s deadline; the next one (800 ms)
    would not: the call ends then with DEADLINE_EXCEEDED naming the last break."""
    stub = Stub(UNAVAILABLE)
    with pytest.raises(ResumeDeadlineExceeded) as err:
        run(stub, Policy(attempts=5, deadline=1.0))
    assert (err.value.code(), err.value.details()) == (
        DEADLINE_EXCEEDED,
        "deadline exceeded while resuming after UNAVAILABLE: unavailable at call 5",
    )
    assert (stub.calls, clock.pauses) == (5, [0.05, 0.1, 0.2, 0.4])
    assert clock.now < 1.0  # no pause went past the deadline


@KINDS
def test_an_attempt_after_a_break_that_meets_the_deadline_names_the_break(
    clock: Clock, run: RunKind
) -> None:
    stub = Stub(UNAVAILABLE, DEADLINE_EXCEEDED)
    with pytest.raises(ResumeDeadlineExceeded) as err:
        run(stub, Policy(attempts=5, deadline=60.0))
    assert err.value.details() == (
        "deadline exceeded while resuming after UNAVAILABLE: unavailable at call 1"
    )
    assert stub.calls == 2


@KINDS
def test_a_deadline_after_a_resumed_attempt_had_replies_is_its_own(
    clock: Clock, run: RunKind
) -> None:
    """Resumed, replies came, then the deadline: the resume was over, the status is
    the attempt's own."""
    stub = Stub((2, grpc.StatusCode.INTERNAL), (1, DEADLINE_EXCEEDED))
    with pytest.raises(Broken) as err:
        run(stub, Policy(attempts=5, deadline=60.0))
    assert (err.value.code(), stub.calls) == (DEADLINE_EXCEEDED, 2)


@KINDS
def test_with_time_left_the_resumes_run_out_with_the_last_break(clock: Clock, run: RunKind) -> None:
    stub = Stub(UNAVAILABLE)
    with pytest.raises(Broken) as err:
        run(stub, Policy(attempts=2, deadline=60.0))
    assert (err.value.code(), err.value.details(), stub.calls) == (
        UNAVAILABLE,
        "unavailable at call 3",
        3,
    )
    assert clock.pauses == [0.05, 0.1]


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
    settings = ["--replica", "py-test-replica", "--drain-seconds", "0", "--grace-seconds", "1"]
    process = subprocess.Popen([*command, *settings])
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            yield channel
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise


def test_a_chat_reply_is_not_held_back_until_the_next_message(server: grpc.Channel) -> None:
    """The second message is an hour away: the first one's reply still arrives (were
    it held back, or the pause holding the outbox's lock, which marking a reply
    answered takes, the call would end with DEADLINE_EXCEEDED instead)."""
    replies = chat(server, Messages("c", 2, interval=3600), 20, resume=NO_RESUME)
    assert isinstance(replies, Generator)
    try:
        assert next(replies).sequence == 1
    finally:
        replies.close()


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
