package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	discoveryclient "k8s.io/client-go/kubernetes/typed/discovery/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// serviceAccountNamespace is where Kubernetes tells a pod its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// kubernetesSource watches the EndpointSlices of each Service named in replicas (its
// name, and the port its slices list for the replicas) in namespace (by default the
// pod's own), with client-go's informer: it needs get, list and watch on endpointslices
// there, nothing else. Every address of every endpoint is a replica, whatever its
// conditions say: a starting or terminating pod is there until it is gone, and the
// control plane's own checks decide whether it is healthy (a draining pod reports
// NOT_SERVING and leaves at once, without waiting for the kubelet's probe).
func kubernetesSource(replicas []hostPort, namespace string) (source, error) {
	config, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	// Only the discovery.k8s.io client, not the whole clientset (a much smaller binary).
	client, err := discoveryclient.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	if namespace == "" {
		text, err := os.ReadFile(serviceAccountNamespace)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: no --namespace and none of its own: %w", err)
		}
		namespace = strings.TrimSpace(string(text))
	}
	ports := map[string]int32{}
	for _, r := range replicas {
		ports[r.host] = int32(r.port)
	}
	return func(ctx context.Context, found chan<- []discovered) error {
		return watchSlices(ctx, client, namespace, ports, found)
	}, nil
}

// watchSlices sends the replicas' addresses once the informer has listed the slices,
// then after every change to them, until ctx ends.
func watchSlices(ctx context.Context, client discoveryclient.DiscoveryV1Interface, namespace string, ports map[string]int32, found chan<- []discovered) error {
	selector := fmt.Sprintf("%s in (%s)", discoveryv1.LabelServiceName, strings.Join(sortedKeys(ports), ","))
	watched := cache.NewFilteredListWatchFromClient(client.RESTClient(), "endpointslices", namespace,
		func(o *metav1.ListOptions) { o.LabelSelector = selector })
	informer := cache.NewSharedInformer(watched, &discoveryv1.EndpointSlice{}, 0)
	changed := make(chan struct{}, 1)
	notify := func(any) {
		select {
		case changed <- struct{}{}:
		default: // a change is already pending: the next read sees this one too
		}
	}
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: notify, UpdateFunc: func(_, o any) { notify(o) }, DeleteFunc: notify,
	})
	if err != nil {
		return err
	}
	go informer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return errors.New("the EndpointSlices were never listed")
	}
	var sent []discovered
	for first := true; ; first = false {
		if addresses := sliceAddresses(informer.GetStore().List(), ports); first || !slices.Equal(addresses, sent) {
			send(ctx, found, addresses)
			sent = addresses
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// sliceAddresses is every IPv4 address in the slices of the Services in ports, on the
// Service's port (a slice that does not list that port is someone else's), found under
// the Service's name, sorted.
func sliceAddresses(all []any, ports map[string]int32) []discovered {
	addresses := []discovered{}
	for _, item := range all {
		slice, ok := item.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		service := slice.Labels[discoveryv1.LabelServiceName]
		port, ok := ports[service]
		listed := slices.ContainsFunc(slice.Ports, func(p discoveryv1.EndpointPort) bool {
			return p.Port != nil && *p.Port == port
		})
		if !ok || !listed || slice.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, e := range slice.Endpoints {
			for _, ip := range e.Addresses {
				addresses = append(addresses, discovered{net.JoinHostPort(ip, strconv.Itoa(int(port))), service})
			}
		}
	}
	sortByAddress(addresses)
	return slices.Compact(addresses)
}
