// Command healthprobe asks grpc.health.v1.Health/Check on the local server and exits
// 0 only on SERVING: the container HEALTHCHECK of go-server's image, whose distroless
// base has no shell and no other client.
//
//	healthprobe -target 127.0.0.1:50051 -service grpctest.Grpctest
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

var (
	target  = flag.String("target", "127.0.0.1:"+envOr("GRPCTEST_PORT", "50051"), "host:port to check (default 127.0.0.1 and $GRPCTEST_PORT or 50051)")
	service = flag.String("service", "grpctest.Grpctest", "service name to check; '' for the whole server")
	timeout = flag.Duration("timeout", 2*time.Second, "deadline of the check")
)

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func main() {
	flag.Parse()
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	reply, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: *service})
	answer := reply.GetStatus().String()
	if err != nil {
		answer = status.Code(err).String()
	}
	fmt.Printf("%s %s: %s\n", *target, *service, answer)
	if answer != healthpb.HealthCheckResponse_SERVING.String() {
		os.Exit(1)
	}
}
