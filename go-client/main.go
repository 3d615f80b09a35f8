// Command go-client calls grpctest.Grpctest, through Envoy or balancing the calls itself.
//
// Over one client connection, in one of three modes:
//
//	unary           -count calls of GetServerResponse, -interval apart (the default)
//	server-stream   one StreamServerResponses call: -count replies, one every -interval
//	chat            one Chat stream: sends -count messages, one every -interval
//
// It prints each reply with the replica that answered and, for more than one reply,
// how many each replica answered (-output json: one JSON object per reply and a summary);
// a stream's replies are numbered by their own sequence. A stream or chat that breaks (a
// replica shutting down or dying) goes on on another replica from the last reply
// received, up to -resume-attempts times within -timeout, and says so on stderr
// ("resumed after 558 on replica-3"; with -output json,
// {"resumed":{"after":558,"replica":"replica-3"}}). A failed call ends the run with the
// gRPC status name and detail and exit code 1: a rule of the contract broken reads
// "field: description [rule id]"; with -output json, the last line is {"error": {...}}
// instead of the summary.
//
//	go-client -target localhost:8080 -message hi -count 30
//	go-client -mode server-stream -count 10000
//	go-client -target localhost:8443 -ca certs/ca.crt      # TLS through Envoy
//	go-client -target localhost:8443 -ca certs/ca.crt \
//	    -cert certs/client.crt -key certs/client.key        # mutual TLS
//	go-client -target localhost:8443 -ca certs/ca.crt \
//	    -token "$(cat certs/token.jwt)"                      # a bearer token
//	GRPC_XDS_BOOTSTRAP=bootstrap.json go-client \
//	    -target xds:///grpctest -count 30 -admin-port 9902   # proxyless
//	go-client -target dns:///py-server:50051 -count 30      # balanced here
//
// Where the calls go follows from -target (go-common/balancing): a host:port is one
// connection (to Envoy, which balances); xds:///NAME asks the xDS control plane named by
// the bootstrap (GRPC_XDS_BOOTSTRAP, a file, or GRPC_XDS_BOOTSTRAP_CONFIG, its JSON) for
// the replicas and how to balance; dns:///NAME:PORT and ipv4:ADDR,ADDR are balanced
// here, round robin over every address. -admin-port serves gRPC's admin services (CSDS:
// what the control plane sent) for grpcurl.
//
// Every flag falls back to an environment variable, -count to GRPCTEST_COUNT (the table
// in settings.go; -help lists them). Tracing: set OTEL_EXPORTER_OTLP_ENDPOINT and every
// call starts a trace (W3C traceparent).
package main

import (
	"context"
	"os"

	"google.golang.org/grpc"

	"grpctest/go-common/tracing"
	pb "grpctest/proto/go"
)

func main() {
	parseSettings()
	options, err := dialOptions()
	if err != nil {
		clientSettings.Usagef("failed to load TLS settings: %v", err)
	}
	flushSpans, err := tracing.Setup(context.Background(), "go-client")
	if err != nil {
		fatalf("failed to set up tracing: %v", err)
	}
	if adminPort != 0 {
		stopAdmin, err := serveAdmin(adminPort)
		if err != nil {
			fatalf("failed to serve the admin services on 127.0.0.1:%d: %v", adminPort, err)
		}
		defer stopAdmin()
	}
	conn, err := grpc.NewClient(target, options...)
	if err != nil {
		fatalf("failed to create client for %s: %v", target, err)
	}
	defer func() { _ = conn.Close() }() // at exit: nothing left to report to
	p := plan{
		mode: mode, message: message, count: count, interval: interval, timeout: timeout,
		resumes: resumes, onResume: printResumed(os.Stderr, output == "json"), json: output == "json",
	}
	perReplica, err := run(context.Background(), pb.NewGrpctestClient(conn), p, os.Stdout)
	flushSpans()
	if err != nil {
		failed := failureOf(err)
		if p.json {
			printJSONFailure(os.Stdout, failed)
		}
		fatalf("%s", failed)
	}
	switch {
	case p.json:
		printJSONSummary(os.Stdout, target, perReplica)
	case count > 1:
		printSummary(os.Stdout, target, perReplica, p.unit())
	}
}
