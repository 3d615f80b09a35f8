"""When the Python client resumes a broken stream, and what a resumed chat sends again
(streams resumed through real replica faults: tests/test_stream_faults.py)."""

from __future__ import annotations

import grpc
import pytest

from grpctest_client.resume import Outbox, retryable


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
    outbox = Outbox(iter(["a", "b", "c"]))
    first = outbox.requests()
    assert [next(first).message, next(first).message] == ["a", "b"]
    outbox.answered()  # "a" answered, then the chat breaks
    second = outbox.requests()
    assert [m.message for m in second] == ["b", "c"]
    assert list(first) == []  # the broken chat takes no new message
