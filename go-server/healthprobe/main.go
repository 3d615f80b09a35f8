// Command healthprobe asks grpc.health.v1.Health/Check on the local server and exits
// 0 only on SERVING: the container HEALTHCHECK of go-server's image, whose distroless
// base has no shell and no other client.
//
//	healthprobe -target 127.0.0.1:50051 -service grpctest.Grpctest
//
// Without -target it checks 127.0.0.1 on -port, which falls back to GRPCTEST_PORT as
// the server's does (the image sets it).
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"grpctest/go-common/settings"
)

var (
	target, service string
	port            int
	timeout         time.Duration
)

// probeSettings is every setting of the probe, one row each (go-common/settings).
var probeSettings = settings.Table{
	{Name: "target", Value: settings.Text(&target), Help: "host:port to check; without it, 127.0.0.1 and --port"},
	{Name: "port", Value: settings.Int(&port), Default: "50051", Help: "the local server's port, when --target is not given"},
	{Name: "service", Value: settings.Text(&service), Default: "grpctest.Grpctest", Help: "service name to check; '' for the whole server"},
	{Name: "timeout", Value: settings.Seconds(&timeout), Default: "2", Help: "deadline of the check"},
}

func main() {
	probeSettings.ParseOrExit()
	target = probeTarget()
	answer, err := check()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s: %s\n", target, service, answer)
	if answer != healthpb.HealthCheckResponse_SERVING.String() {
		os.Exit(1)
	}
}

// probeTarget is --target, or else the local server on --port.
func probeTarget() string {
	if target != "" {
		return target
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// check is the service's health as the server reports it, or the status of the failed
// call (UNAVAILABLE: no server there).
func check() (string, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close() }() // the check's outcome is what counts
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	reply, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return status.Code(err).String(), nil
	}
	return reply.GetStatus().String(), nil
}
