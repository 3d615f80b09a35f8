package tracing

import (
	"context"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
)

// The last spans' export at exit gives up after FlushTimeout when the collector does
// not answer (here: a port that accepts connections and never speaks).
func TestFlushingSpansIsBounded(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	defer func() { _ = silent.Close() }()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+silent.Addr().String())
	t.Setenv("OTEL_SERVICE_NAME", "go-common-test")
	flush, err := Setup(context.Background(), "unused")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "call")
	span.End()
	start := time.Now()
	flush()
	if took := time.Since(start); took > FlushTimeout+time.Second {
		t.Errorf("flush took %v, want at most about %v", took, FlushTimeout)
	}
}

func TestUnsetEndpointDoesNothing(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	if Enabled() {
		t.Fatal("enabled without an endpoint")
	}
	flush, err := Setup(context.Background(), "go-common-test")
	if err != nil || flush == nil {
		t.Fatalf("Setup: %v (flush set: %t), want a no-op flush", err, flush != nil)
	}
	flush()
}
