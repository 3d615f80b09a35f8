"""Streams that survive a replica's shutdown or crash: resumed where they broke.

A server stream that breaks is asked for again with `resume_after` set to the sequence
of the last reply received; the replica that answers (Envoy picks another one) sends
the rest, numbered as the broken stream would have numbered them. A chat that breaks
is opened again and the messages that got no reply are sent again; the replies are
numbered across chats, so each message gets exactly one reply, in order.

Every reply's sequence is checked: a gap or a repeat ends the call with DATA_LOSS.
All attempts share the call's one deadline, and there are at most `attempts` resumes.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc

# Called with the sequence resumed after and the replica that now answers.
OnResume = Callable[[int, str], None]

# Pause before a resume, doubling per attempt: Envoy needs a moment (its outlier
# detection, about a second at most) to stop routing to a replica that just died.
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 1.0


class OutOfSequenceError(Exception):
    """A reply that is not the one after the last: a lost or repeated reply."""

    code = "DATA_LOSS"


@dataclass(frozen=True)
class Policy:
    """How hard to try: resumes at most, all within one deadline (time.monotonic())."""

    attempts: int
    deadline: float

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def retryable(err: grpc.RpcError, progress: bool) -> bool:
    """Whether a broken stream is worth continuing on another replica.

    UNAVAILABLE: the replica is shutting down (it says so) or none could be reached.
    INTERNAL only when the stream had already delivered replies: when a replica dies
    mid-stream, Envoy can only reset the caller's stream (RST_STREAM INTERNAL_ERROR,
    which gRPC reports as INTERNAL); headers and replies were sent, so Envoy cannot end
    it with a status of its own. gRPC's rule is not to retry INTERNAL, and for a call
    that failed before any reply (a real server error) that rule is kept.
    """
    code = err.code()
    return code == grpc.StatusCode.UNAVAILABLE or (code == grpc.StatusCode.INTERNAL and progress)


def _backoff(attempt: int, policy: Policy) -> None:
    pause = FIRST_BACKOFF * 2 ** min(attempt, 10)  # (past 2**5 it is MAX_BACKOFF anyway)
    time.sleep(max(0.0, min(pause, MAX_BACKOFF, policy.remaining())))


def _check(expected: int, reply: grpctest_pb2.MessageResponse) -> None:
    if reply.sequence != expected:
        detail = f"expected reply {expected}, got {reply.sequence} from {reply.replica}"
        raise OutOfSequenceError(detail)


def resumable_stream(
    stub: grpctest_pb2_grpc.GrpctestStub,
    request: grpctest_pb2.StreamRequest,
    policy: Policy,
    on_resume: OnResume,
) -> Iterator[grpctest_pb2.MessageResponse]:
    """StreamServerResponses, resumed after the last reply until all `count` came."""
    last = 0
    for attempt in range(policy.attempts + 1):
        request.resume_after = last
        progress = False
        try:
            for reply in stub.StreamServerResponses(request, timeout=policy.remaining()):
                _check(last + 1, reply)
                if last and not progress:
                    on_resume(last, reply.replica)
                progress, last = True, reply.sequence
                yield reply
            return
        except grpc.RpcError as err:
            if attempt == policy.attempts or not retryable(err, progress):
                raise
        _backoff(attempt, policy)


class Outbox:
    """A chat's messages: those sent and not yet answered, and the rest still to come.

    Each chat (attempt) reads its messages from `requests()`: first the unanswered
    ones again, then new ones. A broken chat's reader stops taking new messages as soon
    as the next chat has started, so no message is sent on a dead stream only.
    """

    def __init__(self, messages: Iterator[str]) -> None:
        self._messages = messages
        self._unanswered: collections.deque[str] = collections.deque()
        self._chat = 0
        self._lock = threading.Lock()

    def requests(self) -> Iterator[grpctest_pb2.Message]:
        with self._lock:
            self._chat += 1
            chat, again = self._chat, list(self._unanswered)
        yield from (grpctest_pb2.Message(message=m) for m in again)
        while True:
            with self._lock:
                if chat != self._chat or (message := next(self._messages, None)) is None:
                    return
                self._unanswered.append(message)
            yield grpctest_pb2.Message(message=message)

    def answered(self) -> None:
        with self._lock:
            self._unanswered.popleft()


def resumable_chat(
    stub: grpctest_pb2_grpc.GrpctestStub,
    messages: Iterator[str],
    policy: Policy,
    on_resume: OnResume,
) -> Iterator[grpctest_pb2.MessageResponse]:
    """Chat, opened again on another replica when it breaks; each reply is renumbered
    to count across chats (a new chat numbers from 1)."""
    outbox, last = Outbox(messages), 0
    for attempt in range(policy.attempts + 1):
        answered = 0
        try:
            for reply in stub.Chat(outbox.requests(), timeout=policy.remaining()):
                _check(answered + 1, reply)
                if last and not answered:
                    on_resume(last, reply.replica)
                outbox.answered()
                answered, last = reply.sequence, last + 1
                reply.sequence = last
                yield reply
            return
        except grpc.RpcError as err:
            if attempt == policy.attempts or not retryable(err, answered > 0):
                raise
        _backoff(attempt, policy)
