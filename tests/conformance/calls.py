"""What the conformance tests share: requests, and reading a stream to its end."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

import grpc

from grpctest import grpctest_pb2

REPLY = 'Hello I am up and running received "{}" message from you'


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
