"""Hostile input against the real stack, through Envoy.

Each bad request gets a precise status or a closed connection, and the service keeps
answering afterwards. A hypothesis fuzz test (bounded budget) drives arbitrary text
through the request path. What each server does with bad input straight, without
Envoy, is the conformance suite's (tests/conformance/test_bad_input.py).
"""

from __future__ import annotations

import os
import socket

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpctest import grpctest_pb2, grpctest_pb2_grpc

from .conformance.calls import (
    METHOD,
    REPLY,
    assert_deadlines_end_ok_or_deadline_exceeded,
    assert_unparsed,
    exchange,
    status_of,
)

REPLICAS = 3


@pytest.fixture
def target(stack) -> str:
    return stack.target


def assert_still_serving(stack) -> None:
    stack.check_alive()
    with grpc.insecure_channel(stack.target) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        replicas = {
            stub.GetServerResponse(grpctest_pb2.Message(message="ok"), timeout=5).replica
            for _ in range(3 * REPLICAS)
        }
    assert len(replicas) == REPLICAS


@pytest.mark.parametrize("body", [b"\x0a\x02\xff\xfe", b"\x0a\x10ab", b"\xff\xff\xff\xff"])
def test_malformed_request_is_invalid_argument(stack, target: str, body: bytes) -> None:
    assert_unparsed(status_of(target, body))
    assert_still_serving(stack)


@pytest.mark.parametrize("method", ["/grpctest.Grpctest/NoSuchMethod", "/no.Such/Service"])
def test_unknown_method_is_unimplemented(stack, target: str, method: str) -> None:
    assert status_of(target, b"", method).code() == grpc.StatusCode.UNIMPLEMENTED


def test_expired_and_near_expired_deadlines(stack, target: str) -> None:
    assert_deadlines_end_ok_or_deadline_exceeded(target)
    assert_still_serving(stack)


def test_plain_http1_to_envoy_gets_an_http_error_and_a_closed_connection(stack) -> None:
    # (GET / is the web page, on purpose.)
    request = b"GET /admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = exchange(stack.envoy_port, request)
    status_line = reply.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 ")
    assert not status_line.startswith(b"HTTP/1.1 2")
    assert_still_serving(stack)


def test_garbage_bytes_get_a_closed_connection(stack) -> None:
    garbage = os.urandom(4096)
    for port in (stack.envoy_port, int(stack.replica_target(1).rsplit(":", 1)[1])):
        exchange(port, garbage)
    assert_still_serving(stack)


def test_idle_and_half_open_connections_do_not_block_service(stack) -> None:
    ports = [stack.envoy_port, int(stack.replica_target(2).rsplit(":", 1)[1])]
    held = []
    try:
        for i in range(40):
            sock = socket.create_connection(("127.0.0.1", ports[i % 2]), timeout=5)
            if i % 4 < 2:
                sock.sendall(b"PRI * HTTP/2.0\r\n")  # half an HTTP/2 preface, then silence
            held.append(sock)
        assert_still_serving(stack)
    finally:
        for sock in held:
            sock.close()


def test_oversized_header_is_rejected_by_envoy(stack) -> None:
    """70 KB of headers, over Envoy's limit (60 KiB): Envoy ends the connection (HTTP/2
    GOAWAY, counted as a protocol error), which gRPC reports as UNAVAILABLE; no replica
    is asked."""
    counters = [
        "http.grpc_ingress.downstream_cx_protocol_error",
        "cluster.grpctest.upstream_rq_total",
    ]
    before = stack.admin.stats()
    with grpc.insecure_channel(stack.target) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
        with pytest.raises(grpc.RpcError) as err:
            call(
                grpctest_pb2.Message(message="x").SerializeToString(),
                timeout=5,
                metadata=(("x-big", "y" * 70_000),),
            )
    after = stack.admin.stats()
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
    assert [after.get(c, 0) - before.get(c, 0) for c in counters] == [1, 0], after
    assert_still_serving(stack)


# -- fuzz: bounded budget ----------------------------------------------------------------------

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(message=st.text(max_size=300))
def test_fuzz_arbitrary_text_is_echoed_exactly_through_envoy(stack, message: str) -> None:
    with grpc.insecure_channel(stack.target) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        try:
            reply = stub.GetServerResponse(grpctest_pb2.Message(message=message), timeout=5)
        except grpc.RpcError as err:
            assert message == ""
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        else:
            assert message
            assert reply.message == REPLY.format(message)
            assert reply.received
