package main

import (
	"slices"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func slice(service string, family discoveryv1.AddressType, port int32, addresses ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: family,
		Ports:       []discoveryv1.EndpointPort{{Port: &port}},
	}
	ready := false
	for _, address := range addresses {
		// Conditions do not matter: the control plane checks every pod itself.
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{address}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return s
}

func TestEveryPodOfTheServicesSlicesIsAReplica(t *testing.T) {
	ports := map[string]int32{"py-server": 50051, "go-server": 50051}
	all := []any{
		slice("py-server", discoveryv1.AddressTypeIPv4, 50051, "10.0.0.2", "10.0.0.1"),
		slice("py-server", discoveryv1.AddressTypeIPv4, 50051, "10.0.0.3", "10.0.0.1"), // a pod in two slices while they are rebalanced
		slice("go-server", discoveryv1.AddressTypeIPv4, 50051, "10.0.1.1"),
		slice("go-server", discoveryv1.AddressTypeIPv6, 50051, "fd00::1"), // not IPv4
		slice("py-server", discoveryv1.AddressTypeIPv4, 9464, "10.0.0.9"), // another port's
		slice("other", discoveryv1.AddressTypeIPv4, 50051, "10.0.2.1"),    // another Service's
	}
	want := []discovered{
		{"10.0.0.1:50051", "py-server"}, {"10.0.0.2:50051", "py-server"},
		{"10.0.0.3:50051", "py-server"}, {"10.0.1.1:50051", "go-server"},
	}
	if got := sliceAddresses(all, ports); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
