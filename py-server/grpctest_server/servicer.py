"""The grpctest.Grpctest service: its servicer and its registration on a server.

Every method of the service is registered from the proto's own descriptor, so a method
added to the proto is served (or answers UNIMPLEMENTED, which the tests catch) without
anyone keeping a hand-written method table in step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message

from grpctest import grpctest_pb2, grpctest_pb2_grpc

SERVICE = grpctest_pb2.DESCRIPTOR.services_by_name["Grpctest"]
SERVICE_NAME = SERVICE.full_name
REPLY_TEMPLATE = 'Hello I am up and running received "{}" message from you'

log = logging.getLogger(__name__)


MAX_STREAM_REPLIES = 100_000
MAX_INTERVAL_SECONDS = 10.0


class GrpctestServicer(grpctest_pb2_grpc.GrpctestServicer):
    """Implements grpctest.Grpctest: acknowledges each message and names the replica.

    Streams end cleanly when the server shuts down: once `close_streams_at` time has
    come, each open stream ends with UNAVAILABLE and says how far it got, so the caller
    can continue on another replica.
    """

    def __init__(self, replica: str) -> None:
        self._replica = replica
        self._closing = asyncio.Event()

    def close_streams_at(self, when: float) -> None:
        """Ends the streams still open at `when` (event-loop time)."""
        asyncio.get_running_loop().call_at(when, self._closing.set)

    async def GetServerResponse(
        self, request: grpctest_pb2.Message | DecodeError, context: grpc.aio.ServicerContext
    ) -> grpctest_pb2.MessageResponse:
        message = await valid_message(request, context)
        log.debug("received message of %s characters", len(message))
        return self.reply(message)

    async def StreamServerResponses(
        self, request: grpctest_pb2.StreamRequest | DecodeError, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[grpctest_pb2.MessageResponse]:
        message = await valid_message(request, context)
        count, interval = await _valid_stream(request, context)
        # A resumed stream (resume_after > 0) sends only the replies the caller lacks,
        # numbered as the broken stream would have numbered them.
        for sequence in range(request.resume_after + 1, count + 1):
            if self._closing.is_set():
                await self._end_stream(context, f"{sequence - 1} of {count} replies sent")
            # Each reply waits here until HTTP/2 flow control lets it go.
            yield self.reply(message, sequence)
            if interval and sequence < count:
                await self._pause(interval)

    async def Chat(
        self,
        requests: AsyncIterator[grpctest_pb2.Message | DecodeError],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[grpctest_pb2.MessageResponse]:
        sequence = 0
        while (request := await self._next_or_closing(requests)) is not None:
            message = await valid_message(request, context)
            sequence += 1
            yield self.reply(message, sequence)
        if self._closing.is_set():
            await self._end_stream(context, f"{sequence} messages answered")

    def reply(self, message: str, sequence: int = 0) -> grpctest_pb2.MessageResponse:
        return grpctest_pb2.MessageResponse(
            message=REPLY_TEMPLATE.format(message),
            received=True,
            replica=self._replica,
            sequence=sequence,
        )

    async def _pause(self, seconds: float) -> None:
        """Sleeps, but wakes up at once when the streams are to close."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _next_or_closing(
        self, requests: AsyncIterator[grpctest_pb2.Message | DecodeError]
    ) -> grpctest_pb2.Message | DecodeError | None:
        """The caller's next message; None when it is done or the streams are to close."""
        if self._closing.is_set():
            return None
        next_request = asyncio.ensure_future(anext(requests, None))
        closing = asyncio.ensure_future(self._closing.wait())
        await asyncio.wait({next_request, closing}, return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        if not next_request.done():
            next_request.cancel()
            return None
        return next_request.result()

    async def _end_stream(self, context: grpc.aio.ServicerContext, progress: str) -> None:
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            f"replica {self._replica} is shutting down: {progress}; continue on another replica",
        )


async def valid_message(
    request: grpctest_pb2.Message | grpctest_pb2.StreamRequest | DecodeError,
    context: grpc.aio.ServicerContext,
) -> str:
    """The request's message text; aborts with INVALID_ARGUMENT if there is none."""
    if isinstance(request, DecodeError):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(request))
    if not request.message:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "message must not be empty")
    return request.message


async def _valid_stream(
    request: grpctest_pb2.StreamRequest, context: grpc.aio.ServicerContext
) -> tuple[int, float]:
    """The stream's reply count and pause in seconds; INVALID_ARGUMENT if either, or the
    point to resume after, is out of range."""
    if not 1 <= request.count <= MAX_STREAM_REPLIES:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"count must be between 1 and {MAX_STREAM_REPLIES}, got {request.count}",
        )
    if request.resume_after >= request.count:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"resume_after must be less than count ({request.count}), got {request.resume_after}",
        )
    # From the Duration's own fields: ToTimedelta() raises OverflowError beyond about
    # 2.7 million years, which the caller would see as UNKNOWN.
    interval = request.interval.seconds + request.interval.nanos / 1e9
    if not 0 <= interval <= MAX_INTERVAL_SECONDS:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"interval must be between 0 and {MAX_INTERVAL_SECONDS:g} s, got {interval:g} s",
        )
    return request.count, interval


def lenient_deserializer(message_class: type[Message]) -> Callable[[bytes], Message | DecodeError]:
    """A request deserializer that hands a parse error to the handler instead of raising.

    gRPC turns a raising deserializer into an opaque INTERNAL error; this way malformed
    protobuf and invalid UTF-8 get INVALID_ARGUMENT with the parser's reason.
    """
    name = message_class.DESCRIPTOR.full_name

    def parse(data: bytes) -> Message | DecodeError:
        try:
            return message_class.FromString(data)
        except DecodeError as err:
            return DecodeError(f"request is not a valid {name}: {err}")

    return parse


_HANDLER_FACTORIES = {
    # (client streaming, server streaming) -> handler factory
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _handler(servicer: GrpctestServicer, method: MethodDescriptor) -> grpc.RpcMethodHandler:
    factory = _HANDLER_FACTORIES[(method.client_streaming, method.server_streaming)]
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    return factory(
        getattr(servicer, method.name),
        request_deserializer=lenient_deserializer(request_class),
        response_serializer=response_class.SerializeToString,
    )


def add_to_server(servicer: GrpctestServicer, server: grpc.aio.Server) -> None:
    """Serves every method of grpctest.Grpctest that the proto declares."""
    handlers = {method.name: _handler(servicer, method) for method in SERVICE.methods}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
