"""Prometheus metrics of a replica: calls by method and status, latency, calls in flight,
messages, health; served on their own port at /metrics.

The names, labels and label values are those of grpc-ecosystem's go-grpc-middleware
Prometheus provider (go-grpc-prometheus's successor), which go-server uses and which
dashboards know; both servers serve exactly these series (the conformance suite compares
them, tests/conformance/test_metrics.py):

    grpc_server_started_total{grpc_type, grpc_service, grpc_method}
    grpc_server_handled_total{grpc_type, grpc_service, grpc_method, grpc_code}
    grpc_server_handling_seconds{grpc_type, grpc_service, grpc_method}   (histogram)
    grpc_server_msg_received_total{grpc_type, grpc_service, grpc_method}
    grpc_server_msg_sent_total{grpc_type, grpc_service, grpc_method}
    grpc_server_in_flight{grpc_type, grpc_service, grpc_method}
    grpc_health_serving{service}          1 while the Health service reports SERVING

`grpc_code` is the code's name as grpc-go spells it (`OK`, `InvalidArgument`, `Canceled`),
and every method of every service served has its series from the start, at 0 (as the
Go provider's InitializeMetrics makes them). prometheus-client (the reference Prometheus
library) records them, from one interceptor: no gRPC metrics library for Python fits a
grpc.aio server with these names (docs/observability.md: which were tried, and the cost).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, cast

import grpc
import prometheus_client
from google.protobuf import descriptor_pool
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from grpctest_server import interception

# Go's client library serves no `_created` series; neither does this one. (The function
# has no annotations in prometheus-client 0.26.)
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

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
RECEIVED = prometheus_client.Counter("grpc_server_msg_received", "Messages received", LABELS)
SENT = prometheus_client.Counter("grpc_server_msg_sent", "Messages sent", LABELS)
IN_FLIGHT = prometheus_client.Gauge("grpc_server_in_flight", "RPCs being handled", LABELS)

# A status code's name as grpc-go writes it (codes.Code.String()): InvalidArgument for
# INVALID_ARGUMENT; two break the pattern.
CODE_NAMES = {
    code: "".join(word.capitalize() for word in code.name.split("_")) for code in grpc.StatusCode
} | {grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled"}

# How a call that its caller cancelled ends in its handler, before grpc.aio may have
# marked the context cancelled: the call's task is cancelled, or (a stream) the reply
# generator is closed where it waits to hand over its next reply.
_ENDED_BY_THE_CALLER = (asyncio.CancelledError, GeneratorExit)

# (request streaming, response streaming) -> grpc_type
_TYPES = {
    (False, False): "unary",
    (False, True): "server_stream",
    (True, False): "client_stream",
    (True, True): "bidi_stream",
}


def serve(port: int, host: str) -> None:
    """Serves /metrics on `port` (a background thread)."""
    prometheus_client.start_http_server(port, addr=host)


def initialize(services: Iterable[str]) -> None:
    """Every series of every method of `services` (full names), at 0."""
    pool = descriptor_pool.Default()
    for name in services:
        for method in pool.FindServiceByName(name).methods:
            labels = (_TYPES[method.client_streaming, method.server_streaming], name, method.name)
            for metric in (STARTED, SECONDS, RECEIVED, SENT, IN_FLIGHT):
                metric.labels(*labels)
            for code in CODE_NAMES.values():
                HANDLED.labels(*labels, code)


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


class MetricsInterceptor(interception.RebuildingInterceptor):
    """Counts, times and tracks every call the server handles, and its messages."""

    def rebuild(self, handler: interception.Handler, method: str) -> interception.Handler:
        service, _, name = method.lstrip("/").rpartition("/")
        labels = (_TYPES[handler.request_streaming, handler.response_streaming], service, name)
        around = functools.partial(_Call, labels, handler.request_streaming)
        return interception.rebuilt(handler, around, on_reply=SENT.labels(*labels).inc)


class _Call:
    """The metrics of one call, from start to its end (the last reply, or the error)."""

    def __init__(
        self,
        labels: tuple[str, str, str],
        streaming: bool,
        request: Any,
        context: interception.Context,
    ) -> None:
        self.labels = labels
        self.streaming = streaming  # a stream of requests, counted as they are read
        self.request = request
        self.context = context

    async def __aenter__(self) -> Any:
        STARTED.labels(*self.labels).inc()
        IN_FLIGHT.labels(*self.labels).inc()
        self.start = time.perf_counter()
        if self.streaming:
            return self._counted(self.request)
        RECEIVED.labels(*self.labels).inc()
        return self.request

    async def _counted(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        received = RECEIVED.labels(*self.labels)
        async for request in requests:
            received.inc()
            yield request

    async def __aexit__(self, error: type[BaseException] | None, *_: object) -> None:
        # (grpc.aio answers None where no status was set; its type stubs say otherwise)
        code = cast("grpc.StatusCode | None", self.context.code())
        if code is None:  # no status set: a clean end, a cancelled call, or an exception
            if error is None:
                code = grpc.StatusCode.OK
            elif self.context.cancelled() or issubclass(error, _ENDED_BY_THE_CALLER):
                code = grpc.StatusCode.CANCELLED
            else:
                code = grpc.StatusCode.UNKNOWN
        HANDLED.labels(*self.labels, CODE_NAMES[code]).inc()
        SECONDS.labels(*self.labels).observe(time.perf_counter() - self.start)
        IN_FLIGHT.labels(*self.labels).dec()
