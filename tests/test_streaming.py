"""Streaming through Envoy: long server streams complete and in order, a bidirectional
exchange, streams outliving the unary route timeout, and a stream open while its
replica drains. With the Python and Go clients, and grpcurl."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_devtools.clients import (
    CLIENTS,
    JSON_OUTPUT,
    calls_per_replica,
    failure,
    replies,
    run_client,
)
from grpctest_devtools.repo import command

from .conformance.calls import REPLY, json_values, stream_request


def read_on(
    replies: Iterator[grpctest_pb2.MessageResponse], sequences: list[int]
) -> grpc.RpcError | None:
    """Reads a stream to its end, noting each reply's sequence; the error that ended it."""
    try:
        for reply in replies:
            sequences.append(reply.sequence)
    except grpc.RpcError as err:
        return err
    return None


def test_a_stream_of_10000_replies_arrives_complete_and_in_order(stack) -> None:
    with grpc.insecure_channel(stack.target) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        replies = list(stub.StreamServerResponses(stream_request("long", 10_000), timeout=60))
    assert [r.sequence for r in replies] == list(range(1, 10_001))
    assert {r.message for r in replies} == {REPLY.format("long")}
    assert len({r.replica for r in replies}) == 1  # one stream, one replica


@pytest.mark.parametrize("client", CLIENTS)
def test_both_clients_stream_10000_replies(stack, client: str) -> None:
    result = run_client(
        client,
        stack.target,
        "--mode",
        "server-stream",
        "--count",
        "10000",
        "--timeout",
        "60",
        *JSON_OUTPUT,
    )
    assert result.returncode == 0, result.stderr
    assert sum(calls_per_replica(result.stdout).values()) == 10_000
    # Complete and in order: the n-th reply printed is the stream's n-th (its sequence).
    assert [(r["n"], r["sequence"]) for r in replies(result.stdout)] == [
        (n, n) for n in range(1, 10_001)
    ]


@pytest.mark.parametrize("client", CLIENTS)
def test_both_clients_chat(stack, client: str) -> None:
    result = run_client(
        client, stack.target, "--mode", "chat", "--count", "5", "--interval", "0.05",
        "--message", "hello", *JSON_OUTPUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answers = [(r["sequence"], r["message"]) for r in replies(result.stdout)]
    assert answers == [(n, REPLY.format("hello")) for n in range(1, 6)]
    assert sum(calls_per_replica(result.stdout).values()) == 5


@pytest.mark.parametrize("client", CLIENTS)
def test_a_bad_stream_request_is_invalid_argument_in_both_clients(stack, client: str) -> None:
    result = run_client(
        client, stack.target, "--mode", "server-stream", "--count", "100001", *JSON_OUTPUT
    )
    assert result.returncode == 1
    failed = failure(result.stdout)
    assert failed is not None, result.stdout
    assert [(v["field"], v["reason"]) for v in failed["field_violations"]] == [
        ("count", "uint32.gte_lte")
    ]
    assert replies(result.stdout) == []


def test_chat_answers_each_message_before_the_next_is_sent(stack) -> None:
    """A real exchange: the next message goes out only once the last one was answered."""
    outbox: queue.Queue[grpctest_pb2.Message | None] = queue.Queue()
    with grpc.insecure_channel(stack.target) as channel:
        replies = grpctest_pb2_grpc.GrpctestStub(channel).Chat(iter(outbox.get, None), timeout=30)
        for i in range(1, 51):
            outbox.put(grpctest_pb2.Message(message=f"turn {i}"))
            reply = next(replies)
            assert (reply.sequence, reply.message) == (i, REPLY.format(f"turn {i}"))
        outbox.put(None)
        assert list(replies) == []


@pytest.mark.parametrize(
    ("method", "data", "sequences"),
    [
        ("StreamServerResponses", '{"message": "g", "count": 3}', [1, 2, 3]),
        ("Chat", '{"message": "a"} {"message": "b"}', [1, 2]),
    ],
)
def test_grpcurl_streams_through_envoy(stack, method: str, data: str, sequences: list[int]) -> None:
    result = subprocess.run(
        [command("grpcurl"), "-plaintext", "-d", data, stack.target, f"grpctest.Grpctest/{method}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [r["sequence"] for r in json_values(result.stdout)] == sequences


def test_streams_outlive_the_unary_route_timeout(stack) -> None:
    """Envoy's unary routes stop at 30 s; a paced stream and a quiet chat go on."""
    with grpc.insecure_channel(stack.target) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        paced = stub.StreamServerResponses(stream_request("slow", 8, interval=4.5), timeout=60)
        outbox: queue.Queue[grpctest_pb2.Message | None] = queue.Queue()
        chat = stub.Chat(iter(outbox.get, None), timeout=60)
        outbox.put(grpctest_pb2.Message(message="before"))
        assert next(chat).sequence == 1
        start = time.monotonic()
        sequences = [reply.sequence for reply in paced]  # about 31.5 s
        assert time.monotonic() - start > 30
        outbox.put(grpctest_pb2.Message(message="after 30 s of silence"))
        assert next(chat).message == REPLY.format("after 30 s of silence")
        outbox.put(None)
    assert sequences == list(range(1, 9))


def test_a_stream_open_while_its_replica_drains_ends_with_a_status_to_act_on(fresh_stack) -> None:
    """SIGTERM the replica serving a long stream: it keeps streaming through the drain,
    then ends the stream with UNAVAILABLE saying how far it got, within the grace period.
    The caller continues on another replica from there (resume_after)."""
    with grpc.insecure_channel(fresh_stack.target) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        long = stub.StreamServerResponses(stream_request("long", 2000, interval=0.01), timeout=60)
        first = next(long)
        (victim,) = [r for r in fresh_stack.replicas if r.name == first.replica]
        signaled = time.monotonic()
        victim.signal(signal.SIGTERM)
        sequences = [first.sequence]
        error = read_on(long, sequences)
        ended_after = time.monotonic() - signaled
        assert error is not None
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        sent = len(sequences)
        assert error.details() == (
            f"replica {first.replica} is shutting down: {sent} of 2000 replies sent; "
            "continue on another replica"
        )
        assert sequences == list(range(1, sent + 1))
        # Drain 3 s + grace 10 s: the stream was served until a second before the grace
        # ran out, not cut sooner (later is only the machine's load; the status above
        # shows the cut was the replica's, not its exit).
        assert ended_after >= 12, ended_after
        assert victim.wait(10) == 0
        resumed = stream_request("long", 2000)
        resumed.resume_after = sent
        rest = list(stub.StreamServerResponses(resumed, timeout=60))
    assert [reply.sequence for reply in rest] == list(range(sent + 1, 2001))
    assert first.replica not in {reply.replica for reply in rest}


def test_many_streams_at_once_are_balanced_over_the_replicas(stack) -> None:
    """Streams are balanced per call like unary calls: 30 concurrent streams over one
    connection spread over every replica."""
    results: list[set[str]] = []

    def one_stream(stub: grpctest_pb2_grpc.GrpctestStub) -> None:
        results.append(
            {r.replica for r in stub.StreamServerResponses(stream_request("s", 50), timeout=30)}
        )

    with grpc.insecure_channel(stack.target) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        threads = [threading.Thread(target=one_stream, args=(stub,)) for _ in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert len(results) == 30
    assert {replica for replicas in results for replica in replicas} == {
        r.name for r in stack.replicas
    }
