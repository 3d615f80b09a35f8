package balancing

import (
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc/resolver"
)

// grpc-go has no resolver for a fixed list of addresses (ipv4:ADDR,ADDR), which gRPC's
// C core (the Python client) has: these two give both clients the same targets. They
// take C core's form, ipv4:127.0.0.1:50051,127.0.0.1:50052 (ipv6:[::1]:50051,...).
func init() {
	resolver.Register(staticBuilder{"ipv4"})
	resolver.Register(staticBuilder{"ipv6"})
}

type staticBuilder struct{ scheme string }

func (b staticBuilder) Scheme() string { return b.scheme }

// Build reports every address of the list once; a list that is not one is an error.
func (b staticBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	var endpoints []resolver.Endpoint
	for _, address := range strings.Split(target.Endpoint(), ",") {
		host, _, err := net.SplitHostPort(address)
		if err != nil || net.ParseIP(host) == nil {
			return nil, fmt.Errorf("%s: %q is no IP address and port", b.scheme, address)
		}
		endpoints = append(endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: address}}})
	}
	if err := cc.UpdateState(resolver.State{Endpoints: endpoints}); err != nil {
		return nil, err
	}
	return staticResolver{}, nil
}

// staticResolver has nothing to resolve again: the list is the list.
type staticResolver struct{}

func (staticResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (staticResolver) Close()                                {}
