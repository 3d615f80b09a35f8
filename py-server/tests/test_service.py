"""The server in-process: a real grpc.aio server on a free port, called over gRPC."""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_server import lifecycle

MAX_MESSAGE_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    """Runs the server on its own event loop in a thread for the module's tests."""
    settings = lifecycle.Settings(
        port=0, replica="unit-replica", max_message_bytes=MAX_MESSAGE_BYTES
    )
    loop = asyncio.new_event_loop()
    running = loop.run_until_complete(lifecycle.start(settings))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        asyncio.run_coroutine_threadsafe(running.server.stop(None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def stub(target: str) -> Iterator[grpctest_pb2_grpc.GrpctestStub]:
    with grpc.insecure_channel(target) as channel:
        yield grpctest_pb2_grpc.GrpctestStub(channel)


def test_reply_keeps_the_article_form_and_names_the_replica(stub) -> None:
    reply = stub.GetServerResponse(grpctest_pb2.Message(message="hi there"), timeout=5)
    assert reply.message == 'Hello I am up and running received "hi there" message from you'
    assert reply.received is True
    assert reply.replica == "unit-replica"


def test_unicode_message_round_trips(stub) -> None:
    reply = stub.GetServerResponse(grpctest_pb2.Message(message="héllo ✓"), timeout=5)
    assert '"héllo ✓"' in reply.message


def test_empty_message_is_invalid_argument(stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetServerResponse(grpctest_pb2.Message(message=""), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "message must not be empty"


def test_oversized_message_is_resource_exhausted_and_server_keeps_serving(stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetServerResponse(
            grpctest_pb2.Message(message="x" * (MAX_MESSAGE_BYTES + 1)), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in err.value.details()
    assert stub.GetServerResponse(grpctest_pb2.Message(message="still here"), timeout=5).received


def _served_services(target: str) -> list[str]:
    """The services the server lists through reflection."""
    with grpc.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        (reply,) = stub.ServerReflectionInfo(requests, timeout=5)
    return [service.name for service in reply.list_services_response.service]


def test_every_method_of_every_listed_service_is_served(target: str) -> None:
    """A method declared in a served service's proto but not implemented answers
    UNIMPLEMENTED: caught here. Each method gets an empty request (the server may reject
    it, but not as unknown)."""
    pool = descriptor_pool.Default()
    services = _served_services(target)
    assert "grpctest.Grpctest" in services
    unimplemented = []
    with grpc.insecure_channel(target) as channel:
        for service in services:
            for method in pool.FindServiceByName(service).methods:
                call = channel.stream_stream(f"/{service}/{method.name}")
                try:
                    for _ in call(iter([b""]), timeout=2):
                        break
                except grpc.RpcError as err:
                    if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                        unimplemented.append(method.full_name)
    assert unimplemented == []


@pytest.mark.parametrize("service", ["", "grpctest.Grpctest"])
def test_health_is_serving(target: str, service: str) -> None:
    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_of_unknown_service_is_not_found(target: str) -> None:
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as err:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "method",
    [
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ],
)
def test_reflection_lists_services_under_v1alpha_and_v1(target: str, method: str) -> None:
    with grpc.insecure_channel(target) as channel:
        call = channel.stream_stream(
            method,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        (reply,) = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    names = {s.name for s in reply.list_services_response.service}
    assert {"grpctest.Grpctest", "grpc.health.v1.Health"} <= names


def test_reflection_can_be_switched_off() -> None:
    async def list_services() -> grpc.StatusCode:
        running = await lifecycle.start(lifecycle.Settings(port=0, reflection=False))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = reflection_pb2_grpc.ServerReflectionStub(channel)
                call = stub.ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
                )
                try:
                    async for _ in call:
                        pass
                except grpc.aio.AioRpcError as err:
                    return err.code()
                return grpc.StatusCode.OK
        finally:
            await running.server.stop(None)

    assert asyncio.run(list_services()) == grpc.StatusCode.UNIMPLEMENTED


# -- streaming ---------------------------------------------------------------------------


def stream_request(
    message: str = "s", count: int = 5, interval: float = 0.0, resume_after: int = 0
):
    request = grpctest_pb2.StreamRequest(message=message, count=count, resume_after=resume_after)
    request.interval.FromTimedelta(datetime.timedelta(seconds=interval))
    return request


def test_server_stream_sends_count_replies_in_order(stub) -> None:
    replies = list(stub.StreamServerResponses(stream_request("hi", 1000), timeout=10))
    assert [r.sequence for r in replies] == list(range(1, 1001))
    assert {r.message for r in replies} == {
        'Hello I am up and running received "hi" message from you'
    }
    assert {r.replica for r in replies} == {"unit-replica"}


def test_a_resumed_stream_sends_the_rest_numbered_as_the_broken_one(stub) -> None:
    replies = list(stub.StreamServerResponses(stream_request(count=10, resume_after=7), timeout=5))
    assert [r.sequence for r in replies] == [8, 9, 10]


def test_server_stream_is_paced_by_its_interval(stub) -> None:
    start = time.monotonic()
    assert (
        len(list(stub.StreamServerResponses(stream_request(count=4, interval=0.1), timeout=5))) == 4
    )
    assert time.monotonic() - start >= 0.3  # three pauses between four replies


@pytest.mark.parametrize(
    ("request_", "detail"),
    [
        (stream_request(count=0), "count must be between 1 and 100000, got 0"),
        (stream_request(count=100_001), "count must be between 1 and 100000, got 100001"),
        (stream_request(interval=11), "interval must be between 0 and 10 s, got 11 s"),
        (stream_request(message=""), "message must not be empty"),
        (stream_request(resume_after=5), "resume_after must be less than count (5), got 5"),
    ],
)
def test_bad_stream_request_is_invalid_argument(stub, request_, detail: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        list(stub.StreamServerResponses(request_, timeout=5))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == detail


def test_stream_deadline_ends_the_stream(stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        list(stub.StreamServerResponses(stream_request(count=100, interval=0.1), timeout=0.5))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_chat_answers_each_message_as_it_arrives(stub) -> None:
    messages = [grpctest_pb2.Message(message=f"m{i}") for i in range(1, 4)]
    replies = list(stub.Chat(iter(messages), timeout=5))
    assert [(r.sequence, r.message) for r in replies] == [
        (i, f'Hello I am up and running received "m{i}" message from you') for i in range(1, 4)
    ]


def test_chat_rejects_an_empty_message(stub) -> None:
    messages = iter([grpctest_pb2.Message(message="ok"), grpctest_pb2.Message(message="")])
    replies = stub.Chat(messages, timeout=5)
    assert next(replies).sequence == 1
    with pytest.raises(grpc.RpcError) as err:
        next(replies)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def read_all(call) -> tuple[list[int], grpc.aio.AioRpcError | None]:
    """The sequence numbers a stream delivered, and the error that ended it (if any)."""
    sequences = []
    try:
        async for reply in call:
            sequences.append(reply.sequence)
    except grpc.aio.AioRpcError as err:
        return sequences, err
    return sequences, None


def test_shutdown_ends_open_streams_with_unavailable_and_their_progress() -> None:
    """A stream that would outlast the grace period ends a second before it, saying how
    far it got; one that fits finishes."""

    async def scenario() -> list[tuple[list[int], grpc.aio.AioRpcError | None]]:
        running = await lifecycle.start(lifecycle.Settings(port=0, replica="r"))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = grpctest_pb2_grpc.GrpctestStub(channel)
            streams = [
                asyncio.ensure_future(read_all(stub.StreamServerResponses(request, timeout=20)))
                for request in (
                    stream_request(count=100, interval=0.1),
                    stream_request(count=5, interval=0.1),
                    stream_request(count=1000, interval=0.1, resume_after=500),
                )
            ]
            await asyncio.sleep(0.3)
            await running.drain_and_stop(0, 2)
            return await asyncio.gather(*streams)

    (long, long_error), (short, short_error), (resumed, resumed_error) = asyncio.run(scenario())
    assert long_error is not None
    assert long_error.code() == grpc.StatusCode.UNAVAILABLE
    assert long_error.details() == (
        f"replica r is shutting down: {len(long)} of 100 replies sent; continue on another replica"
    )
    assert long == list(range(1, len(long) + 1))
    assert 5 <= len(long) < 100
    assert (short, short_error) == ([1, 2, 3, 4, 5], None)
    # A resumed stream counts the replies of the stream it continues.
    assert resumed_error is not None
    assert resumed_error.details() == (
        f"replica r is shutting down: {resumed[-1]} of 1000 replies sent; "
        "continue on another replica"
    )
    assert resumed == list(range(501, resumed[-1] + 1))
