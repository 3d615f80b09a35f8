"""The grpctest.Grpctest service.

The servicer is registered with the generated `add_GrpctestServicer_to_server`, and its
handlers take the proto's own messages. What a handler could not act on never reaches
it: `validation.RequestValidation` (a server interceptor) answers INVALID_ARGUMENT for
bytes that do not parse and for requests that break a rule of the contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_server import interception

SERVICE = grpctest_pb2.DESCRIPTOR.services_by_name["Grpctest"]
SERVICE_NAME = SERVICE.full_name
REPLY_TEMPLATE = 'Hello I am up and running received "{}" message from you'

log = logging.getLogger(__name__)


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
        self, request: grpctest_pb2.Message, context: interception.Context
    ) -> grpctest_pb2.MessageResponse:
        log.debug("received message of %s characters", len(request.message))
        return self.reply(request.message)

    async def StreamServerResponses(
        self, request: grpctest_pb2.StreamRequest, context: interception.Context
    ) -> AsyncIterator[grpctest_pb2.MessageResponse]:
        count, interval = request.count, interval_seconds(request)
        # A resumed stream (resume_after > 0) sends only the replies the caller lacks,
        # numbered as the broken stream would have numbered them.
        for sequence in range(request.resume_after + 1, count + 1):
            if self._closing.is_set():
                await self._end_stream(context, f"{sequence - 1} of {count} replies sent")
            # Each reply waits here until HTTP/2 flow control lets it go.
            yield self.reply(request.message, sequence)
            if interval and sequence < count:
                await self._pause(interval)

    async def Chat(
        self,
        requests: AsyncIterator[grpctest_pb2.Message],
        context: interception.Context,
    ) -> AsyncIterator[grpctest_pb2.MessageResponse]:
        sequence = 0
        while (request := await self._next_or_closing(requests)) is not None:
            sequence += 1
            yield self.reply(request.message, sequence)
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
        self, requests: AsyncIterator[grpctest_pb2.Message]
    ) -> grpctest_pb2.Message | None:
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

    async def _end_stream(self, context: interception.Context, progress: str) -> None:
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            f"replica {self._replica} is shutting down: {progress}; continue on another replica",
        )


def interval_seconds(request: grpctest_pb2.StreamRequest) -> float:
    """The pause between a stream's replies (0 to 10 s: the contract's rule, checked
    before the handler runs)."""
    return request.interval.seconds + request.interval.nanos / 1e9
