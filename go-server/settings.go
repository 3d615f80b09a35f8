package main

import (
	"log/slog"
	"os"
	"time"

	"grpctest/go-common/settings"
)

// The server's settings, filled from serverSettings by main.
var (
	host, replica, tlsCert, tlsKey, logLevel string
	port, maxMessageBytes, metricsPort       int
	maxConcurrentStreams, maxStreams         int
	reflect                                  bool
	drain, grace                             time.Duration
)

// logLevels are --log-level's choices (in any case, as py-server takes them).
var logLevels = map[string]slog.Level{
	"DEBUG": slog.LevelDebug, "INFO": slog.LevelInfo, "WARNING": slog.LevelWarn, "ERROR": slog.LevelError,
}

// The replica's own stream limits have py-server's defaults: 100 streams per HTTP/2
// connection, and 64 streams of the service in all, as many as Envoy lets all the
// replicas together have (envoy/envoy.yaml), so that a replica refuses only what
// reaches it past Envoy.

// serverSettings is every setting of the server, one row each: the flag -name (or
// --name), its fallback GRPCTEST_NAME, its kind and default (go-common/settings), the
// same names as py-server's.
var serverSettings = settings.Table{
	{Name: "host", Value: settings.Text(&host), Default: "127.0.0.1", Help: "address to listen on; 0.0.0.0 in containers"},
	{Name: "port", Value: settings.Int(&port), Default: "50051", Help: "port to listen on; 0: any free port"},
	{Name: "replica", Value: settings.Text(&replica), Default: hostname(), Help: "replica name put in every reply; by default the hostname"},
	{Name: "reflection", Value: settings.Bool(&reflect), Default: "true", Help: "serve gRPC Server Reflection"},
	{Name: "max-message-bytes", Value: settings.Int(&maxMessageBytes), Default: "1048576", Help: "largest request accepted; larger ones get RESOURCE_EXHAUSTED"},
	{Name: "max-concurrent-streams", Value: settings.Int(&maxConcurrentStreams), Default: "100", Help: "HTTP/2 streams one connection may have open at once"},
	{Name: "max-streams", Value: settings.Int(&maxStreams), Default: "64", Help: "streams of the service (server streams, chats) open at once, all connections together; more get RESOURCE_EXHAUSTED (Health and reflection are not counted); 0: no limit"},
	{Name: "drain-seconds", Value: settings.Seconds(&drain), Default: "3", Help: "after SIGTERM, how long to keep serving while reporting NOT_SERVING"},
	{Name: "grace-seconds", Value: settings.Seconds(&grace), Default: "10", Help: "how long in-flight calls may take to finish once the server stops"},
	{Name: "metrics-port", Value: settings.Int(&metricsPort), Default: "0", Help: "serve Prometheus metrics at /metrics on this port; 0: none"},
	{Name: "tls-cert", Value: settings.Path(&tlsCert), Help: "serve TLS with this certificate (PEM); needs --tls-key; without it, plaintext"},
	{Name: "tls-key", Value: settings.Path(&tlsKey), Help: "the certificate's private key (PEM)"},
	{Name: "log-level", Value: settings.ChoiceIgnoringCase(&logLevel, "DEBUG", "INFO", "WARNING", "ERROR"), Default: "INFO", Help: "log level, in any case"},
}

func hostname() string {
	name, err := os.Hostname()
	if err != nil {
		return "go-server"
	}
	return name
}

// parseSettings reads the settings and rejects those no server can run with, in
// py-server's words (tests/conformance/test_startup.py holds both to them).
func parseSettings() {
	serverSettings.ParseOrExit()
	switch {
	case port < 0 || port > 65535:
		serverSettings.Usagef("--port must be between 0 (any free port) and 65535, got %d", port)
	case metricsPort < 0 || metricsPort > 65535:
		serverSettings.Usagef("--metrics-port must be between 0 (none) and 65535, got %d", metricsPort)
	case maxMessageBytes <= 0:
		serverSettings.Usagef("--max-message-bytes must be positive")
	case maxConcurrentStreams <= 0:
		serverSettings.Usagef("--max-concurrent-streams must be positive")
	case maxStreams < 0:
		serverSettings.Usagef("--max-streams must not be negative (0: no limit)")
	case drain < 0 || grace < 0:
		serverSettings.Usagef("--drain-seconds and --grace-seconds must not be negative")
	case (tlsCert == "") != (tlsKey == ""):
		serverSettings.Usagef("--tls-cert and --tls-key go together")
	}
	for _, given := range []struct{ flag, file string }{{"--tls-cert", tlsCert}, {"--tls-key", tlsKey}} {
		if info, err := os.Stat(given.file); given.file != "" && (err != nil || !info.Mode().IsRegular()) {
			serverSettings.Usagef("%s %s: no such file", given.flag, given.file)
		}
	}
}
