package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// metrics are the replica's Prometheus metrics, the names, labels and label values of
// grpc-ecosystem's go-grpc-middleware Prometheus provider (go-grpc-prometheus's
// successor), which py-server serves too (the conformance suite compares them):
//
//	grpc_server_started_total{grpc_type, grpc_service, grpc_method}
//	grpc_server_handled_total{grpc_type, grpc_service, grpc_method, grpc_code}
//	grpc_server_handling_seconds{grpc_type, grpc_service, grpc_method}   (histogram)
//	grpc_server_msg_received_total{grpc_type, grpc_service, grpc_method}
//	grpc_server_msg_sent_total{grpc_type, grpc_service, grpc_method}
//	grpc_server_in_flight{grpc_type, grpc_service, grpc_method}          (ours: the provider has none)
//	grpc_health_serving{service}          1 while the Health service reports SERVING
//
// grpc_code is grpc-go's code name (OK, InvalidArgument, Canceled). Beside them, the
// client library's process_* and go_* collectors.
type metrics struct {
	grpc     *grpcprom.ServerMetrics
	inFlight *prometheus.GaugeVec
	registry *prometheus.Registry
}

func newMetrics() *metrics {
	m := &metrics{
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}))),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "grpc_server_in_flight", Help: "RPCs being handled",
		}, []string{"grpc_type", "grpc_service", "grpc_method"}),
		registry: prometheus.NewRegistry(),
	}
	m.registry.MustRegister(m.grpc, m.inFlight,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return m
}

func (m *metrics) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.grpc.UnaryServerInterceptor(), m.unaryInFlight),
		grpc.ChainStreamInterceptor(m.grpc.StreamServerInterceptor(), m.streamInFlight),
	}
}

func (m *metrics) unaryInFlight(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	defer m.track(interceptors.NewServerCallMeta(info.FullMethod, nil, req))()
	return handler(ctx, req)
}

func (m *metrics) streamInFlight(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	defer m.track(interceptors.NewServerCallMeta(info.FullMethod, info, nil))()
	return handler(srv, ss)
}

// track counts a call in flight until the function it returns is called.
func (m *metrics) track(call interceptors.CallMeta) func() {
	gauge := m.inFlight.WithLabelValues(string(call.Typ), call.Service, call.Method)
	gauge.Inc()
	return gauge.Dec
}

// initialize makes every series of every method the server serves, at 0, as the
// provider's InitializeMetrics does for its own.
func (m *metrics) initialize(s *grpc.Server) {
	m.grpc.InitializeMetrics(s)
	for service, info := range s.GetServiceInfo() {
		for _, method := range info.Methods {
			m.inFlight.WithLabelValues(string(grpcType(method)), service, method.Name)
		}
	}
}

// grpcType is a method's grpc_type, as the provider names it.
func grpcType(method grpc.MethodInfo) interceptors.GRPCType {
	switch {
	case method.IsClientStream && method.IsServerStream:
		return interceptors.BidiStream
	case method.IsClientStream:
		return interceptors.ClientStream
	case method.IsServerStream:
		return interceptors.ServerStream
	}
	return interceptors.Unary
}

// serve registers the health gauge and serves /metrics on port, on the gRPC
// listener's host, in the background.
func (m *metrics) serve(s *grpc.Server, h *health.Server, grpcAddr net.Addr, port int) error {
	m.initialize(s)
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
