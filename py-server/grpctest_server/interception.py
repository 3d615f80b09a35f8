"""The one piece of plumbing the server's interceptors share: a method handler rebuilt
around its behaviour, whichever of gRPC's four kinds it is.

grpc.aio tells the kinds apart by the behaviour itself: a coroutine answers once, an
async generator streams. So the wrapper keeps the kind, and `around` (an async context
manager made per call) sees the whole call, the last streamed reply included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc

# (request streaming, response streaming) -> the handler's behaviour, its factory
_KINDS = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}

# Made per call from (request or request iterator, context); yields what the behaviour
# gets instead: the same request, or a request iterator of its own.
Around = Callable[[Any, grpc.aio.ServicerContext], AbstractAsyncContextManager[Any]]


def rebuilt(
    handler: grpc.RpcMethodHandler,
    around: Around,
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler:
    """`handler` with every call run inside `around`; its deserializer replaced if given."""
    name, factory = _KINDS[(handler.request_streaming, handler.response_streaming)]
    behavior = getattr(handler, name)
    if handler.response_streaming:

        async def handle(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with around(request, context) as request_seen:
                async for reply in behavior(request_seen, context):
                    yield reply

    else:

        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with around(request, context) as request_seen:
                return await behavior(request_seen, context)

    return factory(
        handle,
        request_deserializer=request_deserializer or handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
