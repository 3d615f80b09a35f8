"""A gRPC health probe: asks grpc.health.v1.Health/Check and exits 0 only on SERVING.

Used as the container HEALTHCHECK and by the local run to wait for replicas:

    python healthcheck.py --target 127.0.0.1:50051 --service grpctest.Grpctest
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check_health(target: str, service: str = "", timeout: float = 2.0) -> str:
    """Returns the serving status name, or the gRPC status code name if the check failed."""
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as err:
            return err.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=os.environ.get(
        "GRPCTEST_HEALTH_TARGET", f"127.0.0.1:{os.environ.get('GRPCTEST_PORT', '50051')}"),
        help="host:port to check (default: 127.0.0.1 and $GRPCTEST_PORT or 50051)")
    parser.add_argument("--service", default="grpctest.Grpctest",
                        help="service name to check; '' for the whole server (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds (default %(default)s)")
    args = parser.parse_args(argv)
    status = check_health(args.target, args.service, args.timeout)
    print(f"{args.target} {args.service or '(server)'}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
