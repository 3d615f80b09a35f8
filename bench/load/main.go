// Command grpctest-load calls GetServerResponse back to back from -concurrency callers
// over -connections client connections, dialled exactly as go-client dials
// (go-common/balancing). The benchmark measures the three ways to the replicas with it,
// and the fault drills use it as the Go client beside the Python one:
//
//	grpctest-load -target 127.0.0.1:8080                           # through Envoy
//	GRPC_XDS_BOOTSTRAP=bootstrap.json grpctest-load -target xds:///grpctest   # proxyless
//	grpctest-load -target ipv4:127.0.0.1:50051,127.0.0.1:50052     # client-side
//
// It calls for -warmup, then for -duration (0: until SIGINT or SIGTERM, at most -max);
// when stopped it starts no new call and lets those in flight finish. At the end of the
// warm-up it writes "measuring" on stderr (a caller may read every process's CPU at that
// moment); at the end it prints one JSON object (report) on stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"grpctest/go-common/balancing"
	pb "grpctest/proto/go"
)

// report is what the calls that ended after the warm-up saw.
type report struct {
	Calls      int            `json:"calls"`    // answered and failed
	Failures   map[string]int `json:"failures"` // by "CODE: message"
	Seconds    float64        `json:"seconds"`  // from the end of the warm-up to the last call's end
	LatencyUS  []int64        `json:"latencies_us"`
	PerReplica map[string]int `json:"per_replica"`
	// When each answered call ended: milliseconds since StartMS (Unix time, ms).
	StartMS    int64   `json:"start_unix_ms"`
	AnsweredMS []int64 `json:"answered_ms"`
}

// plan is what to call, how hard and for how long.
type plan struct {
	target                     string
	concurrency, connections   int
	warmup, duration, deadline time.Duration
	message                    string
}

func main() {
	var p plan
	flag.StringVar(&p.target, "target", "127.0.0.1:8080", "where to call, as go-client's -target")
	flag.IntVar(&p.concurrency, "concurrency", 32, "callers, each calling back to back")
	flag.IntVar(&p.connections, "connections", 1, "client connections (grpc.ClientConn) the callers share in turn")
	flag.DurationVar(&p.warmup, "warmup", 0, "calls not counted, first")
	flag.DurationVar(&p.duration, "duration", 0, "calls counted; 0: until SIGINT or SIGTERM")
	maximum := flag.Duration("max", 10*time.Minute, "with -duration 0, stop after this long anyway")
	flag.DurationVar(&p.deadline, "timeout", 5*time.Second, "deadline of each call")
	flag.StringVar(&p.message, "message", "Hello Server you there?", "message to send")
	flag.Parse()
	if p.concurrency < 1 || p.connections < 1 {
		fmt.Fprintln(os.Stderr, "error: -concurrency and -connections must be at least 1")
		os.Exit(2)
	}
	if p.duration == 0 {
		p.duration = *maximum
	}
	r, err := runUntilStopped(p)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

// runUntilStopped runs the plan for its warm-up and duration, or until SIGINT or SIGTERM.
func runUntilStopped(p plan) (report, error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, p.warmup+p.duration)
	defer cancel()
	return run(ctx, p)
}

// run calls until ctx ends; the calls in flight then finish.
func run(ctx context.Context, p plan) (report, error) {
	clients := make([]pb.GrpctestClient, p.connections)
	for i := range clients {
		options := append(balancing.DialOptions(p.target), grpc.WithTransportCredentials(insecure.NewCredentials()))
		conn, err := grpc.NewClient(p.target, options...)
		if err != nil {
			return report{}, err
		}
		defer func() { _ = conn.Close() }() // at exit: nothing left to report to
		clients[i] = pb.NewGrpctestClient(conn)
	}
	measureFrom := time.Now().Add(p.warmup)
	callers := make([]*caller, p.concurrency)
	var wg sync.WaitGroup
	for i := range callers {
		callers[i] = &caller{client: clients[i%p.connections], measureFrom: measureFrom}
		wg.Add(1)
		go func() {
			defer wg.Done()
			callers[i].callUntil(ctx, &pb.Message{Message: p.message}, p.deadline)
		}()
	}
	select {
	case <-time.After(time.Until(measureFrom)):
		fmt.Fprintln(os.Stderr, "measuring")
	case <-ctx.Done():
	}
	wg.Wait()
	return merge(callers, measureFrom), nil
}
