package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
)

// Settings are flags whose defaults come from GRPCTEST_* environment variables, the
// same names py-server reads; an empty variable counts as unset. Booleans are read by
// strconv.ParseBool, as every program of the project does (grpctest_common.settings).

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

func envNumber[T int | float64](name string, fallback T, parse func(string) (T, error)) T {
	v := envOr(name, "")
	if v == "" {
		return fallback
	}
	n, err := parse(v)
	if err != nil {
		usagef("%s must be a number, got %q", name, v)
	}
	return n
}

func envInt(name string, fallback int) int {
	return envNumber(name, fallback, strconv.Atoi)
}

func envFloat(name string, fallback float64) float64 {
	return envNumber(name, fallback, func(v string) (float64, error) { return strconv.ParseFloat(v, 64) })
}

// usagef reports a bad setting and exits 2, as the flag package does for bad flags.
func usagef(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	flag.Usage()
	os.Exit(2)
}

// checkSettings rejects settings no server can run with, as py-server does.
func checkSettings() {
	switch {
	case *port < 0 || *port > 65535:
		usagef("-port must be between 0 (any free port) and 65535, got %d", *port)
	case *maxMessageBytes <= 0:
		usagef("-max-message-bytes must be positive")
	case *drainSeconds < 0 || *graceSeconds < 0:
		usagef("-drain-seconds and -grace-seconds must not be negative")
	case *metricsPort < 0 || *metricsPort > 65535:
		usagef("-metrics-port must be between 0 (none) and 65535, got %d", *metricsPort)
	case (*tlsCert == "") != (*tlsKey == ""):
		usagef("-tls-cert and -tls-key go together")
	}
	for _, file := range []string{*tlsCert, *tlsKey} {
		if _, err := os.Stat(file); file != "" && err != nil {
			usagef("%s: no such file", file)
		}
	}
	if _, ok := levelNamed(*logLevel); !ok {
		usagef("-log-level: want one of DEBUG, INFO, WARNING, ERROR, got %q", *logLevel)
	}
}
