"""The server's life: build it (service, health, reflection), run it, drain it, stop it.

On SIGTERM or SIGINT the server reports NOT_SERVING, keeps answering for a drain period
so that Envoy's health checks take it out of rotation, then stops accepting calls, lets
in-flight calls finish within a grace period and returns. Streams still open a second
before the grace period ends are ended with UNAVAILABLE, saying how far they got.

Optional: Prometheus metrics on their own port, OpenTelemetry traces (when
OTEL_EXPORTER_OTLP_ENDPOINT is set), and TLS on the port (a certificate and key).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

from grpctest import grpctest_pb2_grpc
from grpctest_common import tracing
from grpctest_server import limits, metrics, reflection, servicer, validation
from grpctest_server.health import HealthServicer

log = logging.getLogger(__name__)

HEALTH_SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


@dataclass(frozen=True)
class Settings:
    """What a server needs to know; the CLI fills it from flags and environment."""

    host: str = "127.0.0.1"
    port: int = 50051
    replica: str = "replica"
    reflection: bool = True
    max_message_bytes: int = 1024 * 1024
    drain_seconds: float = 3.0
    grace_seconds: float = 10.0
    # Several server processes share the port (SO_REUSEPORT) only when asked to.
    reuse_port: bool = False
    # Prometheus /metrics on this port (0: none).
    metrics_port: int = 0
    # HTTP/2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    max_concurrent_streams: int = 100
    # Streams of the service open at once, all connections together (0: no limit): as
    # many as Envoy lets all replicas together have (envoy/envoy.yaml, the streams'
    # circuit breaker), so that a replica refuses only what reaches it past Envoy.
    max_streams: int = 64
    # TLS on the port: the certificate (PEM, with its chain) and its key; none: plaintext.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # The check of every request against the contract (validation.RequestValidation).
    # No flag turns it off: only the benchmark does, to measure what it costs
    # (grpctest_bench.unchecked_server).
    check_requests: bool = True


@dataclass
class RunningServer:
    """A started server: the grpc.aio server, its servicers and its bound port."""

    server: grpc.aio.Server
    service: servicer.GrpctestServicer
    health: HealthServicer
    port: int

    async def drain_and_stop(self, drain_seconds: float, grace_seconds: float) -> None:
        """NOT_SERVING for every service, keep answering for drain_seconds, then stop
        accepting calls and give in-flight calls grace_seconds to finish (open streams
        are ended a second before, with a status the caller can act on)."""
        await self.health.enter_graceful_shutdown()
        await asyncio.sleep(drain_seconds)
        loop = asyncio.get_running_loop()
        self.service.close_streams_at(loop.time() + max(grace_seconds - 1, 0))
        await self.server.stop(grace_seconds)


def _interceptors(settings: Settings) -> list[grpc.aio.ServerInterceptor]:
    """Tracing (outermost), then the metrics of every call, each only when it is on; then
    the limit on open streams and the check of every request (innermost: traces and
    metrics see what they answer)."""
    # Envoy's health checks (every second, per replica) are no call worth a trace.
    untraced = filters.negate(filters.health_check())
    traced = [aio_server_interceptor(filter_=untraced)] if tracing.enabled() else []
    measured = [metrics.MetricsInterceptor()] if settings.metrics_port else []
    limited = (
        [limits.StreamLimit(settings.max_streams, settings.replica)] if settings.max_streams else []
    )
    checked = [validation.RequestValidation()] if settings.check_requests else []
    return [*traced, *measured, *limited, *checked]


def _listen(server: grpc.aio.Server, settings: Settings) -> int:
    address = f"{settings.host}:{settings.port}"
    if settings.tls_cert is None or settings.tls_key is None:
        return server.add_insecure_port(address)
    pair = (settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())
    return server.add_secure_port(address, grpc.ssl_server_credentials([pair]))


async def start(settings: Settings) -> RunningServer:
    """Builds and starts the server; the service reports SERVING once it can answer."""
    server = grpc.aio.server(
        interceptors=_interceptors(settings),
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            # Own limits, whatever sits in front: streams per connection (and, with
            # the interceptor above, per server), and idle connections closed after 5
            # minutes.
            ("grpc.max_concurrent_streams", settings.max_concurrent_streams),
            ("grpc.max_connection_idle_ms", 5 * 60 * 1000),
            # Only the workers of one server share a port; otherwise a second server
            # on a taken port fails loudly instead of silently sharing it.
            ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
        ],
    )
    service = servicer.GrpctestServicer(settings.replica)
    grpctest_pb2_grpc.add_GrpctestServicer_to_server(service, server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    served = [servicer.SERVICE_NAME, HEALTH_SERVICE_NAME]
    if settings.reflection:
        served += reflection.enable(server, served)

    port = _listen(server, settings)
    await server.start()
    if settings.metrics_port:
        metrics.initialize(served)
        metrics.serve(settings.metrics_port, settings.host)
        metrics.watch_health(health_servicer.serving)
    # "" (the whole server) is SERVING from the start; the service only once it can
    # answer, which is now.
    await health_servicer.set(servicer.SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "replica %s serving %s on %s:%s (%s, reflection %s, metrics %s, tracing %s)",
        settings.replica,
        servicer.SERVICE_NAME,
        settings.host,
        port,
        "plaintext" if settings.tls_cert is None else "TLS",
        "on" if settings.reflection else "off",
        f"on :{settings.metrics_port}" if settings.metrics_port else "off",
        "on" if tracing.enabled() else "off",
    )
    return RunningServer(server, service, health_servicer, port)


async def serve(settings: Settings) -> None:
    """Serves until SIGTERM or SIGINT, then drains and stops gracefully."""
    with tracing.tracing("grpctest-server"):
        await _serve(settings)


async def _serve(settings: Settings) -> None:
    running = await start(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info(
        "shutting down: NOT_SERVING for %.1f s, then %.1f s grace for in-flight calls",
        settings.drain_seconds,
        settings.grace_seconds,
    )
    await running.drain_and_stop(settings.drain_seconds, settings.grace_seconds)
    log.info("replica %s stopped", settings.replica)
