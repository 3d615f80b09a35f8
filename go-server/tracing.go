package main

import (
	"context"
	"os"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
)

// flushTimeout bounds the export of the last spans at exit.
const flushTimeout = 3 * time.Second

func tracingEnabled() bool { return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" }

// setupTracing exports this server's spans over OTLP/gRPC when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT is set (as py-server does), continuing the caller's W3C
// trace context; it returns a function that flushes the spans at exit.
func setupTracing(ctx context.Context) (func(), error) {
	if !tracingEnabled() {
		return func() {}, nil
	}
	exporter, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, err
	}
	if os.Getenv("OTEL_SERVICE_NAME") == "" {
		os.Setenv("OTEL_SERVICE_NAME", "go-server")
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	// At exit, a collector that does not answer may not hold the process up for long.
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		_ = provider.Shutdown(ctx)
	}
	return flush, nil
}

// tracingOptions trace every call but Envoy's health checks (every second, per
// replica: no call worth a trace).
func tracingOptions() []grpc.ServerOption {
	if !tracingEnabled() {
		return nil
	}
	untraced := func(info *stats.RPCTagInfo) bool {
		return info.FullMethodName != "/grpc.health.v1.Health/Check"
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithFilter(untraced)))}
}
