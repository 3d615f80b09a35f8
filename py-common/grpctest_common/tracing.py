"""OpenTelemetry tracing for every grpctest program, on when an OTLP endpoint is set.

Set the standard OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://127.0.0.1:4317) and the
program sends its spans there over OTLP/gRPC, with the W3C trace context (traceparent)
on every call it makes or serves, so one trace runs from a client through Envoy to the
replica. Unset, nothing is set up and a call costs nothing extra.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


def enabled() -> bool:
    return bool(os.environ.get(ENDPOINT))


@contextmanager
def tracing(service_name: str) -> Iterator[bool]:
    """Exports this program's spans while the block runs (if an endpoint is set), and
    flushes them at its end; yields whether tracing is on."""
    if not enabled():
        yield False
        return
    # Imported only when tracing is on: they add about 0.2 s to every start (the
    # container healthcheck runs every 2 s). Likewise grpctest_common.channels.
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    try:
        yield True
    finally:
        provider.shutdown()
