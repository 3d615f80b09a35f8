"""Streams that survive a replica's shutdown or crash: resumed where they broke.

A server stream that breaks is asked for again with `resume_after` set to the sequence
of the last reply received; the replica that answers (Envoy picks another one) sends
the rest, numbered as the broken stream would have numbered them. A chat that breaks
is opened again and the messages that got no reply are sent again; the replies are
numbered across chats, so each message gets exactly one reply, in order.

Every reply's sequence is checked: a gap or a repeat ends the call with DATA_LOSS.
All attempts share the call's one deadline, and there are at most `attempts` resumes.

When the deadline ends a call that is being resumed (a pause before the next attempt
would outlast it, or an attempt after a break ran out of time before its first reply),
the call ends with DEADLINE_EXCEEDED, saying what broke it: "deadline exceeded while
resuming after UNAVAILABLE: ...". No pause is started that would end after the
deadline: the call ends at once instead. The Go client does the same (go-client/resume.go).
"""

from __future__ import annotations

import collections
import math
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


class ResumeDeadlineExceeded(grpc.RpcError):
    """The deadline ended a call while it was being resumed after `broken`: a status of
    the call itself (DEADLINE_EXCEEDED), whose details name the failure it was resuming
    after."""

    def __init__(self, broken: grpc.RpcError) -> None:
        super().__init__(broken)
        self._details = f"deadline exceeded while resuming after {describe(broken)}"

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self) -> str:
        return self._details

    def __str__(self) -> str:
        return f"DEADLINE_EXCEEDED: {self._details}"


def describe(err: grpc.RpcError) -> str:
    """A status as the clients print it: "UNAVAILABLE: details"."""
    return f"{err.code().name}: {err.details()}"


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


def _pause(seconds: float, deadline: float) -> bool:
    """Sleeps `seconds`, or less if the deadline (time.monotonic()) comes first; says
    whether the deadline is still ahead."""
    if seconds <= 0:
        return True
    time.sleep(max(0.0, min(seconds, deadline - time.monotonic())))
    return time.monotonic() < deadline


def backoff(attempt: int) -> float:
    """The pause before resume number `attempt` + 1 (attempt 0 broke first)."""
    return min(FIRST_BACKOFF * (1 << min(attempt, 10)), MAX_BACKOFF)  # (no overflow)


def _resume_or_raise(
    err: grpc.RpcError, attempt: int, progress: bool, policy: Policy, broken: grpc.RpcError | None
) -> grpc.RpcError:
    """Attempt number `attempt` broke with `err`, after `progress` (replies received)
    or none; `broken` is the break it was resuming after. Raises what ends the call, or
    pauses before the next attempt and returns the break that one resumes after."""
    if broken is not None and not progress and err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        raise ResumeDeadlineExceeded(broken) from err
    if attempt == policy.attempts or not retryable(err, progress):
        raise err
    pause = backoff(attempt)
    if pause >= policy.remaining() or not _pause(pause, policy.deadline):
        raise ResumeDeadlineExceeded(err) from err
    return err


def _out_of_sequence(
    expected: int, reply: grpctest_pb2.MessageResponse | None
) -> OutOfSequenceError:
    """What came instead of reply number `expected` (0: no reply at all, every message
    sent had its reply): `reply`, or (None) the end of the stream. The Go client words it
    the same (go-client/resume.go)."""
    want = f"reply {expected}" if expected else "no reply"
    got = "end of stream" if reply is None else f"{reply.sequence} from {reply.replica}"
    return OutOfSequenceError(f"expected {want}, got {got}")


def _check(expected: int, reply: grpctest_pb2.MessageResponse) -> None:
    if reply.sequence != expected:
        raise _out_of_sequence(expected, reply)


def resumable_stream(
    stub: grpctest_pb2_grpc.GrpctestStub,
    request: grpctest_pb2.StreamRequest,
    policy: Policy,
    on_resume: OnResume,
) -> Iterator[grpctest_pb2.MessageResponse]:
    """StreamServerResponses, resumed after the last reply until all `count` came; a
    stream that ends before is out of sequence."""
    last, broken = 0, None
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
            if last != request.count:
                raise _out_of_sequence(last + 1, None)
            return
        except grpc.RpcError as err:
            broken = _resume_or_raise(err, attempt, progress, policy, broken)


@dataclass(frozen=True)
class Messages:
    """What a chat sends: `count` times `message`, `interval` seconds apart."""

    message: str
    count: int
    interval: float = 0.0


class Outbox:
    """A chat's messages: those sent and not yet answered, and how many are still to come.

    Each chat (attempt) reads its messages from `requests()`: first the unanswered
    ones again, then new ones. A broken chat's reader stops taking new messages as soon
    as the next chat has started, so no message is sent on a dead stream only; none is
    taken after the deadline (time.monotonic()).
    """

    def __init__(self, messages: Messages, deadline: float = math.inf) -> None:
        self._messages, self._deadline = messages, deadline
        self._taken = 0
        self._unanswered: collections.deque[str] = collections.deque()
        self._chat = 0
        self._lock = threading.Lock()

    def requests(self) -> Iterator[grpctest_pb2.Message]:
        with self._lock:
            self._chat += 1
            chat, again = self._chat, list(self._unanswered)
        yield from (grpctest_pb2.Message(message=m) for m in again)
        while (message := self._take(chat)) is not None:
            yield grpctest_pb2.Message(message=message)

    def _take(self, chat: int) -> str | None:
        """The next new message for `chat`, `interval` after the last one; None when
        there is none, the chat is over or the deadline has passed. It pauses without
        the lock, so that replies are answered (and yielded) meanwhile."""
        is_open, wait = self._next(chat)
        if not is_open or not _pause(wait, self._deadline):
            return None
        with self._lock:
            if not self._open(chat):  # the next chat may have started during the pause
                return None
            self._taken += 1
            self._unanswered.append(self._messages.message)
        return self._messages.message

    def _next(self, chat: int) -> tuple[bool, float]:
        """Whether `chat` may take a new message, and how long it waits first (none
        before the first message)."""
        with self._lock:
            return self._open(chat), self._messages.interval if self._taken else 0.0

    def _open(self, chat: int) -> bool:
        """Whether `chat` is the current one and has messages to come (lock held)."""
        return chat == self._chat and self._taken < self._messages.count

    def answered(self) -> bool:
        """Marks the oldest unanswered message answered; False when there is none (a
        reply too many)."""
        with self._lock:
            if not self._unanswered:
                return False
            self._unanswered.popleft()
            return True


def resumable_chat(
    stub: grpctest_pb2_grpc.GrpctestStub,
    messages: Messages,
    policy: Policy,
    on_resume: OnResume,
) -> Iterator[grpctest_pb2.MessageResponse]:
    """Chat, opened again on another replica when it breaks; each reply is renumbered
    to count across chats (a new chat numbers from 1)."""
    outbox, last, broken = Outbox(messages, policy.deadline), 0, None
    for attempt in range(policy.attempts + 1):
        answered = 0
        try:
            for reply in stub.Chat(outbox.requests(), timeout=policy.remaining()):
                _check(answered + 1, reply)
                if last and not answered:
                    on_resume(last, reply.replica)
                if not outbox.answered():
                    raise _out_of_sequence(0, reply)
                answered, last = reply.sequence, last + 1
                reply.sequence = last
                yield reply
            return
        except grpc.RpcError as err:
            progress = answered > 0
            broken = _resume_or_raise(err, attempt, progress, policy, broken)
