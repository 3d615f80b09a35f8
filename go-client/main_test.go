package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Unary calls against the in-process server (tests/ runs the client against the real
// servers, through Envoy).
func TestRunUnary(t *testing.T) {
	client := startTestServer(t)

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

	t.Run("a broken rule is INVALID_ARGUMENT with its violations", func(t *testing.T) {
		_, err := run(context.Background(), client, plan{mode: "unary", message: refusedMessage, count: 1, timeout: 5 * time.Second}, &bytes.Buffer{})
		want := "INVALID_ARGUMENT: count: must be greater than or equal to 1 and less than or equal to 100000 [uint32.gte_lte]; " +
			"resume_after must be less than count [resume_after_below_count]"
		if got := failureOf(err).String(); got != want {
			t.Errorf("failure = %q, want %q", got, want)
		}
		var out bytes.Buffer
		printJSONFailure(&out, failureOf(err))
		wantJSON := `{"error":{"code":"INVALID_ARGUMENT","message":"count: must be greater than or equal to 1 and less than or equal to 100000; resume_after must be less than count",` +
			`"field_violations":[{"field":"count","reason":"uint32.gte_lte","description":"must be greater than or equal to 1 and less than or equal to 100000"},` +
			`{"field":"","reason":"resume_after_below_count","description":"resume_after must be less than count"}]}}` + "\n"
		if out.String() != wantJSON {
			t.Errorf("json = %s, want %s", out.String(), wantJSON)
		}
	})
}

// Any other failure reads as its status: the code's name and the message.
func TestFailureWithoutViolations(t *testing.T) {
	f := failureOf(status.Error(codes.Unavailable, "no healthy upstream"))
	if f.String() != "UNAVAILABLE: no healthy upstream" || len(f.FieldViolations) != 0 || f.FieldViolations == nil {
		t.Errorf("failure = %q %#v", f, f.FieldViolations)
	}
}

// Table-driven, as grpc-go's examples test: every mode.
func TestRunEveryMode(t *testing.T) {
	client := startTestServer(t)
	for _, tc := range []struct {
		name    string
		plan    plan
		replies int
		code    codes.Code
	}{
		{"server stream", plan{mode: "server-stream", message: "s", count: 1000, timeout: 10 * time.Second}, 1000, codes.OK},
		{"paced server stream", plan{mode: "server-stream", message: "s", count: 3, interval: 50 * time.Millisecond, timeout: 5 * time.Second}, 3, codes.OK},
		{"chat", plan{mode: "chat", message: "c", count: 5, interval: 10 * time.Millisecond, timeout: 5 * time.Second}, 5, codes.OK},
		{"refused stream", plan{mode: "server-stream", message: refusedMessage, count: 5, timeout: 5 * time.Second}, 0, codes.InvalidArgument},
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
	client := startTestServer(t)
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

// A resume is one line on stderr: text, or with -output json an object (the Python
// client's bytes).
func TestPrintResumed(t *testing.T) {
	for asJSON, want := range map[bool]string{
		false: "resumed after 558 on replica-3\n",
		true:  `{"resumed":{"after":558,"replica":"replica-3"}}` + "\n",
	} {
		var out bytes.Buffer
		printResumed(&out, asJSON)(558, "replica-3")
		if out.String() != want {
			t.Errorf("json %t: %q, want %q", asJSON, out.String(), want)
		}
	}
}

func TestCodeName(t *testing.T) {
	for code, want := range map[codes.Code]string{codes.OK: "OK", codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.Unavailable: "UNAVAILABLE"} {
		if got := codeName(code); got != want {
			t.Errorf("codeName(%v) = %q, want %q", code, got, want)
		}
	}
}

// TestEnvBoolRejectsOtherSpellings runs the client with GRPCTEST_TLS=yes: a usage error
// (exit 2) naming the variable, the flag and the rule, not a silent false. (The test runs
// itself as the client.)
func TestEnvBoolRejectsOtherSpellings(t *testing.T) {
	if os.Getenv("GO_CLIENT_AS_CLI") == "1" {
		os.Args = os.Args[:1] // (the test binary's own flags are not the client's)
		main()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=TestEnvBoolRejectsOtherSpellings")
	cmd.Env = append(os.Environ(), "GO_CLIENT_AS_CLI=1", "GRPCTEST_TLS=yes")
	out, err := cmd.CombinedOutput()
	if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("err = %v, want exit status 2; output %q", err, out)
	}
	want := `error: GRPCTEST_TLS (for --tls): want one of 0 1 F FALSE False T TRUE True f false t true, got "yes"` + "\n"
	if !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), "--tls\n") {
		t.Errorf("output %q does not start with %q and the usage", out, want)
	}
}

// clearSettings unsets every variable of the client's table for the test.
func clearSettings(t *testing.T) {
	for _, s := range clientSettings {
		t.Setenv(s.Env(), "")
	}
}

// The client's table: its defaults, flags, variables, a bad flag and a bad variable.
func TestClientSettings(t *testing.T) {
	clearSettings(t)
	if err := clientSettings.Parse(nil); err != nil || target != "localhost:8080" || message != defaultMessage ||
		mode != "unary" || count != 1 || interval != 0 || timeout != 5*time.Second || resumes != 5 || useTLS || output != "text" {
		t.Fatalf("defaults: %v, %q %q %q %d %v %v %d %t %q", err, target, message, mode, count, interval, timeout, resumes, useTLS, output)
	}
	t.Setenv("GRPCTEST_COUNT", "30")
	t.Setenv("GRPCTEST_TIMEOUT", "0.5")
	err := clientSettings.Parse([]string{"--mode", "chat", "-interval", "10ms", "--tls", "--output=json"})
	if err != nil || count != 30 || timeout != 500*time.Millisecond || mode != "chat" || interval != 10*time.Millisecond || !useTLS || output != "json" {
		t.Fatalf("set: %v, %d %v %q %v %t %q", err, count, timeout, mode, interval, useTLS, output)
	}
	for args, want := range map[string]string{
		"--count abc":      `--count: want a whole number, got "abc"`,
		"--mode stream":    `--mode: want one of unary, server-stream, chat, got "stream"`,
		"--output yaml":    `--output: want one of text, json, got "yaml"`,
		"--timeout 5 more": `unexpected arguments: more`,
	} {
		if err := clientSettings.Parse(strings.Fields(args)); err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %q", args, err, want)
		}
	}
	t.Setenv("GRPCTEST_RESUME_ATTEMPTS", "many")
	if err := clientSettings.Parse(nil); err == nil || err.Error() != `GRPCTEST_RESUME_ATTEMPTS (for --resume-attempts): want a whole number, got "many"` {
		t.Errorf("bad variable: err = %v", err)
	}
}

func TestClientHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	clientSettings.Usage(&out)
	for _, want := range []string{
		"  --target text\n    \twhere to call: host:port (through Envoy), xds:///grpctest (proxyless), dns:///host:port or ipv4:ADDR,ADDR (balanced by the client); docs/load-balancing.md (env GRPCTEST_TARGET, default \"localhost:8080\")\n",
		"  --timeout seconds\n    \tdeadline of each call, or of the whole stream, in seconds (env GRPCTEST_TIMEOUT, default 5)\n",
		"(env GRPCTEST_TOKEN, no default)", "(env GRPCTEST_RESUME_ATTEMPTS, default 5)", "(env GRPCTEST_MODE, default \"unary\")",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage %q does not contain %q", out.String(), want)
		}
	}
}
