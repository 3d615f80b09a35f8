// Command go-client calls grpctest.Grpctest, normally through Envoy.
//
// Over one connection, in one of three modes:
//
//	unary           -count calls of GetServerResponse (the default)
//	server-stream   one StreamServerResponses call: -count replies, one every -interval
//	chat            one Chat stream: sends -count messages, one every -interval
//
// It prints each reply with the replica that answered and, for more than one reply,
// how many each replica answered (-output json: one JSON object per reply and a summary);
// a stream's replies are numbered by their own sequence. A stream or chat that breaks (a
// replica shutting down or dying) goes on on another replica from the last reply
// received, up to -resume-attempts times within -timeout, and says so on stderr
// ("resumed after 558 on replica-3"). A failed call ends the run with the gRPC status
// name and detail and exit code 1.
//
//	go-client -target localhost:8080 -message hi -count 30
//	go-client -mode server-stream -count 10000
//	go-client -target localhost:8443 -ca certs/ca.crt      # TLS through Envoy
//	go-client -target localhost:8443 -ca certs/ca.crt \
//	    -cert certs/client.crt -key certs/client.key        # mutual TLS
//	go-client -target localhost:8443 -ca certs/ca.crt \
//	    -token "$(cat certs/token.jwt)"                      # a bearer token
//
// Tracing: set OTEL_EXPORTER_OTLP_ENDPOINT and every call starts a trace (W3C traceparent).
package main

import (
	"context"
	"flag"
	"os"
	"slices"
	"strings"

	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/oauth"
	"google.golang.org/grpc/status"

	pb "grpctest/proto/go"
)

const defaultMessage = "Hello Server you there?"

var (
	modes   = []string{"unary", "server-stream", "chat"}
	outputs = []string{"text", "json"}
)

var (
	target   = flag.String("target", envOr("GRPCTEST_TARGET", "localhost:8080"), "host:port to call (env GRPCTEST_TARGET)")
	message  = flag.String("message", envOr("GRPCTEST_MESSAGE", defaultMessage), "message to send (env GRPCTEST_MESSAGE)")
	mode     = flag.String("mode", envOr("GRPCTEST_MODE", "unary"), strings.Join(modes, ", ")+": unary calls, one server stream, or one chat (env GRPCTEST_MODE)")
	count    = flag.Int("count", envInt("GRPCTEST_COUNT", 1), "calls (unary), replies (server-stream) or messages (chat) (env GRPCTEST_COUNT)")
	interval = secondsFlag("interval", envOr("GRPCTEST_INTERVAL", "0"), "seconds between a stream's replies (server-stream) or messages (chat) (env GRPCTEST_INTERVAL)")
	timeout  = secondsFlag("timeout", envOr("GRPCTEST_TIMEOUT", "5"), "deadline of each call, or of the whole stream, in seconds or a duration like 500ms (env GRPCTEST_TIMEOUT)")
	resumes  = flag.Int("resume-attempts", envInt("GRPCTEST_RESUME_ATTEMPTS", 5), "times a broken server stream or chat is resumed on another replica, 0 for never (env GRPCTEST_RESUME_ATTEMPTS)")
	useTLS   = flag.Bool("tls", envBool("GRPCTEST_TLS", false), "connect with TLS, e.g. to Envoy's :8443 (env GRPCTEST_TLS)")
	caFile   = flag.String("ca", envOr("GRPCTEST_CA", ""), "CA certificate (PEM) to trust, e.g. certs/ca.crt; implies -tls (env GRPCTEST_CA, default: the system's trust store)")
	cert     = flag.String("cert", envOr("GRPCTEST_CERT", ""), "client certificate (PEM) for mutual TLS, e.g. certs/client.crt; needs -key and implies -tls (env GRPCTEST_CERT)")
	key      = flag.String("key", envOr("GRPCTEST_KEY", ""), "the client certificate's private key (PEM), e.g. certs/client.key (env GRPCTEST_KEY)")
	output   = flag.String("output", envOr("GRPCTEST_OUTPUT", "text"), "text for people; json for programs: one JSON object per reply, then one summary object (env GRPCTEST_OUTPUT)")
	token    = flag.String("token", envOr("GRPCTEST_TOKEN", ""), `bearer token sent with every call, e.g. "$(cat certs/token.jwt)"; TLS only (env GRPCTEST_TOKEN)`)
)

func main() {
	flag.Parse()
	switch {
	case *count < 1:
		usagef("-count must be at least 1, got %d", *count)
	case *timeout <= 0:
		usagef("-timeout must be positive, got %v", *timeout)
	case *interval < 0:
		usagef("-interval must not be negative, got %v", *interval)
	case *resumes < 0:
		usagef("-resume-attempts must not be negative, got %d", *resumes)
	case !slices.Contains(modes, *mode):
		usagef("-mode must be one of %s, got %q", strings.Join(modes, ", "), *mode)
	case !slices.Contains(outputs, *output):
		usagef("-output must be one of %s, got %q", strings.Join(outputs, ", "), *output)
	case (*cert == "") != (*key == ""):
		usagef("-cert and -key go together")
	case *token != "" && !*useTLS && *caFile == "" && *cert == "":
		usagef("-token needs TLS (-tls, -ca; Envoy's :8443): a token is never sent in the clear")
	}
	creds, err := transportCredentials(*useTLS, *caFile, *cert, *key)
	if err != nil {
		usagef("failed to load TLS settings: %v", err)
	}
	options := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if *token != "" {
		options = append(options, grpc.WithPerRPCCredentials(oauth.TokenSource{
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: *token}),
		}))
	}
	tracingOptions, flushSpans, err := setupTracing(context.Background())
	if err != nil {
		fatalf("failed to set up tracing: %v", err)
	}
	conn, err := grpc.NewClient(*target, append(options, tracingOptions...)...)
	if err != nil {
		fatalf("failed to create client for %s: %v", *target, err)
	}
	defer conn.Close()

	p := plan{
		mode: *mode, message: *message, count: *count, interval: *interval, timeout: *timeout,
		resumes: *resumes, onResume: printResumed(os.Stderr), json: *output == "json",
	}
	perReplica, err := run(context.Background(), pb.NewGrpctestClient(conn), p, os.Stdout)
	flushSpans()
	if err != nil {
		fatalf("%s: %s", codeName(status.Code(err)), status.Convert(err).Message())
	}
	switch {
	case p.json:
		printJSONSummary(os.Stdout, *target, perReplica)
	case *count > 1:
		printSummary(os.Stdout, *target, perReplica, p.unit())
	}
}
