package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Settings are flags whose defaults come from GRPCTEST_* environment variables; an
// empty variable counts as unset. Booleans are read by strconv.ParseBool, and the
// Python programs follow the same rule (grpctest_common.settings).

func envOr(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

func envBool(name string, fallback bool) bool {
	v := envOr(name, "")
	if v == "" {
		return fallback
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		usagef("%s: want one of 0 1 F FALSE False T TRUE True f false t true, got %q", name, v)
	}
	return b
}

func envInt(name string, fallback int) int {
	v := envOr(name, "")
	if v == "" {
		return fallback
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		usagef("%s must be a whole number, got %q", name, v)
	}
	return n
}

// seconds is a flag value that takes plain seconds ("5", "0.5"), as the Python
// client does, or a Go duration ("500ms").
type seconds time.Duration

func (d *seconds) String() string { return time.Duration(*d).String() }

func (d *seconds) Set(v string) error {
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		*d = seconds(secs * float64(time.Second))
		return nil
	}
	parsed, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want seconds or a duration like 500ms, got %q", v)
	}
	*d = seconds(parsed)
	return nil
}

func secondsFlag(name, fallback, usage string) *time.Duration {
	var value seconds
	if err := value.Set(fallback); err != nil {
		usagef("environment fallback for -%s: %v", name, err)
	}
	flag.Var(&value, name, usage)
	return (*time.Duration)(&value)
}

// transportCredentials is plaintext unless TLS is asked for (a CA or a client
// certificate implies it). With a CA file only that CA is trusted, otherwise the
// system's trust store; with a certificate and key the client presents them (mutual TLS).
func transportCredentials(useTLS bool, caFile, certFile, keyFile string) (credentials.TransportCredentials, error) {
	if !useTLS && caFile == "" && certFile == "" {
		return insecure.NewCredentials(), nil
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("no certificate found in " + caFile)
		}
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}

// fatalf prints a one-line error (no timestamp: this is a CLI) and exits 1.
func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(1)
}

// usagef reports a bad setting and exits 2, as the flag package does for bad flags.
func usagef(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(2)
}
