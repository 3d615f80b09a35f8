// Package tracing exports a program's spans over OTLP/gRPC when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT is set (as the Python programs do, grpctest_common.tracing),
// with the W3C trace context (traceparent) as the propagator. Unset, it does nothing.
package tracing

import (
	"context"
	"os"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// FlushTimeout bounds the export of the last spans at exit: a collector that does not
// answer may not hold the program up for long.
const FlushTimeout = 3 * time.Second

// Enabled says whether spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT is set).
func Enabled() bool { return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" }

// Setup installs the exporting tracer provider and the propagator, naming the service
// service unless OTEL_SERVICE_NAME does; it returns the function that flushes the spans
// at exit (a no-op when tracing is not enabled).
func Setup(ctx context.Context, service string) (func(), error) {
	if !Enabled() {
		return func() {}, nil
	}
	exporter, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, err
	}
	if os.Getenv("OTEL_SERVICE_NAME") == "" {
		if err := os.Setenv("OTEL_SERVICE_NAME", service); err != nil {
			return nil, err
		}
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), FlushTimeout)
		defer cancel()
		_ = provider.Shutdown(ctx)
	}
	return flush, nil
}
