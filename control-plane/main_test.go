package main

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/xds"

	pb "grpctest/proto/go"
)

// testChecking checks replicas as the settings' defaults do.
var testChecking = checking{service: "grpctest.Grpctest", interval: 500 * time.Millisecond, timeout: time.Second, failures: 2, creds: insecure.NewCredentials()}

// testReplica is a real gRPC server on loopback: the Health service and
// grpctest.Grpctest, answering with its name.
type testReplica struct {
	pb.UnimplementedGrpctestServer
	name    string
	address string
	server  *grpc.Server
	health  *health.Server
	checks  *slowChecks
}

// slowChecks is the Health service with Check answering late (after the caller's
// deadline) while slow is set, Watch as usual: a replica under heavy load.
type slowChecks struct {
	*health.Server
	slow atomic.Bool
}

func (h *slowChecks) Check(ctx context.Context, request *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if h.slow.Load() {
		<-ctx.Done()
	}
	return h.Server.Check(ctx, request)
}

func (r *testReplica) GetServerResponse(_ context.Context, m *pb.Message) (*pb.MessageResponse, error) {
	return &pb.MessageResponse{Message: m.GetMessage(), Received: true, Replica: r.name}, nil
}

func startReplica(t *testing.T, name string) *testReplica {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &testReplica{name: name, address: listener.Addr().String(), server: grpc.NewServer(), health: health.NewServer()}
	r.checks = &slowChecks{Server: r.health}
	healthpb.RegisterHealthServer(r.server, r.checks)
	pb.RegisterGrpctestServer(r.server, r)
	r.health.SetServingStatus(testChecking.service, healthpb.HealthCheckResponse_SERVING)
	go func() { _ = r.server.Serve(listener) }()
	t.Cleanup(r.server.Stop)
	return r
}

// frozenAddress is a listener that accepts connections and never says a word: a
// replica whose process is stopped (SIGSTOP) looks like this to its callers.
func frozenAddress(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listener.Close() })
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()
	return listener.Addr().String()
}

// startControlPlane runs the control plane in-process on a loopback port with these
// replica addresses (the list source); it stops with the test.
func startControlPlane(t *testing.T, addresses ...string) string {
	t.Helper()
	replicas, err := parseServers(strings.Join(addresses, ","))
	if err != nil {
		t.Fatal(err)
	}
	find, err := listSource(replicas)
	if err != nil {
		t.Fatal(err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cp := start(ctx, listener, find, testChecking, newMetrics())
	t.Cleanup(func() {
		cancel()
		if err := cp.wait(ctx); err != nil {
			t.Error(err)
		}
	})
	return listener.Addr().String()
}

// adsStream is Envoy's ADS stream to the control plane (node cluster grpctest-envoy),
// asking for the endpoints of `grpctest`.
type adsStream struct {
	t      *testing.T
	stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   *core.Node
}

func openADS(t *testing.T, address string) *adsStream {
	t.Helper()
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := &adsStream{t: t, stream: stream, node: &core.Node{Id: "test", Cluster: envoyGroup}}
	a.send("", "")
	return a
}

// send asks for the endpoints, acknowledging version and nonce (empty at first).
func (a *adsStream) send(version, nonce string) {
	a.t.Helper()
	err := a.stream.Send(&discovery.DiscoveryRequest{
		Node: a.node, TypeUrl: resource.EndpointType, ResourceNames: []string{serviceName},
		VersionInfo: version, ResponseNonce: nonce,
	})
	if err != nil {
		a.t.Fatal(err)
	}
}

// next is the next version of the endpoints (acknowledged): address -> HEALTHY.
func (a *adsStream) next() (string, map[string]bool) {
	a.t.Helper()
	response, err := a.stream.Recv()
	if err != nil {
		a.t.Fatal(err)
	}
	a.send(response.GetVersionInfo(), response.GetNonce())
	if len(response.GetResources()) != 1 {
		a.t.Fatalf("want one ClusterLoadAssignment, got %d resources", len(response.GetResources()))
	}
	var assignment endpoint.ClusterLoadAssignment
	if err := response.GetResources()[0].UnmarshalTo(&assignment); err != nil {
		a.t.Fatal(err)
	}
	health := map[string]bool{}
	for _, locality := range assignment.GetEndpoints() {
		for _, e := range locality.GetLbEndpoints() {
			socket := e.GetEndpoint().GetAddress().GetSocketAddress()
			address := net.JoinHostPort(socket.GetAddress(), strconv.FormatUint(uint64(socket.GetPortValue()), 10))
			health[address] = e.GetHealthStatus() == core.HealthStatus_HEALTHY
		}
	}
	return response.GetVersionInfo(), health
}

// until reads versions until one satisfies done; returns it.
func (a *adsStream) until(done func(map[string]bool) bool) map[string]bool {
	a.t.Helper()
	for {
		_, health := a.next()
		if done(health) {
			return health
		}
	}
}

func TestEnvoySeesEveryReplicaHealthyInTheFirstVersion(t *testing.T) {
	a, b := startReplica(t, "a"), startReplica(t, "b")
	frozen := frozenAddress(t)
	ads := openADS(t, startControlPlane(t, a.address, b.address, frozen))
	// The first version already has the live replicas healthy: it waited for their
	// answers (and for the frozen one's check to time out) instead of publishing what
	// it had not asked yet.
	_, health := ads.next()
	want := map[string]bool{a.address: true, b.address: true, frozen: false}
	if !maps.Equal(health, want) {
		t.Fatalf("first version: got %v, want %v", health, want)
	}
}

func TestANotServingOrDeadReplicaLeavesAndComesBack(t *testing.T) {
	a, b := startReplica(t, "a"), startReplica(t, "b")
	ads := openADS(t, startControlPlane(t, a.address, b.address))
	ads.until(func(h map[string]bool) bool { return h[a.address] && h[b.address] })

	a.health.SetServingStatus(testChecking.service, healthpb.HealthCheckResponse_NOT_SERVING)
	ads.until(func(h map[string]bool) bool { return !h[a.address] && h[b.address] })
	a.health.SetServingStatus(testChecking.service, healthpb.HealthCheckResponse_SERVING)
	ads.until(func(h map[string]bool) bool { return h[a.address] && h[b.address] })

	b.server.Stop() // its connections close: the Watch stream ends
	ads.until(func(h map[string]bool) bool { return h[a.address] && !h[b.address] })
}

func TestAFrozenReplicaIsUnhealthy(t *testing.T) {
	a := startReplica(t, "a")
	frozen := frozenAddress(t)
	ads := openADS(t, startControlPlane(t, a.address, frozen))
	health := ads.until(func(h map[string]bool) bool { return h[a.address] })
	if health[frozen] {
		t.Fatalf("a replica that never answers is published healthy: %v", health)
	}
}

func TestLateAnswersNeverTakeTheLastReplicasOut(t *testing.T) {
	a, b := startReplica(t, "a"), startReplica(t, "b")
	ads := openADS(t, startControlPlane(t, a.address, b.address))
	ads.until(func(h map[string]bool) bool { return h[a.address] && h[b.address] })
	// One replica that answers its checks late while the other answers in time: out.
	a.checks.slow.Store(true)
	ads.until(func(h map[string]bool) bool { return !h[a.address] && h[b.address] })
	// Both late: overload, not two frozen replicas; both stay in.
	b.checks.slow.Store(true)
	ads.until(func(h map[string]bool) bool { return h[a.address] && h[b.address] })
	// A replica that says NOT_SERVING leaves, late or not.
	b.health.SetServingStatus(testChecking.service, healthpb.HealthCheckResponse_NOT_SERVING)
	ads.until(func(h map[string]bool) bool { return h[a.address] && !h[b.address] })
}

func TestVersionsChangeOnlyWithHealth(t *testing.T) {
	a := startReplica(t, "a")
	ads := openADS(t, startControlPlane(t, a.address))
	first, _ := ads.next()
	a.health.SetServingStatus(testChecking.service, healthpb.HealthCheckResponse_NOT_SERVING)
	second, _ := ads.next()
	if first == second {
		t.Fatalf("a change kept the version %q", first)
	}
}

func TestClientsViewIsConsistent(t *testing.T) {
	snapshot, err := cache.NewSnapshot("1", map[resource.Type][]types.Resource{
		resource.ListenerType: {clientListener()},
		resource.ClusterType:  {clientCluster()},
		resource.EndpointType: {loadAssignment(map[string]endpointState{"127.0.0.1:1": {healthy: true}})},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every ClusterLoadAssignment is named by a cluster, every route by a listener.
	if err := snapshot.Consistent(); err != nil {
		t.Fatal(err)
	}
}

func TestNodesAreGroupedByTheirCluster(t *testing.T) {
	for cluster, want := range map[string]string{envoyGroup: envoyGroup, clientsGroup: clientsGroup, "": clientsGroup, "other": clientsGroup} {
		if got := (nodeGroups{}).ID(&core.Node{Cluster: cluster}); got != want {
			t.Errorf("node cluster %q: got %q, want %q", cluster, got, want)
		}
	}
}

func TestServers(t *testing.T) {
	for text, ok := range map[string]bool{
		"127.0.0.1:50051,127.0.0.1:50052": true, "py-server:50051, go-server:50051": true,
		"py-server=127.0.0.1:50051,go-server=127.0.0.1:50054": true,
		"": false, "py-server": false, "py-server:0": false, "py-server:x": false, ":50051": false,
		"py-server=": false,
	} {
		if _, err := parseServers(text); (err == nil) != ok {
			t.Errorf("%q: got error %v", text, err)
		}
	}
	if _, err := listSource([]hostPort{{host: "py-server", port: 50051}}); err == nil {
		t.Error("the list source took a name")
	}
	named, err := parseServers("py-server=127.0.0.1:50051, 127.0.0.1:50052")
	if want := []hostPort{{"127.0.0.1", 50051, "py-server"}, {"127.0.0.1", 50052, ""}}; err != nil || !slices.Equal(named, want) {
		t.Errorf("named servers: got %v, %v; want %v", named, err, want)
	}
}

func TestDNSSourceResolvesNamesAndDropsUnknownOnes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	found := make(chan []discovered)
	// localhost comes from /etc/hosts; .invalid never resolves (RFC 6761).
	find := dnsSource([]hostPort{{host: "localhost", port: 50051}, {host: "grpctest.invalid", port: 50051}}, time.Second, net.DefaultResolver)
	go func() { _ = find(ctx, found) }()
	select {
	case got := <-found:
		if want := []discovered{{"127.0.0.1:50051", "localhost"}}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no first report: does this machine's DNS answer (NXDOMAIN) for grpctest.invalid?")
	}
}

// proxylessClient is a grpc-go client of xds:///grpctest, bootstrapped from
// xds-bootstrap.json with the control plane's address put in.
func proxylessClient(t *testing.T, controlPlane string) pb.GrpctestClient {
	t.Helper()
	var bootstrap map[string]any
	text, err := os.ReadFile("xds-bootstrap.json")
	if err == nil {
		err = json.Unmarshal(text, &bootstrap)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, server := range bootstrap["xds_servers"].([]any) {
		server.(map[string]any)["server_uri"] = controlPlane
	}
	text, _ = json.Marshal(bootstrap)
	resolver, err := xds.NewXDSResolverWithConfigForTesting(text)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///"+serviceName, grpc.WithResolvers(resolver),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewGrpctestClient(conn)
}

// answering calls until `calls` calls in a row were answered by exactly `want`
// (round robin: each of them in turn); fails if the test's deadline passes first.
func answering(t *testing.T, client pb.GrpctestClient, want ...string) {
	t.Helper()
	calls := 4 * len(want)
	for {
		seen := map[string]bool{}
		for range calls {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			reply, err := client.GetServerResponse(ctx, &pb.Message{Message: "hi"}, grpc.WaitForReady(true))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			seen[reply.GetReplica()] = true
		}
		if maps.Equal(seen, setOf(want)) {
			return
		}
	}
}

func setOf(items []string) map[string]bool {
	set := map[string]bool{}
	for _, item := range items {
		set[item] = true
	}
	return set
}

func TestProxylessClientsBalanceOverTheHealthyReplicas(t *testing.T) {
	a, b, c := startReplica(t, "a"), startReplica(t, "b"), startReplica(t, "c")
	client := proxylessClient(t, startControlPlane(t, a.address, b.address, c.address))
	answering(t, client, "a", "b", "c")
	b.health.SetServingStatus(testChecking.service, healthpb.HealthCheckResponse_NOT_SERVING)
	answering(t, client, "a", "c")
	c.server.Stop()
	answering(t, client, "a")
	b.health.SetServingStatus(testChecking.service, healthpb.HealthCheckResponse_SERVING)
	answering(t, client, "a", "b")
}
