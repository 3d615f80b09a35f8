//go:build !unchecked

package main

// checkRequests: the check of every request (requestCheck, validation.go) is on. Only
// the benchmark's own build leaves it out (-tags unchecked: bin/go-server-unchecked,
// `make bench`), to measure what it costs per call against the real server.
const checkRequests = true
