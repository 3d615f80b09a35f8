"""`grpctest-healthcheck`: asks grpc.health.v1.Health/Check; exit 0 only on SERVING.

The container HEALTHCHECK, and the one readiness check of the local run and the tests:

    grpctest-healthcheck --target 127.0.0.1:50051 --service grpctest.Grpctest
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpctest_common.settings import env


def check_health(
    target: str, service: str = "", timeout: float = 2.0, ca_pem: bytes | None = None
) -> str:
    """The serving status name (SERVING, NOT_SERVING, ...), or the gRPC status code name
    (UNAVAILABLE, NOT_FOUND, ...) if the check itself failed. With `ca_pem`, over TLS
    trusting that CA."""
    if ca_pem is None:
        channel = grpc.insecure_channel(target)
    else:
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(ca_pem))
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as err:
            return err.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="grpctest-healthcheck", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--target",
        default=env("GRPCTEST_HEALTH_TARGET", f"127.0.0.1:{env('GRPCTEST_PORT', '50051')}"),
        help="host:port to check (env GRPCTEST_HEALTH_TARGET; default 127.0.0.1 and "
        "$GRPCTEST_PORT or 50051)",
    )
    parser.add_argument(
        "--service",
        default="grpctest.Grpctest",
        help="service name to check; '' for the whole server (default %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds (default %(default)s)")
    parser.add_argument(
        "--ca",
        type=Path,
        default=env("GRPCTEST_HEALTH_CA", "") or None,
        help="check over TLS, trusting this CA (PEM) (env GRPCTEST_HEALTH_CA, default: plaintext)",
    )
    args = parser.parse_args(argv)
    try:
        ca_pem = args.ca.read_bytes() if args.ca else None
    except OSError as err:
        parser.error(f"cannot read --ca {args.ca}: {err.strerror}")
    status = check_health(args.target, args.service, args.timeout, ca_pem)
    print(f"{args.target} {args.service or '(server)'}: {status}")
    sys.exit(0 if status == "SERVING" else 1)
