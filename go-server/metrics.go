package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// metrics are the replica's Prometheus metrics, with py-server's names (those of
// grpc-ecosystem's go-grpc-prometheus, whose successor provides them here):
//
//	grpc_server_started_total{grpc_type, grpc_service, grpc_method}
//	grpc_server_handled_total{grpc_type, grpc_service, grpc_method, grpc_code}
//	grpc_server_handling_seconds{grpc_type, grpc_service, grpc_method}   (histogram)
//	grpc_health_serving{service}          1 while the Health service reports SERVING
//
// plus the library's grpc_server_msg_{received,sent}_total. Its grpc_code values are
// grpc-go's code names (InvalidArgument), py-server's are the status names
// (INVALID_ARGUMENT).
type metrics struct {
	grpc     *grpcprom.ServerMetrics
	registry *prometheus.Registry
}

func newMetrics() *metrics {
	m := &metrics{
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}))),
		registry: prometheus.NewRegistry(),
	}
	m.registry.MustRegister(m.grpc)
	return m
}

func (m *metrics) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.grpc.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.grpc.StreamServerInterceptor()),
	}
}

// serve registers the health gauge and serves /metrics on port, on the gRPC
// listener's host, in the background.
func (m *metrics) serve(s *grpc.Server, h *health.Server, grpcAddr net.Addr, port int) error {
	m.grpc.InitializeMetrics(s)
	m.registry.MustRegister(healthCollector{h})
	host, _, _ := net.SplitHostPort(grpcAddr.String())
	listener, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	go func() {
		if err := http.Serve(listener, mux); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("metrics server stopped", "error", err)
		}
	}()
	return nil
}

var healthDesc = prometheus.NewDesc("grpc_health_serving",
	"1 while the Health service reports SERVING", []string{"service"}, nil)

// healthCollector reads grpc_health_serving from the health server at each scrape.
type healthCollector struct{ health *health.Server }

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- healthDesc }

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	list, err := c.health.List(context.Background(), &healthpb.HealthListRequest{})
	if err != nil {
		return
	}
	for service, reply := range list.GetStatuses() {
		serving := 0.0
		if reply.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			serving = 1
		}
		ch <- prometheus.MustNewConstMetric(healthDesc, prometheus.GaugeValue, serving, service)
	}
}
