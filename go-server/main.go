// Command go-server serves grpctest.Grpctest: the same contract, behaviour and
// settings as py-server, in grpc-go, as one more replica behind Envoy.
//
// Besides the service it serves the standard Health service ("" and
// grpctest.Grpctest, with List) and Server Reflection (v1 and v1alpha). On SIGTERM or
// SIGINT it reports NOT_SERVING, keeps answering for -drain-seconds so that Envoy's
// health checks take it out of rotation, then stops accepting calls and gives
// in-flight calls -grace-seconds to finish; streams still open a second before that
// end with UNAVAILABLE, saying how far they got. Then it exits 0.
//
//	go-server -port 50054 -replica go-1
//	go-server -metrics-port 9464          # Prometheus /metrics
//	go-server -tls-cert certs/replica.crt -tls-key certs/replica.key
//
// Every flag falls back to an environment variable, -port to GRPCTEST_PORT (the table in
// settings.go; -help lists them). Tracing: set OTEL_EXPORTER_OTLP_ENDPOINT and every call
// is traced (W3C traceparent).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"grpctest/go-common/tracing"
)

func main() {
	parseSettings()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevels[logLevel]})))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx)
	stop()
	if err != nil {
		slog.Error("go-server failed", "error", err)
		os.Exit(1)
	}
}

// run serves until ctx ends (SIGTERM or SIGINT), then drains and stops gracefully;
// it returns early with the error if the server cannot start or stops serving.
func run(ctx context.Context) error {
	flush, err := tracing.Setup(ctx, "go-server")
	if err != nil {
		return err
	}
	defer flush()
	srv, err := start(config{
		address:              net.JoinHostPort(host, strconv.Itoa(port)),
		replica:              replica,
		reflection:           reflect,
		maxMessageBytes:      maxMessageBytes,
		maxConcurrentStreams: maxConcurrentStreams,
		maxStreams:           maxStreams,
		metricsPort:          metricsPort,
		tlsCert:              tlsCert,
		tlsKey:               tlsKey,
	})
	if err != nil {
		return fmt.Errorf("failed to start: %w", err)
	}
	if err := srv.serveUntil(ctx, drain, grace); err != nil {
		return err
	}
	slog.Info("stopped", "replica", replica)
	return nil
}
