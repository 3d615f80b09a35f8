package balancing

import (
	"net/url"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

func TestWhichTargetsAreBalancedHere(t *testing.T) {
	for target, want := range map[string]bool{
		"localhost:8080":            false,
		"xds:///grpctest":           false,
		"dns:///replicas:50051":     true,
		"ipv4:127.0.0.1:50051":      true,
		"ipv6:[::1]:50051,[::1]:50": true,
	} {
		if got := Balanced(target); got != want {
			t.Errorf("Balanced(%q) = %v, want %v", target, got, want)
		}
	}
}

func TestAnXDSTargetNeedsABootstrap(t *testing.T) {
	t.Setenv("GRPC_XDS_BOOTSTRAP", "")
	t.Setenv("GRPC_XDS_BOOTSTRAP_CONFIG", "")
	if !NeedsBootstrap("xds:///grpctest") || NeedsBootstrap("localhost:8080") {
		t.Fatal("without a bootstrap, only the xds target needs one")
	}
	t.Setenv("GRPC_XDS_BOOTSTRAP_CONFIG", "{}")
	if NeedsBootstrap("xds:///grpctest") {
		t.Fatal("GRPC_XDS_BOOTSTRAP_CONFIG is a bootstrap")
	}
}

// The service config is valid: grpc-go refuses a client whose default one does not parse.
func TestTheServiceConfigParses(t *testing.T) {
	options := append(DialOptions("dns:///localhost:1"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient("dns:///localhost:1", options...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	_ = conn.Close()
}

// fakeConn keeps what a resolver reports.
type fakeConn struct {
	resolver.ClientConn
	state resolver.State
}

func (f *fakeConn) UpdateState(s resolver.State) error { f.state = s; return nil }
func (f *fakeConn) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{}
}

func TestAListResolvesToEveryAddressOnIt(t *testing.T) {
	for target, want := range map[string][]string{
		"ipv4:127.0.0.1:50051,127.0.0.1:50052": {"127.0.0.1:50051", "127.0.0.1:50052"},
		"ipv4:///127.0.0.1:50051":              {"127.0.0.1:50051"},
		"ipv6:[::1]:50051":                     {"[::1]:50051"},
	} {
		parsed, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		conn := &fakeConn{}
		if _, err := (staticBuilder{parsed.Scheme}).Build(resolver.Target{URL: *parsed}, conn, resolver.BuildOptions{}); err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		var got []string
		for _, endpoint := range conn.state.Endpoints {
			got = append(got, endpoint.Addresses[0].Addr)
		}
		if len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
			t.Errorf("%s: resolved to %v, want %v", target, got, want)
		}
	}
	bad, _ := url.Parse("ipv4:replicas:50051")
	if _, err := (staticBuilder{"ipv4"}).Build(resolver.Target{URL: *bad}, &fakeConn{}, resolver.BuildOptions{}); err == nil {
		t.Error("a name is no address: want an error")
	}
}
