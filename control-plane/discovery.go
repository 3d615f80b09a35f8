package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// discovered is one replica a source found: its address (IP:port) and the name it was
// found under (the DNS name, the Service, or the name --servers gave it; "" if none),
// which the data planes get as the endpoint's hostname (Envoy's admin shows it; the web
// page tells py-server's replicas from go-server's by it).
type discovered struct{ address, name string }

// A source finds the replicas: it sends every replica (sorted by address) on found,
// first as soon as it knows them, then each time they change, until ctx ends.
type source func(ctx context.Context, found chan<- []discovered) error

// newSource is the source --discovery names, for --replicas.
func newSource(kind string, replicas []hostPort, refresh time.Duration, namespace string) (source, error) {
	switch kind {
	case discoverList:
		return listSource(replicas)
	case discoverDNS:
		return dnsSource(replicas, refresh, net.DefaultResolver), nil
	case discoverKubernetes:
		return kubernetesSource(replicas, namespace)
	}
	return nil, fmt.Errorf("unknown discovery %q", kind)
}

// listSource is the replicas as given (the local run's): IP addresses, never re-read.
func listSource(replicas []hostPort) (source, error) {
	addresses := make([]discovered, 0, len(replicas))
	for _, r := range replicas {
		if net.ParseIP(r.host) == nil {
			return nil, fmt.Errorf("--discovery list takes IP addresses, got %q (use --discovery dns for names)", r.host)
		}
		addresses = append(addresses, discovered{r.String(), r.name})
	}
	sortByAddress(addresses)
	return func(ctx context.Context, found chan<- []discovered) error {
		send(ctx, found, addresses)
		<-ctx.Done()
		return nil
	}, nil
}

// dnsSource resolves each name every refresh (compose's and Swarm's service names: one
// IPv4 address per container or task); each address is one replica on the name's port.
// A name that does not resolve has no replicas; a lookup that fails otherwise (a DNS
// server that does not answer) keeps what the name resolved to last. The first report
// waits until every name has had an answer: a control plane starting beside a DNS
// server that is not ready yet must not publish too few replicas.
func dnsSource(replicas []hostPort, refresh time.Duration, resolver *net.Resolver) source {
	return func(ctx context.Context, found chan<- []discovered) error {
		last := map[hostPort][]discovered{}
		var sent []discovered
		for first := true; ctx.Err() == nil; sleep(ctx, refresh) {
			addresses, answered := resolveAll(ctx, resolver, replicas, last, refresh)
			if first && !answered {
				continue
			}
			if first || !slices.Equal(addresses, sent) {
				send(ctx, found, addresses)
				sent, first = addresses, false
			}
		}
		return nil
	}
}

// resolveAll resolves every name (last: what each resolved to before, updated);
// returns the addresses, sorted, and whether every lookup had an answer.
func resolveAll(ctx context.Context, resolver *net.Resolver, replicas []hostPort, last map[hostPort][]discovered, timeout time.Duration) ([]discovered, bool) {
	addresses, answered := []discovered{}, true
	for _, r := range replicas {
		var ok bool
		last[r], ok = resolve(ctx, resolver, r, last[r], timeout)
		answered = answered && ok
		addresses = append(addresses, last[r]...)
	}
	sortByAddress(addresses)
	return slices.Compact(addresses), answered
}

// resolve is the addresses of one name on its port (found under the name), and whether
// DNS answered; previous (and false) if the lookup failed other than with "no such host".
func resolve(ctx context.Context, resolver *net.Resolver, r hostPort, previous []discovered, timeout time.Duration) ([]discovered, bool) {
	ctx, cancel := context.WithTimeout(ctx, max(timeout, time.Second))
	defer cancel()
	ips, err := resolver.LookupIP(ctx, "ip4", r.host)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil, true
	}
	if err != nil {
		slog.Warn("cannot resolve; keeping its last addresses", "name", r.host, "error", err, "addresses", previous)
		return previous, false
	}
	addresses := make([]discovered, 0, len(ips))
	for _, ip := range ips {
		addresses = append(addresses, discovered{net.JoinHostPort(ip.String(), strconv.Itoa(r.port)), cmp.Or(r.name, r.host)})
	}
	return addresses, true
}

// sortByAddress sorts the replicas by address (then name), as the sources send them.
func sortByAddress(replicas []discovered) {
	slices.SortFunc(replicas, func(a, b discovered) int {
		return cmp.Or(strings.Compare(a.address, b.address), strings.Compare(a.name, b.name))
	})
}

func send(ctx context.Context, found chan<- []discovered, addresses []discovered) {
	select {
	case found <- addresses:
	case <-ctx.Done():
	}
}
