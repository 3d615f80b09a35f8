package main

import (
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"grpctest/go-common/program"
	"grpctest/go-common/settings"
)

// The control plane's settings, filled from controlPlaneSettings by main.
var (
	host, discoveryKind, serversText, namespace, healthService string
	tlsCA, tlsServerName, logLevel                             string
	port, metricsPort, checkFailures                           int
	dnsRefresh, checkInterval, checkTimeout                    time.Duration
)

// The ways to find the replicas (--discovery).
const (
	discoverList       = "list"
	discoverDNS        = "dns"
	discoverKubernetes = "kubernetes"
)

// controlPlaneSettings is every setting of the control plane, one row each: the flag
// -name (or --name), its fallback GRPCTEST_NAME, its kind and default
// (go-common/settings). The defaults are the local run's: 3 py-server and 1 go-server
// replicas on 127.0.0.1:50051..50054.
var controlPlaneSettings = settings.Table{
	{Name: "host", Value: settings.Text(&host), Default: "127.0.0.1", Help: "address to listen on; 0.0.0.0 in containers"},
	{Name: "port", Value: settings.Int(&port), Default: "18000", Help: "port of ADS (xDS) and of the control plane's own Health service"},
	{Name: "metrics-port", Value: settings.Int(&metricsPort), Default: "0", Help: "serve Prometheus metrics at /metrics on this port; 0: none"},
	{Name: "discovery", Value: settings.Choice(&discoveryKind, discoverList, discoverDNS, discoverKubernetes), Default: discoverList,
		Help: "how --servers are found: list (the addresses as given), dns (each name resolved every --dns-refresh, one replica per address), kubernetes (the EndpointSlices of each Service, watched)"},
	{Name: "servers", Value: settings.Text(&serversText), Default: "127.0.0.1:50051,127.0.0.1:50052,127.0.0.1:50053,127.0.0.1:50054",
		Help: "comma-separated [NAME=]HOST:PORT: IP addresses (list), DNS names (dns), or Service names and the port their EndpointSlices list (kubernetes); NAME is the replicas' hostname to the data planes (by default: dns the DNS name, list none; kubernetes always the Service's name)"},
	{Name: "dns-refresh", Value: settings.Seconds(&dnsRefresh), Default: "1s", Help: "dns: how often the names are resolved again"},
	{Name: "namespace", Value: settings.Text(&namespace), Help: "kubernetes: the namespace whose EndpointSlices are watched; by default the pod's own"},
	{Name: "health-service", Value: settings.Text(&healthService), Default: "grpctest.Grpctest", Help: "the service name each replica's gRPC health is checked for"},
	{Name: "check-interval", Value: settings.Seconds(&checkInterval), Default: "0.5s", Help: "how often each replica is asked Health/Check besides its Watch stream (catches a frozen replica)"},
	{Name: "check-timeout", Value: settings.Seconds(&checkTimeout), Default: "1s", Help: "a check not answered within this counts as failed"},
	{Name: "check-failures", Value: settings.Int(&checkFailures), Default: "2", Help: "failed checks in a row that make a replica unhealthy (a late answer under load is not a frozen replica)"},
	{Name: "tls-ca", Value: settings.Path(&tlsCA), Help: "check the replicas over TLS, trusting this CA (PEM); without it, plaintext"},
	{Name: "tls-server-name", Value: settings.Text(&tlsServerName), Help: "with --tls-ca: the name the replicas' certificates carry; by default the replica's host"},
	program.LogLevel(&logLevel),
}

// parseSettings reads the settings and rejects those the control plane cannot run with.
func parseSettings() {
	controlPlaneSettings.ParseOrExit()
	switch {
	case port < 0 || port > 65535:
		controlPlaneSettings.Usagef("-port must be between 0 (any free port) and 65535, got %d", port)
	case metricsPort < 0 || metricsPort > 65535:
		controlPlaneSettings.Usagef("-metrics-port must be between 0 (none) and 65535, got %d", metricsPort)
	case dnsRefresh <= 0 || checkInterval <= 0 || checkTimeout <= 0:
		controlPlaneSettings.Usagef("-dns-refresh, -check-interval and -check-timeout must be positive")
	case checkFailures < 1:
		controlPlaneSettings.Usagef("-check-failures must be at least 1, got %d", checkFailures)
	}
	if _, err := parseServers(serversText); err != nil {
		controlPlaneSettings.Usagef("-servers: %s", err)
	}
	if _, err := os.Stat(tlsCA); tlsCA != "" && err != nil {
		controlPlaneSettings.Usagef("%s: no such file", tlsCA)
	}
}

// hostPort is one entry of --servers: an address, a DNS name or a Service, and a port;
// name is the entry's NAME= if it has one: what the replicas found there are called
// (their endpoints' hostname; by default dns uses the DNS name, list none, and
// kubernetes always the Service's name).
type hostPort struct {
	host string
	port int
	name string
}

func (h hostPort) String() string { return net.JoinHostPort(h.host, strconv.Itoa(h.port)) }

// parseServers reads --servers: HOST:PORT, comma-separated, at least one.
func parseServers(text string) ([]hostPort, error) {
	var replicas []hostPort
	for item := range strings.SplitSeq(text, ",") {
		name, address, named := strings.Cut(strings.TrimSpace(item), "=")
		if !named {
			address = name
		}
		host, portText, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		port, err := strconv.Atoi(portText)
		if err != nil || port < 1 || port > 65535 || host == "" {
			return nil, &net.AddrError{Err: "want HOST:PORT with a port in 1..65535", Addr: item}
		}
		if !named {
			name = ""
		}
		replicas = append(replicas, hostPort{host, port, name})
	}
	return replicas, nil
}
