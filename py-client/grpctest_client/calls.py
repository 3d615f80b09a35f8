"""Calling grpctest.Grpctest, with a deadline on every call (channels:
grpctest_common.channels)."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_client.resume import Messages, OnResume, Policy, resumable_chat, resumable_stream


@dataclass(frozen=True)
class Resume:
    """How a broken stream goes on: at most `attempts` resumes, each one reported to
    `on_resume` (the sequence resumed after, the replica that now answers)."""

    attempts: int
    on_resume: OnResume


def get_server_responses(
    channel: grpc.Channel, message: str, count: int, timeout: float, interval: float = 0.0
) -> Iterator[grpctest_pb2.MessageResponse]:
    """Makes `count` calls one after another, `interval` seconds apart, each with a
    deadline of `timeout` seconds, and yields each reply; a failed call raises
    grpc.RpcError."""
    stub = grpctest_pb2_grpc.GrpctestStub(channel)
    request = grpctest_pb2.Message(message=message)
    for i in range(count):
        if i and interval:
            time.sleep(interval)
        yield stub.GetServerResponse(request, timeout=timeout)


def stream_server_responses(
    channel: grpc.Channel,
    message: str,
    count: int,
    interval: float,
    timeout: float,
    *,
    resume: Resume,
) -> Iterator[grpctest_pb2.MessageResponse]:
    """One server stream: `count` replies, one every `interval` seconds, as they arrive,
    resumed on another replica where it breaks (grpctest_client.resume); the whole
    stream, resumes included, has a deadline of `timeout` seconds."""
    request = grpctest_pb2.StreamRequest(message=message, count=count)
    request.interval.FromTimedelta(datetime.timedelta(seconds=interval))
    policy = Policy(resume.attempts, time.monotonic() + timeout)
    stub = grpctest_pb2_grpc.GrpctestStub(channel)
    yield from resumable_stream(stub, request, policy, resume.on_resume)


def chat(
    channel: grpc.Channel, messages: Messages, timeout: float, *, resume: Resume
) -> Iterator[grpctest_pb2.MessageResponse]:
    """A bidirectional stream: sends the messages (`count` of them, `interval` seconds
    apart), yields each reply as it arrives; a
    broken chat goes on in a new one (grpctest_client.resume). The whole exchange has a
    deadline of `timeout` seconds."""
    policy = Policy(resume.attempts, time.monotonic() + timeout)
    stub = grpctest_pb2_grpc.GrpctestStub(channel)
    yield from resumable_chat(stub, messages, policy, resume.on_resume)
