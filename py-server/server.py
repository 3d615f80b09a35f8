"""The grpctest server: an asyncio gRPC server for the grpctest.Grpctest service.

Besides the service itself it serves the standard gRPC Health service (for Envoy's
active health checks and Docker's HEALTHCHECK) and Server Reflection (for grpcurl).
Every reply names the replica that answered, so load balancing can be seen.

On SIGTERM or SIGINT the server reports NOT_SERVING, keeps answering for a drain
period so that Envoy's health checks take it out of rotation, then stops accepting
calls, lets in-flight calls finish within a grace period and exits 0.

Every setting is a flag with an environment-variable fallback; the defaults suit the
local run (`make run`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Sequence

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc

SERVICE_NAME = grpctest_pb2.DESCRIPTOR.services_by_name["Grpctest"].full_name
REPLY_TEMPLATE = 'Hello I am up and running received "{}" message from you'

# grpcio-reflection implements grpc.reflection.v1alpha only. Recent grpcurl asks for
# grpc.reflection.v1 first; v1's messages are identical on the wire, so the same
# servicer answers under both names.
REFLECTION_V1_SERVICE = "grpc.reflection.v1.ServerReflection"

log = logging.getLogger("grpctest.server")


class GrpctestServicer(grpctest_pb2_grpc.GrpctestServicer):
    """Implements grpctest.Grpctest: acknowledges each message and names the replica."""

    def __init__(self, replica: str) -> None:
        self._replica = replica

    async def GetServerResponse(
        self, request: grpctest_pb2.Message | DecodeError, context: grpc.aio.ServicerContext
    ) -> grpctest_pb2.MessageResponse:
        if isinstance(request, DecodeError):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"request is not a valid grpctest.Message: {request}")
        if not request.message:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "message must not be empty")
        log.debug("received message of %s characters", len(request.message))
        return grpctest_pb2.MessageResponse(
            message=REPLY_TEMPLATE.format(request.message),
            received=True,
            replica=self._replica,
        )


def parse_message(data: bytes) -> grpctest_pb2.Message | DecodeError:
    """Request deserializer that hands a parse error to the handler instead of raising.

    gRPC turns a raising deserializer into an opaque INTERNAL error; this way malformed
    protobuf and invalid UTF-8 get INVALID_ARGUMENT with the parser's reason.
    """
    try:
        return grpctest_pb2.Message.FromString(data)
    except DecodeError as err:
        return err


def add_grpctest_servicer(servicer: GrpctestServicer, server: grpc.aio.Server) -> None:
    """Registers the servicer as the generated add_GrpctestServicer_to_server does, but
    with parse_message as the request deserializer."""
    handlers = {
        "GetServerResponse": grpc.unary_unary_rpc_method_handler(
            servicer.GetServerResponse,
            request_deserializer=parse_message,
            response_serializer=grpctest_pb2.MessageResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--host",
        default=env("GRPCTEST_HOST", "127.0.0.1"),
        help="address to listen on; 0.0.0.0 in containers (env GRPCTEST_HOST, default %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=env("GRPCTEST_PORT", "50051"),
        help="port to listen on (env GRPCTEST_PORT, default %(default)s)",
    )
    parser.add_argument(
        "--replica",
        default=env("GRPCTEST_REPLICA") or socket.gethostname(),
        help="replica name put in every reply (env GRPCTEST_REPLICA, default: the hostname)",
    )
    parser.add_argument(
        "--reflection",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("GRPCTEST_REFLECTION", True),
        help="serve gRPC Server Reflection (env GRPCTEST_REFLECTION, default on)",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=env("GRPCTEST_MAX_MESSAGE_BYTES", str(1024 * 1024)),
        help="largest request accepted; larger ones get RESOURCE_EXHAUSTED "
        "(env GRPCTEST_MAX_MESSAGE_BYTES, default %(default)s)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=env("GRPCTEST_DRAIN_SECONDS", "3"),
        help="after SIGTERM, how long to keep serving while reporting NOT_SERVING so "
        "that Envoy's health checks (1 s interval) take this replica out "
        "(env GRPCTEST_DRAIN_SECONDS, default %(default)s)",
    )
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=env("GRPCTEST_GRACE_SECONDS", "10"),
        help="how long in-flight calls may take to finish once the server stops "
        "(env GRPCTEST_GRACE_SECONDS, default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=env("GRPCTEST_WORKERS", "1"),
        help="server processes sharing the port through SO_REUSEPORT; Python runs one "
        "core per process (env GRPCTEST_WORKERS, default %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default=env("GRPCTEST_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="log level (env GRPCTEST_LOG_LEVEL, default %(default)s)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port < 65536:
        parser.error(f"--port must be between 0 (any free port) and 65535, got {args.port}")
    if args.max_message_bytes <= 0:
        parser.error("--max-message-bytes must be positive")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.workers > 1 and args.port == 0:
        parser.error("--workers > 1 needs a fixed --port (the workers share it)")
    if args.drain_seconds < 0 or args.grace_seconds < 0:
        parser.error("--drain-seconds and --grace-seconds must not be negative")
    return args


def _add_reflection(server: grpc.aio.Server) -> None:
    names = (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME)
    servicer = reflection.aio.ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1_handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(REFLECTION_V1_SERVICE,
                                              {"ServerReflectionInfo": v1_handler}),)
    )


async def start_server(args: argparse.Namespace) -> tuple[grpc.aio.Server, HealthServicer, int]:
    """Builds and starts the server; returns it, its health servicer and the bound port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", args.max_message_bytes),
            # Own limits, whatever sits in front: streams per connection, and idle
            # connections closed after 5 minutes.
            ("grpc.max_concurrent_streams", 100),
            ("grpc.max_connection_idle_ms", 5 * 60 * 1000),
            # Only the workers of one server share a port; otherwise a second server
            # on a taken port fails loudly instead of silently sharing it.
            ("grpc.so_reuseport", 1 if args.workers > 1 else 0),
        ]
    )
    add_grpctest_servicer(GrpctestServicer(args.replica), server)

    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if args.reflection:
        _add_reflection(server)

    port = server.add_insecure_port(f"{args.host}:{args.port}")
    await server.start()
    # "" (the whole server) is SERVING from the start; the service is marked SERVING
    # only once it can answer, which is now.
    await health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    log.info("replica %s serving %s on %s:%s (reflection %s)", args.replica, SERVICE_NAME,
             args.host, port, "on" if args.reflection else "off")
    return server, health, port


async def serve(args: argparse.Namespace) -> None:
    """Serves until SIGTERM or SIGINT, then drains and stops gracefully."""
    server, health, _ = await start_server(args)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log.info("shutting down: NOT_SERVING for %.1f s, then %.1f s grace for in-flight calls",
             args.drain_seconds, args.grace_seconds)
    await health.enter_graceful_shutdown()
    await asyncio.sleep(args.drain_seconds)
    await server.stop(args.grace_seconds)
    log.info("replica %s stopped", args.replica)


def _serve_forever(args: argparse.Namespace) -> None:
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args))


def _run_workers(args: argparse.Namespace) -> None:
    """Starts args.workers server processes on one port and waits for them.

    Each worker handles SIGTERM/SIGINT itself (drain, grace, exit 0); this parent
    forwards the signal and exits 0 only if every worker did.
    """
    context = multiprocessing.get_context("spawn")  # no gRPC state is forked
    workers = [context.Process(target=_serve_forever, args=(args,), name=f"worker-{i}")
               for i in range(args.workers)]
    for worker in workers:
        worker.start()

    def forward(signum: int, frame: object) -> None:
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    for worker in workers:
        worker.join()
    failed = [w.name for w in workers if w.exitcode != 0]
    if failed:
        raise SystemExit(f"server: workers {failed} exited with an error")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        if args.workers > 1:
            _run_workers(args)
        else:
            _serve_forever(args)
    except (OSError, RuntimeError) as err:
        raise SystemExit(f"server: failed to start: {err}") from None


if __name__ == "__main__":
    main()
