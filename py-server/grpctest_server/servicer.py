"""The grpctest.Grpctest service: its servicer and its registration on a server.

Every method of the service is registered from the proto's own descriptor, so a method
added to the proto is served (or answers UNIMPLEMENTED, which the tests catch) without
anyone keeping a hand-written method table in step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message

from grpctest import grpctest_pb2, grpctest_pb2_grpc

SERVICE = grpctest_pb2.DESCRIPTOR.services_by_name["Grpctest"]
SERVICE_NAME = SERVICE.full_name
REPLY_TEMPLATE = 'Hello I am up and running received "{}" message from you'

log = logging.getLogger(__name__)


class GrpctestServicer(grpctest_pb2_grpc.GrpctestServicer):
    """Implements grpctest.Grpctest: acknowledges each message and names the replica."""

    def __init__(self, replica: str) -> None:
        self._replica = replica

    async def GetServerResponse(
        self, request: grpctest_pb2.Message | DecodeError, context: grpc.aio.ServicerContext
    ) -> grpctest_pb2.MessageResponse:
        message = await valid_message(request, context)
        log.debug("received message of %s characters", len(message))
        return self.reply(message)

    def reply(self, message: str) -> grpctest_pb2.MessageResponse:
        return grpctest_pb2.MessageResponse(
            message=REPLY_TEMPLATE.format(message), received=True, replica=self._replica
        )


async def valid_message(
    request: grpctest_pb2.Message | DecodeError, context: grpc.aio.ServicerContext
) -> str:
    """The request's message text; aborts with INVALID_ARGUMENT if there is none."""
    if isinstance(request, DecodeError):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"request is not a valid grpctest.Message: {request}"
        )
    if not request.message:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "message must not be empty")
    return request.message


def lenient_deserializer(message_class: type[Message]) -> Callable[[bytes], Message | DecodeError]:
    """A request deserializer that hands a parse error to the handler instead of raising.

    gRPC turns a raising deserializer into an opaque INTERNAL error; this way malformed
    protobuf and invalid UTF-8 get INVALID_ARGUMENT with the parser's reason.
    """

    def parse(data: bytes) -> Message | DecodeError:
        try:
            return message_class.FromString(data)
        except DecodeError as err:
            return err

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
