package main

import (
	"net"
	"strconv"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// serviceName names every resource: the Listener a gRPC client asks for when it dials
// xds:///grpctest, its inline RouteConfiguration, the Cluster, and the
// ClusterLoadAssignment (Envoy's EDS cluster `grpctest` asks for it by this name too).
const serviceName = "grpctest"

// endpointHealth is what a data plane is told about a replica.
var endpointHealth = map[bool]core.HealthStatus{true: core.HealthStatus_HEALTHY, false: core.HealthStatus_UNHEALTHY}

// loadAssignment is the ClusterLoadAssignment `grpctest`: every known replica, HEALTHY
// when its last health answer was SERVING and it answers checks in time, else
// UNHEALTHY. Envoy and gRPC clients route only to the HEALTHY ones; Envoy keeps
// health-checking the others itself. Each endpoint's hostname is the name its replica
// was found under.
func loadAssignment(replicas map[string]endpointState) *endpoint.ClusterLoadAssignment {
	endpoints := make([]*endpoint.LbEndpoint, 0, len(replicas))
	for _, address := range sortedKeys(replicas) {
		state := replicas[address]
		endpoints = append(endpoints, &endpoint.LbEndpoint{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: socketAddress(address), Hostname: state.hostname,
			}},
			HealthStatus: endpointHealth[state.healthy],
		})
	}
	return &endpoint.ClusterLoadAssignment{
		ClusterName: serviceName,
		Endpoints: []*endpoint.LocalityLbEndpoints{{
			// One locality, all replicas: gRPC rejects endpoints without a locality and
			// ignores a locality without a weight; Envoy ignores the weight unless the
			// cluster asks for locality-weighted balancing.
			Locality:            &core.Locality{},
			LoadBalancingWeight: wrapperspb.UInt32(1),
			LbEndpoints:         endpoints,
		}},
	}
}

func socketAddress(address string) *core.Address {
	host, portText, _ := net.SplitHostPort(address)
	port, _ := strconv.Atoi(portText)
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

// clientListener is what a gRPC client dialing xds:///grpctest asks for first: an API
// listener whose HTTP connection manager carries the route (inline: no RDS round trip)
// and the router filter, without which gRPC rejects the listener.
func clientListener() *listener.Listener {
	manager := &hcm.HttpConnectionManager{
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: clientRoutes()},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       wellknown.Router,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&router.Router{})},
		}},
	}
	return &listener.Listener{Name: serviceName, ApiListener: &listener.ApiListener{ApiListener: mustAny(manager)}}
}

// clientRoutes send every call to the cluster, retried like Envoy's routes retry it
// (envoy/envoy.yaml): only on UNAVAILABLE, which is what a gRPC client sees when a
// replica refused the call, reset it by dying, or is draining; never on
// DEADLINE_EXCEEDED or INTERNAL (repeating those multiplies load when replicas are
// slow). gRPC retries a call only until its first reply arrives, so a stream that has
// delivered a reply is never repeated.
func clientRoutes() *route.RouteConfiguration {
	return &route.RouteConfiguration{
		Name: serviceName,
		VirtualHosts: []*route.VirtualHost{{
			Name:    serviceName,
			Domains: []string{"*"},
			Routes: []*route.Route{{
				Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				Action: &route.Route_Route{Route: &route.RouteAction{
					ClusterSpecifier: &route.RouteAction_Cluster{Cluster: serviceName},
					RetryPolicy: &route.RetryPolicy{
						RetryOn: "unavailable",
						// Enough to get past two dead replicas to a live one (as Envoy's).
						NumRetries: wrapperspb.UInt32(2),
						// gRPC's defaults, written out: 25 ms, then up to 250 ms.
						RetryBackOff: &route.RetryPolicy_RetryBackOff{
							BaseInterval: durationpb.New(25 * time.Millisecond),
							MaxInterval:  durationpb.New(250 * time.Millisecond),
						},
					},
				}},
			}},
		}},
	}
}

// clientCluster is the Cluster `grpctest` for gRPC clients: endpoints over ADS (EDS),
// every call to the next healthy replica in turn (as Envoy balances), and outlier
// detection so that a replica failing most of a client's calls is set aside even
// while the control plane cannot be reached.
func clientCluster() *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 serviceName,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{
			EdsConfig:   &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}},
			ServiceName: serviceName,
		},
		LbPolicy: cluster.Cluster_ROUND_ROBIN,
		OutlierDetection: &cluster.OutlierDetection{
			// Judged every second, set aside for 5 s (doubling each time), like Envoy's.
			Interval:         durationpb.New(time.Second),
			BaseEjectionTime: durationpb.New(5 * time.Second),
			// A replica that failed at least half of at least 20 calls in the last
			// second; gRPC counts every status but OK as a failure, so a client's own
			// bad calls can only set replicas aside for that client.
			FailurePercentageThreshold:     wrapperspb.UInt32(50),
			EnforcingFailurePercentage:     wrapperspb.UInt32(100),
			FailurePercentageRequestVolume: wrapperspb.UInt32(20),
			FailurePercentageMinimumHosts:  wrapperspb.UInt32(2),
			// Never more than half of them: the rest keep serving.
			MaxEjectionPercent: wrapperspb.UInt32(50),
			// Success-rate ejection needs 5 busy hosts by default; off.
			EnforcingSuccessRate: wrapperspb.UInt32(0),
		},
	}
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}
