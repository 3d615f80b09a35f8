package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"grpctest/go-common/tracing"
	pb "grpctest/proto/go"
)

// config is what a server needs to know; main fills it from the flags.
type config struct {
	address         string
	replica         string
	reflection      bool
	maxMessageBytes int
	// HTTP/2 streams one connection may have open at once; streams of the service open
	// at once, all connections together (0: no limit).
	maxConcurrentStreams, maxStreams int
	metricsPort                      int // Prometheus /metrics on this port; 0: none
	tlsCert, tlsKey                  string
}

// server is a started server: the gRPC server, its services and its listener.
type server struct {
	grpc     *grpc.Server
	service  *service
	health   *health.Server
	listener net.Listener
	done     chan error
}

func serverOptions(cfg config, metrics *metrics) ([]grpc.ServerOption, error) {
	check, err := newRequestCheck()
	if err != nil {
		return nil, err
	}
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(newRequestCodec()),
		grpc.MaxRecvMsgSize(cfg.maxMessageBytes),
		// Own limits, whatever sits in front: streams per connection (and, with
		// streamLimit below, per server), and idle connections closed after 5 minutes
		// (as py-server).
		grpc.MaxConcurrentStreams(uint32(cfg.maxConcurrentStreams)),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute}),
	}
	opts = append(opts, tracingOptions()...)
	if metrics != nil {
		opts = append(opts, metrics.serverOptions()...)
	}
	// Inside tracing and metrics: they see the streams it refuses.
	if cfg.maxStreams > 0 {
		opts = append(opts, grpc.ChainStreamInterceptor(streamLimit(cfg.maxStreams, cfg.replica)))
	}
	if checkRequests { // innermost: traces and metrics see what the check answers
		opts = append(opts, check.serverOptions()...)
	}
	if cfg.tlsCert == "" {
		return opts, nil
	}
	creds, err := credentials.NewServerTLSFromFile(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		return nil, err
	}
	return append(opts, grpc.Creds(creds)), nil
}

// start builds the server and serves on cfg.address; grpctest.Grpctest reports
// SERVING once it can answer ("" does from the start).
func start(cfg config) (*server, error) {
	listener, err := net.Listen("tcp", cfg.address)
	if err != nil {
		return nil, err
	}
	return startOn(listener, cfg)
}

func startOn(listener net.Listener, cfg config) (*server, error) {
	var m *metrics
	if cfg.metricsPort != 0 {
		m = newMetrics()
	}
	opts, err := serverOptions(cfg, m)
	if err != nil {
		_ = listener.Close() // (err is what went wrong)
		return nil, err
	}
	s := &server{
		grpc:     grpc.NewServer(opts...),
		service:  newService(cfg.replica),
		health:   health.NewServer(),
		listener: listener,
		done:     make(chan error, 1),
	}
	pb.RegisterGrpctestServer(s.grpc, s.service)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if cfg.reflection {
		reflection.Register(s.grpc) // v1 and v1alpha
	}
	if m != nil {
		if err := m.serve(s.grpc, s.health, listener.Addr(), cfg.metricsPort); err != nil {
			_ = listener.Close() // (err is what went wrong)
			return nil, err
		}
	}
	go func() { s.done <- s.grpc.Serve(listener) }()
	s.health.SetServingStatus(pb.Grpctest_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	slog.Info("serving", "replica", cfg.replica, "service", pb.Grpctest_ServiceDesc.ServiceName,
		"address", listener.Addr().String(), "tls", cfg.tlsCert != "", "reflection", cfg.reflection,
		"metrics_port", cfg.metricsPort, "tracing", tracing.Enabled())
	return s, nil
}

// serveUntil serves until ctx ends, then drains and stops (see drainAndStop). If
// serving fails before that (the listener breaks), it stops the server and returns
// the error at once rather than serving nothing until a signal comes.
func (s *server) serveUntil(ctx context.Context, drain, grace time.Duration) error {
	select {
	case err := <-s.done:
		s.grpc.Stop()
		return fmt.Errorf("stopped serving: %w", err)
	case <-ctx.Done():
	}
	slog.Info("shutting down: NOT_SERVING, then grace for in-flight calls",
		"drain_seconds", drain.Seconds(), "grace_seconds", grace.Seconds())
	s.drainAndStop(drain, grace)
	return nil
}

// drainAndStop reports NOT_SERVING for every service, keeps answering for drain,
// then stops accepting calls and gives in-flight calls grace to finish (open streams
// are ended a second before, with a status the caller can act on); past grace, the
// remaining calls are cut.
func (s *server) drainAndStop(drain, grace time.Duration) {
	s.health.Shutdown()
	time.Sleep(drain)
	s.service.closeStreamsAfter(max(grace-time.Second, 0))
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(grace):
		s.grpc.Stop()
	}
	// Serve returns nil once stopped; anything else broke while draining.
	if err := <-s.done; err != nil {
		slog.Warn("serving ended with an error while stopping", "error", err)
	}
}
