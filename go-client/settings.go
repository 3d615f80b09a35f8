package main

import (
	"fmt"
	"os"
	"time"

	"grpctest/go-common/settings"
)

const defaultMessage = "Hello Server you there?"

var (
	modes   = []string{"unary", "server-stream", "chat"}
	outputs = []string{"text", "json"}
)

// The client's settings, filled from clientSettings by main.
var (
	target, message, mode, output string
	count, resumes                int
	interval, timeout             time.Duration
	useTLS                        bool
	caFile, cert, key, token      string
	// The files' contents (PEM), read with the settings.
	caPEM, certPEM, keyPEM []byte
)

// clientSettings is every setting of the client, one row each: the flag -name (or
// --name), its fallback GRPCTEST_NAME, its kind and default (go-common/settings; the
// Python client declares the same table).
var clientSettings = settings.Table{
	{Name: "target", Value: settings.Text(&target), Default: "localhost:8080", Help: "host:port to call"},
	{Name: "message", Value: settings.Text(&message), Default: defaultMessage, Help: "message to send"},
	{Name: "mode", Value: settings.Choice(&mode, modes...), Default: "unary", Help: "unary calls, one server stream, or one chat"},
	{Name: "count", Value: settings.Int(&count), Default: "1", Help: "calls (unary), replies (server-stream) or messages (chat)"},
	{Name: "interval", Value: settings.Seconds(&interval), Default: "0", Help: "seconds between a stream's replies (server-stream) or messages (chat)"},
	{Name: "timeout", Value: settings.Seconds(&timeout), Default: "5", Help: "deadline of each call, or of the whole stream, in seconds"},
	{Name: "resume-attempts", Value: settings.Int(&resumes), Default: "5", Help: "times a broken server stream or chat is resumed on another replica, 0 for never"},
	{Name: "tls", Value: settings.Bool(&useTLS), Default: "false", Help: "connect with TLS, e.g. to Envoy's :8443"},
	{Name: "ca", Value: settings.Path(&caFile), Help: "CA certificate (PEM) to trust, e.g. certs/ca.crt; implies --tls; without it, the system's trust store"},
	{Name: "cert", Value: settings.Path(&cert), Help: "client certificate (PEM) for mutual TLS, e.g. certs/client.crt; needs --key and implies --tls"},
	{Name: "key", Value: settings.Path(&key), Help: "the client certificate's private key (PEM), e.g. certs/client.key"},
	{Name: "output", Value: settings.Choice(&output, outputs...), Default: "text", Help: "text for people; json for programs: one JSON object per reply, then one summary object"},
	{Name: "token", Value: settings.Text(&token), Help: `bearer token sent with every call, e.g. "$(cat certs/token.jwt)"; TLS only`},
}

// parseSettings reads the settings and checks what the table cannot: ranges and the
// settings that go together, in the Python client's words (tests/test_client_settings.py
// holds both to them).
func parseSettings() {
	clientSettings.ParseOrExit()
	switch {
	case count < 1:
		clientSettings.Usagef("--count must be at least 1, got %d", count)
	case timeout <= 0:
		clientSettings.Usagef("--timeout must be positive, got %s", settings.ShowSeconds(timeout))
	case interval < 0:
		clientSettings.Usagef("--interval must not be negative, got %s", settings.ShowSeconds(interval))
	case resumes < 0:
		clientSettings.Usagef("--resume-attempts must not be negative, got %d", resumes)
	case (cert == "") != (key == ""):
		clientSettings.Usagef("--cert and --key go together")
	case token != "" && !useTLS && caFile == "" && cert == "":
		clientSettings.Usagef("--token needs TLS (--tls, --ca; Envoy's :8443): a token is never sent in the clear")
	}
	for _, file := range []struct {
		flag, path string
		content    *[]byte
	}{{"--ca", caFile, &caPEM}, {"--cert", cert, &certPEM}, {"--key", key, &keyPEM}} {
		content, err := settings.ReadFile(file.flag, file.path)
		if err != nil {
			clientSettings.Usagef("%v", err)
		}
		*file.content = content
	}
}

// fatalf prints a one-line error (no timestamp: this is a CLI) and exits 1.
func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(1)
}
