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
// Tracing: set OTEL_EXPORTER_OTLP_ENDPOINT and every call is traced (W3C traceparent).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var logLevels = map[string]slog.Level{
	"DEBUG": slog.LevelDebug, "INFO": slog.LevelInfo, "WARNING": slog.LevelWarn, "ERROR": slog.LevelError,
}

// levelNamed is the log level of that name in any case (debug, Debug), as py-server
// takes it; false for no such level.
func levelNamed(name string) (slog.Level, bool) {
	level, ok := logLevels[strings.ToUpper(name)]
	return level, ok
}

var (
	host            = flag.String("host", envOr("GRPCTEST_HOST", "127.0.0.1"), "address to listen on; 0.0.0.0 in containers (env GRPCTEST_HOST)")
	port            = flag.Int("port", envInt("GRPCTEST_PORT", 50051), "port to listen on; 0: any free port (env GRPCTEST_PORT)")
	replica         = flag.String("replica", envOr("GRPCTEST_REPLICA", hostname()), "replica name put in every reply (env GRPCTEST_REPLICA, default: the hostname)")
	reflect         = flag.Bool("reflection", envBool("GRPCTEST_REFLECTION", true), "serve gRPC Server Reflection (env GRPCTEST_REFLECTION)")
	maxMessageBytes = flag.Int("max-message-bytes", envInt("GRPCTEST_MAX_MESSAGE_BYTES", 1024*1024), "largest request accepted; larger ones get RESOURCE_EXHAUSTED (env GRPCTEST_MAX_MESSAGE_BYTES)")
	drainSeconds    = flag.Float64("drain-seconds", envFloat("GRPCTEST_DRAIN_SECONDS", 3), "after SIGTERM, how long to keep serving while reporting NOT_SERVING (env GRPCTEST_DRAIN_SECONDS)")
	graceSeconds    = flag.Float64("grace-seconds", envFloat("GRPCTEST_GRACE_SECONDS", 10), "how long in-flight calls may take to finish once the server stops (env GRPCTEST_GRACE_SECONDS)")
	metricsPort     = flag.Int("metrics-port", envInt("GRPCTEST_METRICS_PORT", 0), "serve Prometheus metrics at /metrics on this port; 0: none (env GRPCTEST_METRICS_PORT)")
	tlsCert         = flag.String("tls-cert", envOr("GRPCTEST_TLS_CERT", ""), "serve TLS with this certificate (PEM); needs -tls-key (env GRPCTEST_TLS_CERT, default: plaintext)")
	tlsKey          = flag.String("tls-key", envOr("GRPCTEST_TLS_KEY", ""), "the certificate's private key (PEM) (env GRPCTEST_TLS_KEY)")
	logLevel        = flag.String("log-level", envOr("GRPCTEST_LOG_LEVEL", "INFO"), "DEBUG, INFO, WARNING or ERROR (env GRPCTEST_LOG_LEVEL)")
)

func hostname() string {
	name, err := os.Hostname()
	if err != nil {
		return "go-server"
	}
	return name
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func main() {
	flag.Parse()
	checkSettings()
	level, _ := levelNamed(*logLevel) // checked by checkSettings
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx); err != nil {
		slog.Error("go-server failed", "error", err)
		os.Exit(1)
	}
}

// run serves until ctx ends (SIGTERM or SIGINT), then drains and stops gracefully;
// it returns early with the error if the server cannot start or stops serving.
func run(ctx context.Context) error {
	flush, err := setupTracing(ctx)
	if err != nil {
		return err
	}
	defer flush()
	srv, err := start(config{
		address:         net.JoinHostPort(*host, strconv.Itoa(*port)),
		replica:         *replica,
		reflection:      *reflect,
		maxMessageBytes: *maxMessageBytes,
		metricsPort:     *metricsPort,
		tlsCert:         *tlsCert,
		tlsKey:          *tlsKey,
	})
	if err != nil {
		return fmt.Errorf("failed to start: %w", err)
	}
	if err := srv.serveUntil(ctx, seconds(*drainSeconds), seconds(*graceSeconds)); err != nil {
		return err
	}
	slog.Info("stopped", "replica", *replica)
	return nil
}
