"""The replica's own limit on streams: however many connections bring them, at most so
many streams of the service (server streams and chats) are open at once.

A stream whose caller does not read stays open, its next reply waiting for HTTP/2 flow
control (at most one window of replies, 64 KiB, is in flight for it), so this also
bounds the streams held that way. A stream over the limit is refused before it starts:
RESOURCE_EXHAUSTED, saying so. Only the service's streams count: the Health service
(which load balancers and Envoy ask) and reflection answer whatever the limit.
"""

from __future__ import annotations

from typing import Any

import grpc

from grpctest_server import interception
from grpctest_server.servicer import SERVICE_NAME


class StreamLimit(interception.RebuildingInterceptor):
    """At most `limit` streams of grpctest.Grpctest open at once."""

    def __init__(self, limit: int, replica: str) -> None:
        super().__init__()
        self.limit, self.replica, self.open = limit, replica, 0

    def rebuild(self, handler: interception.Handler, method: str) -> interception.Handler:
        if not handler.response_streaming or not method.startswith(f"/{SERVICE_NAME}/"):
            return handler
        return interception.rebuilt(handler, lambda request, context: _Slot(self, request, context))


class _Slot:
    """Around one stream (interception.Around): takes a place under the limit for as
    long as the stream is open, or refuses it."""

    def __init__(self, limit: StreamLimit, request: Any, context: interception.Context) -> None:
        self.limit, self.request, self.context = limit, request, context

    async def __aenter__(self) -> Any:
        if self.limit.open >= self.limit.limit:
            await self.context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"replica {self.limit.replica} has {self.limit.limit} streams open, its "
                "limit (--max-streams); try again later",
            )
        self.limit.open += 1
        return self.request

    async def __aexit__(self, *_: object) -> None:
        self.limit.open -= 1
