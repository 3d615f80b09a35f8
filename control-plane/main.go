// Command control-plane is grpctest's xDS control plane: it finds the server replicas,
// checks their gRPC health itself, and publishes them over ADS to Envoy and to
// proxyless gRPC clients (xds:///grpctest), built on go-control-plane's snapshot cache.
//
// Replicas come from --discovery and --servers: a list of addresses (the local run's), DNS names
// resolved every --dns-refresh (compose's and Swarm's service names), or the
// EndpointSlices of Kubernetes Services, watched. Each one is
// checked over the standard Health service for --health-service: a Watch stream (a
// replica that reports NOT_SERVING, or dies, leaves at once) and a Check every
// --check-interval with a --check-timeout deadline (a frozen one leaves after
// --check-failures of them in a row). Every
// change of the replicas' health is a new version; the log says which, and to whom it
// was pushed.
//
//	control-plane                                              # the local run's replicas
//	control-plane -discovery dns -servers py-server:50051,go-server:50051 -host 0.0.0.0
//
// Envoy (node cluster grpctest-envoy) gets the ClusterLoadAssignment `grpctest`; gRPC
// clients (any other node cluster) get the Listener, Cluster and ClusterLoadAssignment
// `grpctest` (control-plane/README.md). Every flag falls back to an environment
// variable, -port to GRPCTEST_PORT (the table in settings.go; -help lists them).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"grpctest/go-common/program"
)

func main() {
	parseSettings()
	program.Run("control-plane", logLevel, run)
}

// run serves until ctx ends (SIGTERM or SIGINT); it returns early with the error if
// the control plane cannot start or stops serving.
func run(ctx context.Context) error {
	replicas, _ := parseServers(serversText) // checked by parseSettings
	find, err := newSource(discoveryKind, replicas, dnsRefresh, namespace)
	if err != nil {
		return err
	}
	checks, err := newChecking(healthService, checkInterval, checkTimeout, checkFailures, tlsCA, tlsServerName)
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	m := newMetrics()
	if metricsPort != 0 {
		if err := m.serve(ctx, host, metricsPort); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	cp := start(ctx, listener, find, checks, m)
	slog.Info("serving ADS", "address", listener.Addr().String(), "discovery", discoveryKind, "servers", serversText)
	return cp.wait(ctx)
}

// controlPlane is a started control plane: discovery, the controller and the gRPC
// server, each in its own goroutine.
type controlPlane struct {
	grpc   interface{ Stop() }
	failed chan error
}

// start runs the control plane on listener until ctx ends: discovery feeds the
// controller, whose snapshots the gRPC server serves; Health turns SERVING once the
// first snapshot is out.
func start(ctx context.Context, listener net.Listener, find source, checks checking, m *metrics) *controlPlane {
	p := newPublisher(m)
	server, health := newGRPCServer(ctx, p.cache, m)
	p.onFirst = func() { health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING) }
	found := make(chan []discovered)
	cp := &controlPlane{grpc: server, failed: make(chan error, 2)}
	go func() {
		if err := find(ctx, found); err != nil {
			cp.failed <- fmt.Errorf("discovery: %w", err)
		}
	}()
	go newController(checks, p).run(ctx, found)
	go func() {
		if err := server.Serve(listener); err != nil {
			cp.failed <- err
		}
	}()
	return cp
}

// wait returns when ctx ends (nil: a clean stop) or the control plane failed.
func (cp *controlPlane) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		// Data planes keep what they have; their ADS streams end here.
		cp.grpc.Stop()
		slog.Info("stopped")
		return nil
	case err := <-cp.failed:
		cp.grpc.Stop()
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
}
