"""Prometheus metrics of a replica: calls by method and status, latency, calls in flight,
health; served on their own port at /metrics.

The names are those of grpc-ecosystem's go-grpc-prometheus, which dashboards know:

    grpc_server_started_total{grpc_type, grpc_service, grpc_method}
    grpc_server_handled_total{grpc_type, grpc_service, grpc_method, grpc_code}
    grpc_server_handling_seconds{grpc_type, grpc_service, grpc_method}   (histogram)
    grpc_server_in_flight{grpc_type, grpc_service, grpc_method}
    grpc_health_serving{service}          1 while the Health service reports SERVING

go-server serves the same names. prometheus-client (the reference Prometheus library)
records them, from one interceptor: no gRPC metrics library for Python fits a grpc.aio
server with these names (docs/observability.md: which were tried, and the cost).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import grpc
import prometheus_client
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from grpctest_server import interception

LABELS = ("grpc_type", "grpc_service", "grpc_method")
STARTED = prometheus_client.Counter("grpc_server_started", "RPCs started", LABELS)
HANDLED = prometheus_client.Counter(
    "grpc_server_handled", "RPCs completed, by status code", (*LABELS, "grpc_code")
)
SECONDS = prometheus_client.Histogram(
    "grpc_server_handling_seconds",
    "RPC duration until the last reply or the error",
    LABELS,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IN_FLIGHT = prometheus_client.Gauge("grpc_server_in_flight", "RPCs being handled", LABELS)


def serve(port: int, host: str) -> None:
    """Serves /metrics on `port` (a background thread)."""
    prometheus_client.start_http_server(port, addr=host)


class HealthCollector(Collector):
    """grpc_health_serving{service}: read from the health servicer at each scrape."""

    def __init__(self) -> None:
        self.statuses: Callable[[], dict[str, bool]] = dict

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "grpc_health_serving", "1 while the Health service reports SERVING", labels=["service"]
        )
        for service, serving in sorted(self.statuses().items()):
            gauge.add_metric([service], 1 if serving else 0)
        yield gauge


_HEALTH = HealthCollector()
prometheus_client.REGISTRY.register(_HEALTH)


def watch_health(statuses: Callable[[], dict[str, bool]]) -> None:
    """Reports what `statuses` says ({service: serving}) as grpc_health_serving."""
    _HEALTH.statuses = statuses


def _rpc_type(handler: interception.Handler) -> str:
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


class MetricsInterceptor(interception.RebuildingInterceptor):
    """Counts, times and tracks every call the server handles."""

    def rebuild(self, handler: interception.Handler, method: str) -> interception.Handler:
        service, _, name = method.lstrip("/").rpartition("/")
        labels = (_rpc_type(handler), service, name)
        return interception.rebuilt(handler, functools.partial(_Call, labels))


class _Call:
    """The metrics of one call, from start to its end (the last reply, or the error)."""

    def __init__(
        self, labels: tuple[str, str, str], request: Any, context: interception.Context
    ) -> None:
        self.labels, self.request, self.context = labels, request, context

    async def __aenter__(self) -> Any:
        STARTED.labels(*self.labels).inc()
        IN_FLIGHT.labels(*self.labels).inc()
        self.start = time.perf_counter()
        return self.request

    async def __aexit__(self, error: type[BaseException] | None, *_: object) -> None:
        # (grpc.aio answers None where no status was set; its type stubs say otherwise)
        code = cast("grpc.StatusCode | None", self.context.code())
        if code is None:  # no status set: a clean end, a cancelled call, or an exception
            if error is None:
                code = grpc.StatusCode.OK
            elif self.context.cancelled():
                code = grpc.StatusCode.CANCELLED
            else:
                code = grpc.StatusCode.UNKNOWN
        HANDLED.labels(*self.labels, code.name).inc()
        SECONDS.labels(*self.labels).observe(time.perf_counter() - self.start)
        IN_FLIGHT.labels(*self.labels).dec()
