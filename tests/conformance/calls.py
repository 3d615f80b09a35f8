"""What the conformance tests (and the hostile-input tests through Envoy) share: requests,
reading a stream to its end, calls with raw bytes, raw TCP exchanges, the statuses of bad
requests read by meaning (code, field paths, rule ids), not by the runtimes' words; reading
grpcurl."""

from __future__ import annotations

import datetime
import json
import socket
import time
from collections.abc import Iterable
from typing import Any, cast

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from grpctest import grpctest_pb2

REPLY = 'Hello I am up and running received "{}" message from you'
METHOD = "/grpctest.Grpctest/GetServerResponse"
# The project's own words before the protobuf runtime's reason, for bytes that do not parse.
UNPARSED = "request is not a valid grpctest.Message: "
# The contract's own rule (proto/grpctest/grpctest.proto) and its message.
RESUME_RULE = ("", "resume_after_below_count")
RESUME_MESSAGE = "resume_after must be less than count"


def violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    """The rules a refused request broke: (field path, rule id) of each field violation
    of the status's google.rpc.BadRequest detail, in the server's order. Also checks
    what the project writes: INVALID_ARGUMENT, the status message ("field: description"
    per violation, joined by "; "), and the description of its own rule."""
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    status = rpc_status.from_call(cast("grpc.Call", err))  # the failed call itself
    assert status is not None, err.details()
    found: list[error_details_pb2.BadRequest.FieldViolation] = []
    for detail in status.details:
        request = error_details_pb2.BadRequest()
        assert detail.Unpack(request), detail.type_url
        found += request.field_violations
    described = [f"{v.field}: {v.description}" if v.field else v.description for v in found]
    assert (err.details() or "") == "; ".join(described)
    assert all(v.description == RESUME_MESSAGE for v in found if v.reason == RESUME_RULE[1])
    return [(v.field, v.reason) for v in found]


def assert_unparsed(err: grpc.RpcError) -> None:
    """INVALID_ARGUMENT for bytes that do not parse, with the runtime's reason."""
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    details = err.details() or ""
    assert details.startswith(UNPARSED), details
    assert len(details) > len(UNPARSED)


def stream_request(
    message: str = "s", count: int = 5, interval: float = 0.0, resume_after: int = 0
) -> grpctest_pb2.StreamRequest:
    request = grpctest_pb2.StreamRequest(message=message, count=count, resume_after=resume_after)
    request.interval.FromTimedelta(datetime.timedelta(seconds=interval))
    return request


def read_stream(
    replies: Iterable[grpctest_pb2.MessageResponse],
) -> tuple[list[int], grpc.RpcError | None]:
    """The sequence numbers a stream delivered, and the error that ended it (if any)."""
    sequences = []
    try:
        for reply in replies:
            sequences.append(reply.sequence)
    except grpc.RpcError as err:
        return sequences, err
    return sequences, None


def raw_call(target: str, body: bytes, method: str = METHOD, timeout: float = 5) -> bytes:
    """A call with the body sent as is (no serialization), as a broken client would."""
    with grpc.insecure_channel(target) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        return call(body, timeout=timeout)


def status_of(target: str, body: bytes, method: str = METHOD, timeout: float = 5) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        raw_call(target, body, method, timeout)
    return err.value


def exchange(port: int, payload: bytes, timeout: float = 10) -> bytes:
    """Sends payload on a raw TCP connection; returns what came back until the peer closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        else:
            pytest.fail(f"port {port} kept the connection open after {payload[:20]!r}")
    return received


def assert_deadlines_end_ok_or_deadline_exceeded(target: str) -> None:
    """An expired deadline is DEADLINE_EXCEEDED; deadlines that expire while the call is
    in flight end each call OK or DEADLINE_EXCEEDED (which one depends on timing), never
    anything else."""
    body = grpctest_pb2.Message(message="late").SerializeToString()
    # (grpcio treats timeout=0 as "no deadline"; a negative one lies in the past.)
    assert status_of(target, body, timeout=-1).code() == grpc.StatusCode.DEADLINE_EXCEEDED
    outcomes = set()
    with grpc.insecure_channel(target) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
        for _ in range(200):
            try:
                call(body, timeout=0.0005)
                outcomes.add(grpc.StatusCode.OK)
            except grpc.RpcError as err:
                outcomes.add(err.code())
    assert outcomes <= {grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED}, outcomes


def json_values(text: str) -> list[Any]:
    """The JSON values of a text that holds one after another (grpcurl's output of a
    stream: one pretty-printed object per message)."""
    decoder, at = json.JSONDecoder(), 0
    values: list[Any] = []
    while at < len(text.rstrip()):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
        at = len(text) - len(text[at:].lstrip())
    return values
