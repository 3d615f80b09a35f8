package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the control plane's Prometheus metrics:
//
//	control_plane_pushes_total{group, type}        responses sent to data planes
//	control_plane_versions_total                  snapshot versions made (one per change)
//	control_plane_endpoints{cluster, health}      replicas published, healthy and unhealthy
//	control_plane_data_planes{group}              data planes connected now (ADS streams)
type metrics struct {
	registry   *prometheus.Registry
	pushes     *prometheus.CounterVec
	versions   prometheus.Counter
	endpoints  *prometheus.GaugeVec
	dataPlanes *prometheus.GaugeVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "control_plane_pushes_total", Help: "xDS responses sent to data planes, by view and resource type",
		}, []string{"group", "type"}),
		versions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "control_plane_versions_total", Help: "snapshot versions made: one per change of the replicas' health",
		}),
		endpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "control_plane_endpoints", Help: "replicas in the last version, by cluster and health",
		}, []string{"cluster", "health"}),
		dataPlanes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "control_plane_data_planes", Help: "data planes connected (open ADS streams), by view",
		}, []string{"group"}),
	}
	m.registry.MustRegister(m.pushes, m.versions, m.endpoints, m.dataPlanes)
	for _, group := range []string{envoyGroup, clientsGroup} {
		m.dataPlanes.WithLabelValues(group)
	}
	return m
}

func (m *metrics) published(healthy, unhealthy int) {
	m.versions.Inc()
	m.endpoints.WithLabelValues(serviceName, "healthy").Set(float64(healthy))
	m.endpoints.WithLabelValues(serviceName, "unhealthy").Set(float64(unhealthy))
}

// serve serves /metrics on host:port until ctx ends.
func (m *metrics) serve(ctx context.Context, host string, port int) error {
	listener, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = server.Close() // stopping: nothing to report
	}()
	go func() {
		if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("metrics server stopped", "error", err)
		}
	}()
	return nil
}
