// Package balancing is how a grpctest Go client reaches the replicas, the same way as the
// Python programs (grpctest_common.channels); where the calls go follows from the target
// (docs/load-balancing.md):
//
//	localhost:8080          one connection, to Envoy, which balances every call
//	xds:///grpctest         proxyless: the xDS control plane named by the bootstrap
//	                        (GRPC_XDS_BOOTSTRAP, a file, or GRPC_XDS_BOOTSTRAP_CONFIG, its
//	                        JSON) sends the replicas, their health, the balancing and the
//	                        retries
//	dns:///py-server:50051  client-side, no control plane: every address the name resolves
//	ipv4:127.0.0.1:50051,127.0.0.1:50052   to (or every listed one) gets a connection;
//	                        ServiceConfig balances and retries
//
// Importing it registers grpc-go's xds resolver and balancers and its client-side
// health checking.
package balancing

import (
	_ "embed"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/health" // client-side health checking (healthCheckConfig)
	"google.golang.org/grpc/keepalive"
	_ "google.golang.org/grpc/xds" // xds:/// targets
)

// ServiceConfig is client-side balancing's policy (dns:, ipv4:, ipv6: targets): round
// robin over every address, each replica's grpctest.Grpctest health watched (a replica
// reporting NOT_SERVING gets no calls), a call that fails UNAVAILABLE tried again on
// another replica (at most 3 attempts). The Python programs read the same file
// (py-common/grpctest_common/service_config.json; a test keeps the two equal).
//
//go:embed service_config.json
var ServiceConfig string

// Keepalive is how a connection is watched: one with calls open that has received
// nothing for 10 s (grpc-go's shortest interval; the Python client's is 1 s) is pinged,
// and closed if the ping is not answered within a second; its calls then fail
// UNAVAILABLE (retried where the policy allows) instead of waiting for their deadline
// on a replica that stopped answering. The servers allow pings every 0.5 s while calls
// are open.
var Keepalive = keepalive.ClientParameters{Time: 10 * time.Second, Timeout: time.Second}

var balancedSchemes = []string{"dns:", "ipv4:", "ipv6:"}

// Balanced says whether the client balances calls to target itself over DNS or a list.
func Balanced(target string) bool {
	for _, scheme := range balancedSchemes {
		if strings.HasPrefix(target, scheme) {
			return true
		}
	}
	return false
}

// NeedsBootstrap says whether target is an xDS one while no bootstrap is set (grpc-go
// would only fail later, at the first call).
func NeedsBootstrap(target string) bool {
	return strings.HasPrefix(target, "xds:") &&
		os.Getenv("GRPC_XDS_BOOTSTRAP") == "" && os.Getenv("GRPC_XDS_BOOTSTRAP_CONFIG") == ""
}

// DialOptions are the options every connection to target gets.
func DialOptions(target string) []grpc.DialOption {
	options := []grpc.DialOption{grpc.WithKeepaliveParams(Keepalive)}
	if Balanced(target) {
		options = append(options, grpc.WithDefaultServiceConfig(ServiceConfig))
	}
	return options
}
