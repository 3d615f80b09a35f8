"""gRPC's admin services on a port of the client's own, for the standard tools.

CSDS (envoy.service.status.v3.ClientStatusDiscoveryService: every xDS resource the
client received, as Envoy's config dump shows Envoy's) and channelz, with reflection so
that grpcurl needs no proto files:

    grpcurl -plaintext 127.0.0.1:PORT \\
        envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus

Imported only when --admin-port is given: the xDS types take a moment to load.
"""

from __future__ import annotations

from concurrent import futures

import grpc
import grpc_admin

# The resources a CSDS dump carries (as google.protobuf.Any): in the default pool, so
# that reflection can describe them and grpcurl print them as JSON.
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2,
)
from envoy.service.status.v3 import csds_pb2
from grpc_channelz.v1 import channelz_pb2
from grpc_reflection.v1alpha import reflection

XDS_TYPES = (
    cluster_pb2, endpoint_pb2, listener_pb2, route_pb2, router_pb2, http_connection_manager_pb2,
)  # fmt: skip
SERVICES = (
    csds_pb2.DESCRIPTOR.services_by_name["ClientStatusDiscoveryService"].full_name,
    channelz_pb2.DESCRIPTOR.services_by_name["Channelz"].full_name,
    reflection.SERVICE_NAME,
)


def serve_admin(port: int) -> grpc.Server:
    """Starts the admin services on 127.0.0.1:`port`; stop() the server when done."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    grpc_admin.add_admin_servicers(server)
    reflection.enable_server_reflection(SERVICES, server)
    if server.add_insecure_port(f"127.0.0.1:{port}") != port:
        raise OSError(f"cannot listen on 127.0.0.1:{port}")
    server.start()
    return server
