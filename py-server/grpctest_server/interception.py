"""The one piece of plumbing the server's interceptors share: a method handler rebuilt
around its behaviour, whichever of gRPC's four kinds it is.

grpc.aio tells the kinds apart by the behaviour itself: a coroutine answers once, an
async generator streams. So the wrapper keeps the kind, and `around` (an async context
manager made per call) sees the whole call, the last streamed reply included; `on_reply`,
if given, is called for each reply the behaviour gives, as it is handed to gRPC to send.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeAlias

import grpc

# A method handler and a call's context, whatever the method's messages.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

# (request streaming, response streaming) -> the handler's behaviour, its factory
_KINDS = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}

# Made per call from (request or request iterator, context); yields what the behaviour
# gets instead: the same request, or a request iterator of its own.
Around = Callable[[Any, Context], AbstractAsyncContextManager[Any]]
Behavior = Callable[[Any, Context], Any]
OnReply = Callable[[], object]


def rebuilt(
    handler: Handler,
    around: Around,
    request_deserializer: Callable[[bytes], Any] | None = None,
    on_reply: OnReply = lambda: None,
) -> Handler:
    """`handler` with every call run inside `around`; its deserializer replaced if given."""
    name, factory = _KINDS[(handler.request_streaming, handler.response_streaming)]
    behavior = getattr(handler, name)
    wrap = _streaming if handler.response_streaming else _answering_once
    return factory(
        wrap(behavior, around, on_reply),
        request_deserializer=request_deserializer or handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _streaming(behavior: Behavior, around: Around, on_reply: OnReply) -> Behavior:
    """A streaming behaviour (an async generator) run inside `around`."""

    async def handle(request: Any, context: Context) -> AsyncIterator[Any]:
        async with around(request, context) as request_seen:
            async for reply in behavior(request_seen, context):
                on_reply()
                yield reply

    return handle


def _answering_once(behavior: Behavior, around: Around, on_reply: OnReply) -> Behavior:
    """A behaviour that answers once (a coroutine) run inside `around`."""

    async def handle(request: Any, context: Context) -> Any:
        async with around(request, context) as request_seen:
            reply = await behavior(request_seen, context)
            on_reply()
            return reply

    return handle


class RebuildingInterceptor(grpc.aio.ServerInterceptor, abc.ABC):
    """A server interceptor that rebuilds the handler of every method the server knows
    (`rebuild`), once per method: grpc.aio asks the interceptors at every call."""

    def __init__(self) -> None:
        # Method path -> (the handler it was given, the one it made from it).
        self._rebuilt: dict[str, tuple[Handler, Handler]] = {}

    @abc.abstractmethod
    def rebuild(self, handler: Handler, method: str) -> Handler:
        """The handler to serve `method` (/package.Service/Method) with instead."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(details)
        if handler is None:
            return None  # an unknown method: gRPC answers UNIMPLEMENTED (and nothing is kept)
        given, made = self._rebuilt.get(details.method, (None, None))
        if given is not handler:
            made = self.rebuild(handler, details.method)
            self._rebuilt[details.method] = (handler, made)
        return made
