package main

import (
	"context"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
)

// The last spans' export at exit gives up after flushTimeout when the collector does
// not answer (here: a port that accepts connections and never speaks).
func TestFlushingSpansIsBounded(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	defer silent.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+silent.Addr().String())
	t.Setenv("OTEL_SERVICE_NAME", "go-client-test")
	_, flush, err := setupTracing(context.Background())
	if err != nil {
		t.Fatalf("setupTracing: %v", err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "call")
	span.End()
	start := time.Now()
	flush()
	if took := time.Since(start); took > flushTimeout+time.Second {
		t.Errorf("flush took %v, want at most about %v", took, flushTimeout)
	}
}
