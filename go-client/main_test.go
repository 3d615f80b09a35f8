package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "grpctest/go-client/grpctestpb"
)

// startPythonServer runs the real py-server on a free loopback port and returns a
// client connected to it. The interpreter is $GRPCTEST_PYTHON (make test sets it)
// or the repository's .venv; without one the test fails, it does not skip.
func startPythonServer(t *testing.T) pb.GrpctestClient {
	t.Helper()
	python := os.Getenv("GRPCTEST_PYTHON")
	if python == "" {
		python = filepath.Join("..", ".venv", "bin", "python")
	}
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("no Python for the real server (%v): run `make test`, or set GRPCTEST_PYTHON", err)
	}
	port := freePort(t)
	cmd := exec.Command(python, filepath.Join("..", "py-server", "server.py"),
		"--port", port, "--replica", "go-test-replica", "--drain-seconds", "0")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join("..", "proto", "python"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("failed to get server stderr: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start server: %v", err)
	}
	// The server logs "serving" once it listens; echo its log into the test output.
	ready, drained := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		<-drained // all of the log read before Wait closes the pipe
		_ = cmd.Wait()
	})
	go func() {
		defer close(drained)
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			t.Log(scanner.Text())
			if strings.Contains(scanner.Text(), "serving grpctest.Grpctest") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30 s")
	}

	conn, err := grpc.NewClient("127.0.0.1:"+port, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("failed to create client: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewGrpctestClient(conn)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to find a free port: %v", err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func TestRunAgainstRealServer(t *testing.T) {
	client := startPythonServer(t)

	var out bytes.Buffer
	perReplica, err := run(context.Background(), client, "from go", 3, 5*time.Second, &out)
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
		_, err := run(context.Background(), client, "", 1, 5*time.Second, &bytes.Buffer{})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("err = %v, want InvalidArgument", err)
		}
		if got := codeName(status.Code(err)); got != "INVALID_ARGUMENT" {
			t.Errorf("codeName = %q, want INVALID_ARGUMENT", got)
		}
	})
}

func TestPrintSummary(t *testing.T) {
	var out bytes.Buffer
	printSummary(&out, "envoy:8080", map[string]int{"b": 2, "a": 1})
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
