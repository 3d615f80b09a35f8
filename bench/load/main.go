// Command grpctest-load is the benchmark's gRPC load: GetServerResponse called back to
// back by -concurrency callers over -connections client connections, dialled exactly as
// go-client dials (go-common/balancing), so that the three ways to the replicas are
// measured with one client:
//
//	grpctest-load -target 127.0.0.1:8080                           # through Envoy
//	GRPC_XDS_BOOTSTRAP=bootstrap.json grpctest-load -target xds:///grpctest   # proxyless
//	grpctest-load -target ipv4:127.0.0.1:50051,127.0.0.1:50052     # client-side
//
// It calls for -warmup, then measures for -duration and prints one JSON object
// (report): the calls answered and failed in the measured window, their latencies and
// the replicas that answered. At the end of the warm-up it writes "measuring" to
// stderr, so that a caller can read every process's CPU at that moment.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"grpctest/go-common/balancing"
	pb "grpctest/proto/go"
)

// report is what a run measured, after its warm-up.
type report struct {
	Calls      int            `json:"calls"`
	Failures   map[string]int `json:"failures"`
	Seconds    float64        `json:"seconds"`
	LatencyUS  []int64        `json:"latencies_us"`
	PerReplica map[string]int `json:"per_replica"`
}

// result is one caller's share of the measured window.
type result struct {
	latencies  []int64
	failures   map[string]int
	perReplica map[string]int
}

func main() {
	target := flag.String("target", "127.0.0.1:8080", "where to call (go-common/balancing: host:port, xds:///NAME, dns:///, ipv4:)")
	concurrency := flag.Int("concurrency", 32, "callers, each calling back to back")
	connections := flag.Int("connections", 1, "client connections (grpc.ClientConn) the callers share round robin")
	warmup := flag.Duration("warmup", time.Second, "calls before the measured window")
	duration := flag.Duration("duration", 4*time.Second, "the measured window")
	timeout := flag.Duration("timeout", 5*time.Second, "deadline of each call")
	message := flag.String("message", "Hello Server you there?", "message to send")
	flag.Parse()
	if err := run(*target, *concurrency, *connections, *warmup, *duration, *timeout, *message); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func run(target string, concurrency, connections int, warmup, duration, timeout time.Duration, message string) error {
	clients := make([]pb.GrpctestClient, connections)
	for i := range clients {
		options := append(balancing.DialOptions(target), grpc.WithTransportCredentials(insecure.NewCredentials()))
		conn, err := grpc.NewClient(target, options...)
		if err != nil {
			return err
		}
		defer conn.Close()
		clients[i] = pb.NewGrpctestClient(conn)
	}
	start := time.Now()
	measureFrom, end := start.Add(warmup), start.Add(warmup+duration)
	results := make([]result, concurrency)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = call(clients[i%connections], &pb.Message{Message: message}, timeout, measureFrom, end)
		}()
	}
	time.Sleep(time.Until(measureFrom))
	fmt.Fprintln(os.Stderr, "measuring")
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(merge(results, time.Since(measureFrom)))
}

// call calls back to back until end; it keeps what the calls that ended after
// measureFrom saw.
func call(client pb.GrpctestClient, request *pb.Message, timeout time.Duration, measureFrom, end time.Time) result {
	r := result{failures: map[string]int{}, perReplica: map[string]int{}}
	for time.Now().Before(end) {
		begin := time.Now()
		reply, err := unary(client, request, timeout)
		done := time.Now()
		if done.Before(measureFrom) || done.After(end) {
			continue
		}
		if err != nil {
			s := status.Convert(err)
			r.failures[fmt.Sprintf("%s: %s", s.Code(), s.Message())]++
			continue
		}
		r.latencies = append(r.latencies, done.Sub(begin).Microseconds())
		r.perReplica[reply.GetReplica()]++
	}
	return r
}

func unary(client pb.GrpctestClient, request *pb.Message, timeout time.Duration) (*pb.MessageResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return client.GetServerResponse(ctx, request)
}

func merge(results []result, measured time.Duration) report {
	out := report{Failures: map[string]int{}, PerReplica: map[string]int{}, LatencyUS: []int64{}}
	for _, r := range results {
		out.LatencyUS = append(out.LatencyUS, r.latencies...)
		for k, n := range r.failures {
			out.Failures[k] += n
		}
		for k, n := range r.perReplica {
			out.PerReplica[k] += n
		}
	}
	out.Calls = len(out.LatencyUS)
	out.Seconds = measured.Seconds()
	return out
}
