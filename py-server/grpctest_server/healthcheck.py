"""`grpctest-healthcheck`: asks grpc.health.v1.Health/Check; exit 0 only on SERVING.

The container HEALTHCHECK, and the one readiness check of the local run and the tests:

    grpctest-healthcheck --target 127.0.0.1:50051 --service grpctest.Grpctest
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpctest_common.channels import Connection, open_channel
from grpctest_common.settings import PATH, SECONDS, TEXT, Setting, Table, env, read_file


def check_health(
    target: str, service: str = "", timeout: float = 2.0, ca_pem: bytes | None = None
) -> str:
    """The serving status name (SERVING, NOT_SERVING, ...), or the gRPC status code name
    (UNAVAILABLE, NOT_FOUND, ...) if the check itself failed. With `ca_pem`, over TLS
    trusting that CA."""
    with open_channel(Connection(target, tls=ca_pem is not None, ca_pem=ca_pem)) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as err:
            return err.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def _default_target() -> str:
    return f"127.0.0.1:{env('GRPCTEST_PORT', '50051')}"


SETTINGS = Table(
    Setting(
        "--target",
        TEXT,
        _default_target,
        "host:port to check",
        env="GRPCTEST_HEALTH_TARGET",
        shown="127.0.0.1 and $GRPCTEST_PORT or 50051",
    ),
    Setting(
        "--service",
        TEXT,
        "grpctest.Grpctest",
        "service name to check; '' for the whole server",
        env=None,
    ),
    Setting("--timeout", SECONDS, 2.0, "deadline of the check", env=None, shown="2"),
    Setting(
        "--ca",
        PATH,
        None,
        "check over TLS, trusting this CA (PEM)",
        env="GRPCTEST_HEALTH_CA",
        shown="plaintext",
    ),
)


def main(argv: Sequence[str] | None = None) -> None:
    parser = SETTINGS.parser("grpctest-healthcheck", __doc__.splitlines()[0])
    args = SETTINGS.parse(parser, argv)
    ca_pem = read_file(parser, "--ca", args.ca)
    status = check_health(args.target, args.service, args.timeout, ca_pem)
    print(f"{args.target} {args.service or '(server)'}: {status}")
    sys.exit(0 if status == "SERVING" else 1)
