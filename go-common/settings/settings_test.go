package settings

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// values is what the test table fills: one setting of every kind.
type values struct {
	target  string
	ca      string
	count   int
	ratio   float64
	timeout time.Duration
	tls     bool
	mode    string
	level   string
}

func table(v *values) Table {
	return Table{
		{Name: "target", Value: Text(&v.target), Default: "localhost:8080", Help: "host:port to call"},
		{Name: "ca", Value: Path(&v.ca), Help: "CA certificate"},
		{Name: "count", Value: Int(&v.count), Default: "1", Help: "calls"},
		{Name: "ratio", Value: Number(&v.ratio), Default: "0.5", Help: "a share"},
		{Name: "timeout", Value: Seconds(&v.timeout), Default: "5", Help: "deadline"},
		{Name: "tls", Value: Bool(&v.tls), Default: "false", Help: "connect with TLS"},
		{Name: "mode", Value: Choice(&v.mode, "unary", "server-stream", "chat"), Default: "unary", Help: "what to call"},
		{Name: "log-level", Value: ChoiceIgnoringCase(&v.level, "DEBUG", "INFO"), Default: "INFO", Help: "log level"},
	}
}

// parse parses args with the test table; every variable of the table unset unless env
// sets it.
func parse(t *testing.T, env map[string]string, args ...string) (values, error) {
	t.Helper()
	var v values
	for _, s := range table(&v) {
		t.Setenv(s.Env(), env[s.Env()])
	}
	return v, table(&v).Parse(args)
}

func TestDefaults(t *testing.T) {
	got, err := parse(t, nil)
	want := values{target: "localhost:8080", count: 1, ratio: 0.5, timeout: 5 * time.Second, mode: "unary", level: "INFO"}
	if err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

func TestGoodFlagsAndEnvironment(t *testing.T) {
	want := values{target: "envoy:8080", ca: "certs/ca.crt", count: 30, ratio: 1.5, timeout: 500 * time.Millisecond, tls: true, mode: "chat", level: "DEBUG"}
	got, err := parse(t, nil, "-target", "envoy:8080", "--ca=certs/ca.crt", "--count", "30", "-ratio", "1.5",
		"--timeout", "500ms", "--tls", "--mode", "chat", "--log-level", "debug")
	if err != nil || got != want {
		t.Errorf("flags: got %+v, %v; want %+v", got, err, want)
	}
	got, err = parse(t, map[string]string{
		"GRPCTEST_TARGET": "envoy:8080", "GRPCTEST_CA": "certs/ca.crt", "GRPCTEST_COUNT": "30", "GRPCTEST_RATIO": "1.5",
		"GRPCTEST_TIMEOUT": "500ms", "GRPCTEST_TLS": "true", "GRPCTEST_MODE": "chat", "GRPCTEST_LOG_LEVEL": "Debug",
	})
	if err != nil || got != want {
		t.Errorf("environment: got %+v, %v; want %+v", got, err, want)
	}
}

// A flag wins over its variable, even over a bad one (which is then never read), and
// an empty variable counts as unset.
func TestFlagThenEnvironmentThenDefault(t *testing.T) {
	got, err := parse(t, map[string]string{"GRPCTEST_COUNT": "abc", "GRPCTEST_TARGET": "from-env:1"}, "--count", "7")
	if err != nil || got.count != 7 || got.target != "from-env:1" {
		t.Errorf("got %+v, %v; want count 7 from the flag, target from the environment", got, err)
	}
	got, err = parse(t, map[string]string{"GRPCTEST_COUNT": ""})
	if err != nil || got.count != 1 {
		t.Errorf("empty variable: got %d, %v; want the default 1", got.count, err)
	}
}

func wantUsageError(t *testing.T, err error, message string) {
	t.Helper()
	var usage *UsageError
	if !errors.As(err, &usage) || usage.Message != message {
		t.Errorf("err = %v, want the usage error %q", err, message)
	}
}

// Every kind's message for a bad value, the same words as the Python programs'.
var badValues = []struct{ name, text, want string }{
	{"count", "abc", `a whole number, got "abc"`},
	{"count", "1.5", `a whole number, got "1.5"`},
	{"ratio", "half", `a number, got "half"`},
	{"timeout", "soon", `seconds (like 5, 0.5 or 500ms), got "soon"`},
	{"tls", "yes", `one of 0 1 F FALSE False T TRUE True f false t true, got "yes"`},
	{"mode", "Chat", `one of unary, server-stream, chat, got "Chat"`},
	{"log-level", "loud", `one of DEBUG, INFO, got "loud"`},
}

func TestBadFlagValue(t *testing.T) {
	for _, bad := range badValues {
		_, err := parse(t, nil, "--"+bad.name+"="+bad.text)
		wantUsageError(t, err, "--"+bad.name+": want "+bad.want)
	}
	_, err := parse(t, nil, "--count", "abc")
	wantUsageError(t, err, `--count: want a whole number, got "abc"`)
}

func TestBadEnvironmentValue(t *testing.T) {
	for _, bad := range badValues {
		env := Setting{Name: bad.name}.Env()
		_, err := parse(t, map[string]string{env: bad.text})
		wantUsageError(t, err, env+" (for --"+bad.name+"): want "+bad.want)
	}
	_, err := parse(t, map[string]string{"GRPCTEST_COUNT": "abc"})
	wantUsageError(t, err, `GRPCTEST_COUNT (for --count): want a whole number, got "abc"`)
}

func TestUnknownFlagAndStrayArguments(t *testing.T) {
	_, err := parse(t, nil, "--counts", "3")
	wantUsageError(t, err, "flag provided but not defined: -counts")
	_, err = parse(t, nil, "--count", "3", "extra", "--tls")
	wantUsageError(t, err, "unexpected arguments: extra --tls")
	_, err = parse(t, nil, "--help")
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: err = %v, want flag.ErrHelp", err)
	}
}

func TestSecondsWithAndWithoutUnit(t *testing.T) {
	for text, want := range map[string]time.Duration{
		"5": 5 * time.Second, "0.5": 500 * time.Millisecond, "0.25": 250 * time.Millisecond, "0": 0,
		"500ms": 500 * time.Millisecond, "750ms": 750 * time.Millisecond, "2s": 2 * time.Second,
		"1.5s": 1500 * time.Millisecond, "1m": time.Minute, "1h": time.Hour, "-1": -time.Second,
		"1m30s": 90 * time.Second, "1h30m": 90 * time.Minute, "-1s": -time.Second, ".5s": 500 * time.Millisecond,
	} {
		if got, ok := parseSeconds(text); !ok || got != want {
			t.Errorf("%q: got %v, %t; want %v", text, got, ok, want)
		}
	}
	for _, text := range []string{"soon", "", "ms", "5x", "5 s", "1s 30ms", "10us", "1m10us", "NaN", "Inf", "1e300h", "1e3s"} {
		if got, ok := parseSeconds(text); ok {
			t.Errorf("%q accepted as %v", text, got)
		}
	}
}

// The one boolean rule: strconv.ParseBool's spellings, the same list the Python
// programs accept (py-common/tests/test_settings.py).
func TestBoolSpellings(t *testing.T) {
	for text, want := range map[string]bool{
		"1": true, "t": true, "T": true, "TRUE": true, "true": true, "True": true,
		"0": false, "f": false, "F": false, "FALSE": false, "false": false, "False": false,
	} {
		got, err := parse(t, map[string]string{"GRPCTEST_TLS": text})
		if err != nil || got.tls != want {
			t.Errorf("GRPCTEST_TLS=%s: got %t, %v; want %t", text, got.tls, err, want)
		}
	}
	for _, text := range []string{"yes", "on", "no", "off", "tRuE", " 1", "2"} {
		if _, err := parse(t, map[string]string{"GRPCTEST_TLS": text}); err == nil {
			t.Errorf("GRPCTEST_TLS=%q accepted", text)
		}
	}
	got, err := parse(t, map[string]string{"GRPCTEST_TLS": "true"}, "--tls=false")
	if err != nil || got.tls {
		t.Errorf("--tls=false over GRPCTEST_TLS=true: got %t, %v", got.tls, err)
	}
	var reflection bool
	t.Setenv("GRPCTEST_REFLECTION", "")
	err = Table{{Name: "reflection", Value: Bool(&reflection), Default: "true"}}.Parse(nil)
	if err != nil || !reflection {
		t.Errorf("empty variable: got %t, %v; want the default true", reflection, err)
	}
}

func TestHelpListsEnvironmentVariableAndDefault(t *testing.T) {
	var v values
	var out bytes.Buffer
	table(&v).Usage(&out)
	for _, want := range []string{
		"  --target text\n    \thost:port to call (env GRPCTEST_TARGET, default \"localhost:8080\")\n",
		"  --ca path\n    \tCA certificate (env GRPCTEST_CA, no default)\n",
		"  --count whole number\n    \tcalls (env GRPCTEST_COUNT, default 1)\n",
		"  --timeout seconds\n    \tdeadline (env GRPCTEST_TIMEOUT, default 5)\n",
		"  --tls\n    \tconnect with TLS (env GRPCTEST_TLS, default false)\n",
		"  --mode unary|server-stream|chat\n    \twhat to call (env GRPCTEST_MODE, default \"unary\")\n",
		"  --log-level DEBUG|INFO\n    \tlog level (env GRPCTEST_LOG_LEVEL, default \"INFO\")\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage %q does not contain %q", out.String(), want)
		}
	}
}

func TestBadDefaultIsAProgrammingError(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a default of the wrong kind did not panic")
		}
	}()
	var n int
	_ = Table{{Name: "count", Value: Int(&n), Default: "one"}}.Parse(nil)
}

// ParseOrExit, as a program calls it: a bad value prints "error: MESSAGE" and the usage
// on stderr and exits 2; --help prints the usage and exits 0. (The test runs itself as
// the program.)
func TestParseOrExit(t *testing.T) {
	if args := os.Getenv("SETTINGS_TEST_ARGS"); args != "" {
		var v values
		os.Args = append([]string{"prog"}, strings.Fields(args)...)
		table(&v).ParseOrExit()
		os.Exit(3) // (parsed: not what the cases below expect)
	}
	for _, tc := range []struct {
		args   string
		code   int
		stderr string
	}{
		{"--count abc", 2, "error: --count: want a whole number, got \"abc\"\nUsage of prog "},
		{"--help", 0, "Usage of prog (each flag falls back to its environment variable):\n  --target text\n"},
		{"--count 3", 3, ""},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestParseOrExit$")
		cmd.Env = append(os.Environ(), "SETTINGS_TEST_ARGS="+tc.args, "GRPCTEST_COUNT=")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != tc.code || !strings.HasPrefix(stderr.String(), tc.stderr) {
			t.Errorf("%s: exit %d (%v), stderr %q; want exit %d, stderr starting %q", tc.args, code, err, stderr.String(), tc.code, tc.stderr)
		}
	}
}
