package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "grpctest/proto/go"
)

// startPythonServer runs the real py-server (the grpctest-server command of the
// repository's .venv, or $GRPCTEST_SERVER) on a free loopback port, waits until its
// health service says SERVING, and returns a client connected to it. Without the
// server the test fails, it does not skip: run `make setup` first.
func startPythonServer(t *testing.T) pb.GrpctestClient {
	t.Helper()
	server := envOr("GRPCTEST_SERVER", filepath.Join("..", ".venv", "bin", "grpctest-server"))
	if _, err := os.Stat(server); err != nil {
		t.Fatalf("no grpctest-server (%v): run `make setup`, or set GRPCTEST_SERVER", err)
	}
	port := freePort(t)
	cmd := exec.Command(server, "--port", port, "--replica", "go-test-replica", "--drain-seconds", "0")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start %s: %v", server, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		t.Logf("server log:\n%s", logs.String())
	})

	conn, err := grpc.NewClient("127.0.0.1:"+port, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("failed to create client: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	waitServing(t, healthpb.NewHealthClient(conn), 30*time.Second)
	return pb.NewGrpctestClient(conn)
}

// waitServing polls grpc.health.v1.Health/Check for grpctest.Grpctest until SERVING.
func waitServing(t *testing.T, health healthpb.HealthClient, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		reply, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "grpctest.Grpctest"})
		cancel()
		if err == nil && reply.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not SERVING within %v (last: %v, %v)", limit, reply.GetStatus(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to find a free port: %v", err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func TestRunAgainstRealServer(t *testing.T) {
	client := startPythonServer(t)

	var out bytes.Buffer
	perReplica, err := run(context.Background(), client, plan{mode: "unary", message: "from go", count: 3, timeout: 5 * time.Second}, &out)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := perReplica["go-test-replica"]; got != 3 || len(perReplica) != 1 {
		t.Errorf("perReplica = %v, want 3 calls on go-test-replica", perReplica)
	}
	want := `[3/3] go-test-replica: Hello I am up and running received "from go" message from you (received=true)`
	if !strings.Contains(out.String(), want) {
		t.Errorf("output %q does not contain %q", out.String(), want)
	}

	t.Run("empty message is INVALID_ARGUMENT", func(t *testing.T) {
		_, err := run(context.Background(), client, plan{mode: "unary", message: "", count: 1, timeout: 5 * time.Second}, &bytes.Buffer{})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("err = %v, want InvalidArgument", err)
		}
		if got := codeName(status.Code(err)); got != "INVALID_ARGUMENT" {
			t.Errorf("codeName = %q, want INVALID_ARGUMENT", got)
		}
	})

	// Table-driven, as grpc-go's examples test: every mode against the real server.
	for _, tc := range []struct {
		name    string
		plan    plan
		replies int
		code    codes.Code
	}{
		{"server stream", plan{mode: "server-stream", message: "s", count: 1000, timeout: 10 * time.Second}, 1000, codes.OK},
		{"paced server stream", plan{mode: "server-stream", message: "s", count: 3, interval: 50 * time.Millisecond, timeout: 5 * time.Second}, 3, codes.OK},
		{"chat", plan{mode: "chat", message: "c", count: 5, interval: 10 * time.Millisecond, timeout: 5 * time.Second}, 5, codes.OK},
		{"stream of too many replies", plan{mode: "server-stream", message: "s", count: 100_001, timeout: 5 * time.Second}, 0, codes.InvalidArgument},
		{"stream past its deadline", plan{mode: "server-stream", message: "s", count: 100, interval: 100 * time.Millisecond, timeout: 300 * time.Millisecond}, -1, codes.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			perReplica, err := run(context.Background(), client, tc.plan, &out)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("status = %v (%v), want %v", got, err, tc.code)
			}
			if tc.replies >= 0 && perReplica["go-test-replica"] != tc.replies {
				t.Errorf("replies = %v, want %d", perReplica, tc.replies)
			}
			if tc.replies > 0 {
				last := fmt.Sprintf("[%d/%d] go-test-replica: ", tc.replies, tc.plan.count)
				if !strings.Contains(out.String(), last) {
					t.Errorf("output does not end with reply %q", last)
				}
			}
		})
	}
}

func TestJSONOutput(t *testing.T) {
	var out bytes.Buffer
	client := startPythonServer(t)
	perReplica, err := run(context.Background(), client, plan{mode: "server-stream", message: "j", count: 2, timeout: 5 * time.Second, json: true}, &out)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	printJSONSummary(&out, "envoy:8080", perReplica)
	want := `{"n":2,"replica":"go-test-replica","message":"Hello I am up and running received \"j\" message from you","received":true,"sequence":2}` + "\n" +
		`{"summary":{"replies":2,"target":"envoy:8080","per_replica":{"go-test-replica":2}}}` + "\n"
	if !strings.HasSuffix(out.String(), want) {
		t.Errorf("output %q does not end with %q", out.String(), want)
	}
}

func TestPrintSummary(t *testing.T) {
	var out bytes.Buffer
	printSummary(&out, "envoy:8080", map[string]int{"b": 2, "a": 1}, "calls")
	want := "summary: 3 calls through envoy:8080, 2 replicas answered\n  a: 1 calls\n  b: 2 calls\n"
	if out.String() != want {
		t.Errorf("summary = %q, want %q", out.String(), want)
	}
}

func TestSecondsFlag(t *testing.T) {
	for in, want := range map[string]time.Duration{"5": 5 * time.Second, "0.25": 250 * time.Millisecond, "750ms": 750 * time.Millisecond} {
		var s seconds
		if err := s.Set(in); err != nil || time.Duration(s) != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, time.Duration(s), err, want)
		}
	}
	var s seconds
	if err := s.Set("soon"); err == nil {
		t.Error(`Set("soon") succeeded, want an error`)
	}
}

func TestCodeName(t *testing.T) {
	for code, want := range map[codes.Code]string{codes.OK: "OK", codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.Unavailable: "UNAVAILABLE"} {
		if got := codeName(code); got != want {
			t.Errorf("codeName(%v) = %q, want %q", code, got, want)
		}
	}
}

// TestEnvBool pins the one boolean rule: strconv.ParseBool's spellings, and the same
// list the Python programs accept (py-common/tests/test_settings.py).
func TestEnvBool(t *testing.T) {
	for _, v := range []string{"1", "t", "T", "TRUE", "true", "True"} {
		t.Setenv("GRPCTEST_X", v)
		if !envBool("GRPCTEST_X", false) {
			t.Errorf("envBool(%q) = false, want true", v)
		}
	}
	for _, v := range []string{"0", "f", "F", "FALSE", "false", "False"} {
		t.Setenv("GRPCTEST_X", v)
		if envBool("GRPCTEST_X", true) {
			t.Errorf("envBool(%q) = true, want false", v)
		}
	}
	t.Setenv("GRPCTEST_X", "")
	if !envBool("GRPCTEST_X", true) {
		t.Error("empty variable: want the fallback")
	}
}

// TestEnvBoolRejectsOtherSpellings runs the client with GRPCTEST_TLS=yes: a usage error
// (exit 2) naming the variable, not a silent false.
func TestEnvBoolRejectsOtherSpellings(t *testing.T) {
	if os.Getenv("GO_CLIENT_AS_CLI") == "1" {
		main()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=TestEnvBoolRejectsOtherSpellings")
	cmd.Env = append(os.Environ(), "GO_CLIENT_AS_CLI=1", "GRPCTEST_TLS=yes")
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 {
		t.Fatalf("err = %v, want exit status 2; output %q", err, out)
	}
	if !strings.Contains(string(out), "GRPCTEST_TLS: want one of") {
		t.Errorf("output %q does not name the variable and the rule", out)
	}
}
