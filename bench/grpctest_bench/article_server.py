"""The original article's server design, kept only as the benchmark baseline.

A synchronous grpc.server on a ThreadPoolExecutor(max_workers=10), answering the same
GetServerResponse with the same reply as py-server. Not for use outside bench/.
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_server.servicer import REPLY_TEMPLATE  # the same reply as py-server


class GrpctestServicer(grpctest_pb2_grpc.GrpctestServicer):
    def GetServerResponse(
        self, request: grpctest_pb2.Message, context: grpc.ServicerContext
    ) -> grpctest_pb2.MessageResponse:
        return grpctest_pb2.MessageResponse(
            message=REPLY_TEMPLATE.format(request.message), received=True, replica="article"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    # Only the article's method: the generated servicer answers UNIMPLEMENTED for the rest.
    servicer = GrpctestServicer()  # type: ignore[abstract]
    grpctest_pb2_grpc.add_GrpctestServicer_to_server(servicer, server)
    # Not in the article: the standard health service, so the benchmark knows when the
    # server is ready the way it knows it of every other server. Calls never touch it.
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(1).wait()


if __name__ == "__main__":
    main()
