package main

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"grpctest/go-common/tracing"
)

// tracingOptions trace every call but Envoy's health checks (every second, per
// replica: no call worth a trace); go-common/tracing exports the spans.
func tracingOptions() []grpc.ServerOption {
	if !tracing.Enabled() {
		return nil
	}
	untraced := func(info *stats.RPCTagInfo) bool {
		return info.FullMethodName != "/grpc.health.v1.Health/Check"
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithFilter(untraced)))}
}
