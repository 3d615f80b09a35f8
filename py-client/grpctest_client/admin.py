"""gRPC's admin services on a port of the client's own, for the standard tools.

Channelz (the client's channels, subchannels and sockets: which replicas it is
connected to, calls started, succeeded and failed on each) with reflection, so that
grpcurl needs no proto files:

    grpcurl -plaintext 127.0.0.1:PORT grpc.channelz.v1.Channelz/GetTopChannels

Not CSDS, unlike go-client: Python's CSDS service (grpcio-csds) needs xds-protos, which
ships an old copy of the opentelemetry-proto modules and overwrites the real ones in the
same environment (grpc/grpc#42926), breaking the client's tracing (its OTLP exporter).
go-client serves CSDS; the control plane's log says what it sent to whom.

Imported only when --admin-port is given.
"""

from __future__ import annotations

from concurrent import futures

import grpc
from grpc_channelz.v1 import channelz, channelz_pb2
from grpc_reflection.v1alpha import reflection

SERVICES = (
    channelz_pb2.DESCRIPTOR.services_by_name["Channelz"].full_name,
    reflection.SERVICE_NAME,
)


def serve_admin(port: int) -> grpc.Server:
    """Starts the admin services on 127.0.0.1:`port`; stop() the server when done."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    channelz.add_channelz_servicer(server)  # type: ignore[no-untyped-call]  # (grpcio-channelz has no hints)
    reflection.enable_server_reflection(SERVICES, server)
    if server.add_insecure_port(f"127.0.0.1:{port}") != port:
        raise OSError(f"cannot listen on 127.0.0.1:{port}")
    server.start()
    return server
