// Command go-client calls grpctest.Grpctest/GetServerResponse, normally through Envoy.
//
// It sends -count calls over one connection, prints each reply with the replica
// that answered and, for more than one call, how many calls each replica answered.
// A failed call ends the run with the gRPC status name and detail and exit code 1.
//
//	go-client -target localhost:8080 -message hi -count 30
//	go-client -target localhost:8443 -ca certs/ca.crt      # TLS through Envoy
//	go-client -target localhost:8443 -ca certs/ca.crt \
//	    -cert certs/client.crt -key certs/client.key        # mutual TLS
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "grpctest/go-client/grpctestpb"
)

const defaultMessage = "Hello Server you there?"

var (
	target  = flag.String("target", envOr("GRPCTEST_TARGET", "localhost:8080"), "host:port to call (env GRPCTEST_TARGET)")
	message = flag.String("message", envOr("GRPCTEST_MESSAGE", defaultMessage), "message to send (env GRPCTEST_MESSAGE)")
	count   = flag.Int("count", envInt("GRPCTEST_COUNT", 1), "number of calls (env GRPCTEST_COUNT)")
	useTLS  = flag.Bool("tls", envBool("GRPCTEST_TLS", false), "connect with TLS, e.g. to Envoy's :8443 (env GRPCTEST_TLS)")
	caFile  = flag.String("ca", envOr("GRPCTEST_CA", ""), "CA certificate (PEM) to trust, e.g. certs/ca.crt; implies -tls (env GRPCTEST_CA, default: the system's trust store)")
	cert    = flag.String("cert", envOr("GRPCTEST_CERT", ""), "client certificate (PEM) for mutual TLS, e.g. certs/client.crt; needs -key and implies -tls (env GRPCTEST_CERT)")
	key     = flag.String("key", envOr("GRPCTEST_KEY", ""), "the client certificate's private key (PEM), e.g. certs/client.key (env GRPCTEST_KEY)")
	timeout = secondsFlag("timeout", envOr("GRPCTEST_TIMEOUT", "5"), "deadline of each call in seconds, or a duration like 500ms (env GRPCTEST_TIMEOUT)")
)

func main() {
	flag.Parse()
	if *count < 1 {
		usagef("-count must be at least 1, got %d", *count)
	}
	if *timeout <= 0 {
		usagef("-timeout must be positive, got %v", *timeout)
	}

	if (*cert == "") != (*key == "") {
		usagef("-cert and -key go together")
	}
	creds, err := transportCredentials(*useTLS, *caFile, *cert, *key)
	if err != nil {
		usagef("failed to load TLS settings: %v", err)
	}
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(creds))
	if err != nil {
		fatalf("failed to create client for %s: %v", *target, err)
	}
	defer conn.Close()

	perReplica, err := run(context.Background(), pb.NewGrpctestClient(conn), *message, *count, *timeout, os.Stdout)
	if err != nil {
		fatalf("%s: %s", codeName(status.Code(err)), status.Convert(err).Message())
	}
	if *count > 1 {
		printSummary(os.Stdout, *target, perReplica)
	}
}

// transportCredentials is plaintext unless TLS is asked for (a CA or a client
// certificate implies it). With a CA file only that CA is trusted, otherwise the
// system's trust store; with a certificate and key the client presents them (mutual TLS).
func transportCredentials(useTLS bool, caFile, certFile, keyFile string) (credentials.TransportCredentials, error) {
	if !useTLS && caFile == "" && certFile == "" {
		return insecure.NewCredentials(), nil
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("no certificate found in " + caFile)
		}
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}

// run makes count calls, prints each reply to out and returns the calls per replica.
// It stops at the first failed call and returns its error.
func run(ctx context.Context, client pb.GrpctestClient, msg string, count int, timeout time.Duration, out io.Writer) (map[string]int, error) {
	perReplica := make(map[string]int)
	for i := 1; i <= count; i++ {
		reply, err := call(ctx, client, msg, timeout)
		if err != nil {
			return perReplica, err
		}
		perReplica[reply.GetReplica()]++
		fmt.Fprintf(out, "[%d/%d] %s: %s (received=%t)\n", i, count, reply.GetReplica(), reply.GetMessage(), reply.GetReceived())
	}
	return perReplica, nil
}

func call(ctx context.Context, client pb.GrpctestClient, msg string, timeout time.Duration) (*pb.MessageResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return client.GetServerResponse(ctx, &pb.Message{Message: msg})
}

func printSummary(out io.Writer, target string, perReplica map[string]int) {
	replicas := make([]string, 0, len(perReplica))
	total := 0
	for replica, calls := range perReplica {
		replicas = append(replicas, replica)
		total += calls
	}
	sort.Strings(replicas)
	fmt.Fprintf(out, "summary: %d calls through %s, %d replicas answered\n", total, target, len(replicas))
	for _, replica := range replicas {
		fmt.Fprintf(out, "  %s: %d calls\n", replica, perReplica[replica])
	}
}

// codeName spells a status code as the gRPC spec and the Python client do
// (INVALID_ARGUMENT rather than Go's InvalidArgument): google.rpc.Code's names.
func codeName(c codes.Code) string {
	return code.Code(c).String()
}

// fatalf prints a one-line error (no timestamp: this is a CLI) and exits 1.
func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(1)
}

// usagef reports a bad setting and exits 2, as the flag package does for bad flags.
func usagef(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(2)
}

// Settings are flags whose defaults come from GRPCTEST_* environment variables; an
// empty variable counts as unset. Booleans are read by strconv.ParseBool, and the
// Python programs follow the same rule (grpctest_common.settings).

func envOr(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

func envBool(name string, fallback bool) bool {
	v := envOr(name, "")
	if v == "" {
		return fallback
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		usagef("%s: want one of 0 1 F FALSE False T TRUE True f false t true, got %q", name, v)
	}
	return b
}

func envInt(name string, fallback int) int {
	v := envOr(name, "")
	if v == "" {
		return fallback
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		usagef("%s must be a whole number, got %q", name, v)
	}
	return n
}

// seconds is a flag value that takes plain seconds ("5", "0.5"), as the Python
// client does, or a Go duration ("500ms").
type seconds time.Duration

func (d *seconds) String() string { return time.Duration(*d).String() }

func (d *seconds) Set(v string) error {
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		*d = seconds(secs * float64(time.Second))
		return nil
	}
	parsed, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want seconds or a duration like 500ms, got %q", v)
	}
	*d = seconds(parsed)
	return nil
}

func secondsFlag(name, fallback, usage string) *time.Duration {
	var value seconds
	if err := value.Set(fallback); err != nil {
		usagef("environment fallback for -%s: %v", name, err)
	}
	flag.Var(&value, name, usage)
	return (*time.Duration)(&value)
}
