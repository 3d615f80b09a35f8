package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// The two views the control plane serves, by the node's `cluster` in a data plane's
// bootstrap. Envoy (envoy/envoy.yaml says `cluster: grpctest-envoy`) has its listeners,
// routes and cluster policy in its own config and asks only for the endpoints; every
// other node is a gRPC client (control-plane/xds-bootstrap.json says
// `cluster: grpctest-clients`), which asks for the listener, the cluster and the
// endpoints. A view holds only what its nodes ask for: an ADS snapshot answers only
// once every resource of the asked type is asked for by name.
const (
	envoyGroup   = "grpctest-envoy"
	clientsGroup = "grpctest-clients"
)

// nodeGroups keys the snapshot cache by view, not by node id: every Envoy shares one
// snapshot, every client the other.
type nodeGroups struct{}

func (nodeGroups) ID(node *core.Node) string {
	if node.GetCluster() == envoyGroup {
		return envoyGroup
	}
	return clientsGroup
}

// publisher turns the replicas' health into snapshots of both views.
type publisher struct {
	cache   cache.SnapshotCache
	metrics *metrics
	// boot makes versions unique across restarts: a data plane that reconnects to a
	// restarted control plane still holds the old one's last version, and the cache
	// answers only when the version differs.
	boot    string
	version int
	last    map[string]endpointState // the health published last; nil before the first
	onFirst func()                   // called once the first version is out, if set
}

func newPublisher(m *metrics) *publisher {
	return &publisher{
		cache:   cache.NewSnapshotCache(true, nodeGroups{}, cacheLogger{}),
		metrics: m,
		boot:    fmt.Sprintf("%x", time.Now().UnixMilli()),
	}
}

// publish sets a new version of both views if health differs from what was published
// last; versions count changes (boot-1, boot-2, ...).
func (p *publisher) publish(ctx context.Context, health map[string]endpointState, note string) error {
	if p.last != nil && maps.Equal(health, p.last) {
		return nil
	}
	p.version++
	version := fmt.Sprintf("%s-%d", p.boot, p.version)
	endpoints := cache.NewResources(version, []types.Resource{loadAssignment(health)})
	var envoy, clients cache.Snapshot
	envoy.Resources[types.Endpoint] = endpoints
	clients.Resources[types.Endpoint] = endpoints
	// The listener and cluster never change while the control plane runs.
	clients.Resources[types.Listener] = cache.NewResources(p.boot, []types.Resource{clientListener()})
	clients.Resources[types.Cluster] = cache.NewResources(p.boot, []types.Resource{clientCluster()})
	if err := p.cache.SetSnapshot(ctx, envoyGroup, &envoy); err != nil {
		return err
	}
	if err := p.cache.SetSnapshot(ctx, clientsGroup, &clients); err != nil {
		return err
	}
	if p.last == nil && p.onFirst != nil {
		p.onFirst()
	}
	p.last = health
	healthy, unhealthy := split(health)
	p.metrics.published(len(healthy), len(unhealthy))
	slog.Info("new version", "version", version, "healthy", healthy, "unhealthy", unhealthy, "note", note)
	return nil
}

// split is the healthy replicas' addresses and the others', sorted.
func split(health map[string]endpointState) (healthy, unhealthy []string) {
	healthy, unhealthy = []string{}, []string{}
	for _, address := range sortedKeys(health) {
		if health[address].healthy {
			healthy = append(healthy, address)
		} else {
			unhealthy = append(unhealthy, address)
		}
	}
	return healthy, unhealthy
}

// cacheLogger passes go-control-plane's cache log to slog, its chatter as debug.
type cacheLogger struct{}

func (cacheLogger) Debugf(format string, args ...any) { slog.Debug(fmt.Sprintf(format, args...)) }
func (cacheLogger) Infof(format string, args ...any)  { slog.Debug(fmt.Sprintf(format, args...)) }
func (cacheLogger) Warnf(format string, args ...any)  { slog.Warn(fmt.Sprintf(format, args...)) }
func (cacheLogger) Errorf(format string, args ...any) { slog.Error(fmt.Sprintf(format, args...)) }
