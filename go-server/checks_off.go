//go:build unchecked

package main

// checkRequests is off in the benchmark's build only (see checks_on.go): it answers
// requests that break the contract's rules.
const checkRequests = false
