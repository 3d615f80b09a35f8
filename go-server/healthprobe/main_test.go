package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// parseProbe parses args with every variable of the table unset but those in env.
func parseProbe(t *testing.T, env map[string]string, args ...string) error {
	t.Helper()
	for _, s := range probeSettings {
		t.Setenv(s.Env(), env[s.Env()])
	}
	return probeSettings.Parse(args)
}

// The target is the local server on GRPCTEST_PORT (the image sets it) unless given.
func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, "127.0.0.1:50051"},
		{map[string]string{"GRPCTEST_PORT": "50099"}, nil, "127.0.0.1:50099"},
		{map[string]string{"GRPCTEST_PORT": "50099"}, []string{"-target", "10.0.0.1:7"}, "10.0.0.1:7"},
	} {
		if err := parseProbe(t, tc.env, tc.args...); err != nil || probeTarget() != tc.want {
			t.Errorf("%v %v: target %q, %v; want %q", tc.env, tc.args, probeTarget(), err, tc.want)
		}
	}
	if err := parseProbe(t, nil, "-timeout", "500ms", "-service", ""); err != nil || timeout != 500*time.Millisecond || service != "" {
		t.Errorf("got %v %q, %v", timeout, service, err)
	}
	err := parseProbe(t, map[string]string{"GRPCTEST_PORT": "http"})
	if want := `GRPCTEST_PORT (for --port): want a whole number, got "http"`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// check reports the server's answer for the service, and UNAVAILABLE with no server.
func TestCheck(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server, status := grpc.NewServer(), health.NewServer()
	healthpb.RegisterHealthServer(server, status)
	status.SetServingStatus("grpctest.Grpctest", healthpb.HealthCheckResponse_NOT_SERVING)
	go func() { _ = server.Serve(listener) }()
	defer server.Stop()
	for name, want := range map[string]string{"": "SERVING", "grpctest.Grpctest": "NOT_SERVING", "no.such.Service": "NotFound"} {
		if err := parseProbe(t, nil, "-target", listener.Addr().String(), "-service", name); err != nil {
			t.Fatal(err)
		}
		if answer, err := check(); err != nil || answer != want {
			t.Errorf("%q: %q, %v; want %q", name, answer, err, want)
		}
	}
	server.Stop()
	if answer, err := check(); err != nil || !strings.EqualFold(answer, "Unavailable") {
		t.Errorf("no server: %q, %v; want Unavailable", answer, err)
	}
}
