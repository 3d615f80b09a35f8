package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	xds "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// newGRPCServer is the control plane's gRPC server: ADS from the snapshot cache, and the
// standard Health service (NOT_SERVING until the first snapshot is out).
func newGRPCServer(ctx context.Context, snapshots cache.Cache, m *metrics) (*grpc.Server, *health.Server) {
	server := grpc.NewServer(
		// Data planes keep one ADS stream open for as long as they run. Their
		// keepalive pings (Envoy's every 5 s, envoy/envoy.yaml) are fine down to
		// one every 2 s; the server pings idle connections itself to find dead data
		// planes.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 2 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 5 * time.Second}),
	)
	discovery.RegisterAggregatedDiscoveryServiceServer(server, xds.NewServer(ctx, snapshots, newStreamLog(m)))
	healthServer := health.NewServer()
	healthServer.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(server, healthServer)
	return server, healthServer
}

// streamLog logs who connects, what each is sent (every version, to whom) and what
// each rejects, and counts them in the metrics.
type streamLog struct {
	xds.CallbackFuncs
	metrics *metrics
	mu      sync.Mutex
	nodes   map[int64]*core.Node // by ADS stream, once its first request named the node
}

func newStreamLog(m *metrics) *streamLog {
	s := &streamLog{metrics: m, nodes: map[int64]*core.Node{}}
	s.StreamRequestFunc = s.request
	s.StreamResponseFunc = s.response
	s.StreamClosedFunc = s.closed
	return s
}

func (s *streamLog) request(id int64, req *discovery.DiscoveryRequest) error {
	s.mu.Lock()
	_, known := s.nodes[id]
	if !known && req.GetNode() != nil {
		s.nodes[id] = req.GetNode()
	}
	s.mu.Unlock()
	node := req.GetNode()
	if !known && node != nil {
		group := nodeGroups{}.ID(node)
		s.metrics.dataPlanes.WithLabelValues(group).Inc()
		slog.Info("data plane connected", "stream", id, "node", node.GetId(), "group", group)
	}
	if req.GetErrorDetail() != nil {
		slog.Warn("data plane rejected a version", "stream", id, "node", node.GetId(), "type", shortType(req.GetTypeUrl()),
			"keeps", req.GetVersionInfo(), "nonce", req.GetResponseNonce(), "error", req.GetErrorDetail().GetMessage())
	}
	return nil
}

func (s *streamLog) response(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	node := s.node(id)
	group := nodeGroups{}.ID(node)
	s.metrics.pushes.WithLabelValues(group, shortType(resp.GetTypeUrl())).Inc()
	slog.Info("pushed", "version", resp.GetVersionInfo(), "type", shortType(resp.GetTypeUrl()),
		"resources", len(resp.GetResources()), "node", node.GetId(), "group", group, "stream", id)
}

func (s *streamLog) closed(id int64, _ *core.Node) {
	s.mu.Lock()
	node, known := s.nodes[id]
	delete(s.nodes, id)
	s.mu.Unlock()
	if known {
		group := nodeGroups{}.ID(node)
		s.metrics.dataPlanes.WithLabelValues(group).Dec()
		slog.Info("data plane disconnected", "stream", id, "node", node.GetId(), "group", group)
	}
}

func (s *streamLog) node(id int64) *core.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[id]
}

// shortType is a resource type URL's last part: ClusterLoadAssignment, Listener, ...
func shortType(url string) string {
	return url[strings.LastIndex(url, ".")+1:]
}
