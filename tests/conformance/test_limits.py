"""A replica's own limits under load: streams per server (--max-streams) and per HTTP/2
connection (--max-concurrent-streams), with Health and calls answering at the limit."""

from __future__ import annotations

import socket

import grpc
from hyperframe.frame import Frame, SettingsFrame

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_devtools.ports import LOOPBACK
from grpctest_devtools.waiting import wait_until
from grpctest_server.healthcheck import check_health

from .calls import stream_request

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def test_streams_over_the_limit_are_refused_and_health_still_answers(start_server) -> None:
    server = start_server(max_streams="3")
    with grpc.insecure_channel(server.target) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        # Three streams held open: a reply every second, read one at a time.
        held = [
            stub.StreamServerResponses(stream_request("held", 100, 1.0), timeout=60)
            for _ in range(3)
        ]
        for stream in held:
            next(stream)
        one_more = stub.StreamServerResponses(stream_request("over", 1), timeout=10)
        try:
            list(one_more)
        except grpc.RpcError as err:
            refused = err
        else:
            raise AssertionError("a stream over the limit was served")
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "3 streams open, its limit (--max-streams)" in (refused.details() or "")
        # The limit is the service's streams': calls and Health answer as before.
        reply = stub.GetServerResponse(grpctest_pb2.Message(message="call"), timeout=10)
        assert reply.received
        assert check_health(server.target, "grpctest.Grpctest") == "SERVING"
        # A stream that ends gives its place back.
        held.pop().cancel()
        wait_until(lambda: _stream_served(stub), 10, "a stream to be served again", interval=0.2)
        for stream in held:
            stream.cancel()


def _stream_served(stub: grpctest_pb2_grpc.GrpctestStub) -> bool:
    try:
        return len(list(stub.StreamServerResponses(stream_request("again", 1), timeout=10))) == 1
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return False
        raise


def test_each_connection_is_told_its_stream_limit(start_server) -> None:
    server = start_server(max_concurrent_streams="7")
    assert _server_settings(server.port)[SettingsFrame.MAX_CONCURRENT_STREAMS] == 7


def _server_settings(port: int) -> dict[int, int]:
    """The SETTINGS a server sends first on a new HTTP/2 connection."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        sock.sendall(PREFACE + SettingsFrame(0).serialize())
        header = _read(sock, 9)
        frame, length = Frame.parse_frame_header(memoryview(header))
        frame.parse_body(memoryview(_read(sock, length)))
    assert isinstance(frame, SettingsFrame)
    return dict(frame.settings)


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the server closed the connection"
        data += chunk
    return data
