"""Channels the loads open: grpc.aio ones, and each on a connection of its own.

    channels = [open_aio_channel(Connection(target), [OWN_CONNECTION]) for _ in range(8)]
    ...
    await asyncio.gather(*(channel.close() for channel in channels))

The same credentials as every grpctest program's channels (grpctest_common.channels), traced
(W3C traceparent) when an OTLP endpoint is set.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from grpctest_common import tracing
from grpctest_common.channels import Connection, Option

# A subchannel pool of the channel's own: channels to one target that would otherwise
# share one HTTP/2 connection each get their own (a load spreads its calls over many).
OWN_CONNECTION: Option = ("grpc.use_local_subchannel_pool", 1)


def open_aio_channel(connection: Connection, options: Sequence[Option] = ()) -> grpc.aio.Channel:
    """A grpc.aio channel with the connection's credentials, traced when tracing is on."""
    interceptors = None
    if tracing.enabled():
        from opentelemetry.instrumentation.grpc import aio_client_interceptors  # noqa: PLC0415

        interceptors = aio_client_interceptors()
    credentials = connection.credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(connection.target, options, interceptors=interceptors)
    return grpc.aio.secure_channel(
        connection.target, credentials, options, interceptors=interceptors
    )
