"""The Python floor: the least a grpc.aio server can do to answer GetServerResponse.

A generated servicer on a bare `grpc.aio.server()`, on the event loop py-server runs
on (uvloop): no options, interceptors, drain, reflection or request checks. py-server's
CPU per call is measured against this one's in the same run. The standard Health
service is there for readiness (the benchmark's check and Envoy's health checks); calls
never touch it. Not for use outside bench/.
"""

from __future__ import annotations

import argparse

import grpc
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_server.servicer import REPLY_TEMPLATE, SERVICE_NAME  # the same reply


class GrpctestServicer(grpctest_pb2_grpc.GrpctestServicer):
    def __init__(self, replica: str) -> None:
        self._replica = replica

    async def GetServerResponse(
        self, request: grpctest_pb2.Message, context: grpc.aio.ServicerContext
    ) -> grpctest_pb2.MessageResponse:
        return grpctest_pb2.MessageResponse(
            message=REPLY_TEMPLATE.format(request.message), received=True, replica=self._replica
        )


async def serve(port: int, replica: str) -> None:
    server = grpc.aio.server()
    # Only the article's method: the generated servicer answers UNIMPLEMENTED for the rest.
    servicer = GrpctestServicer(replica)  # type: ignore[abstract]
    grpctest_pb2_grpc.add_GrpctestServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replica", default="floor")
    args = parser.parse_args()
    # SIGTERM ends the process at once (Python's default): nothing to drain here.
    uvloop.run(serve(args.port, args.replica))


if __name__ == "__main__":
    main()
