package main

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		progress bool
		want     bool
	}{
		{"a replica shutting down", status.Error(codes.Unavailable, "shutting down"), false, true},
		{"Envoy's reset mid-stream", status.Error(codes.Internal, "RST_STREAM"), true, true},
		{"INTERNAL before any reply", status.Error(codes.Internal, "bug"), false, false},
		{"deadline", status.Error(codes.DeadlineExceeded, ""), true, false},
		{"a bad request", status.Error(codes.InvalidArgument, ""), false, false},
		{"a gap in the sequence", status.Error(codes.DataLoss, ""), true, false},
		{"not a status", errors.New("x"), true, false},
	} {
		if got := retryable(tc.err, tc.progress); got != tc.want {
			t.Errorf("%s: retryable = %t, want %t", tc.name, got, tc.want)
		}
	}
}

// A broken chat's messages without a reply are sent again by the next chat, and the
// broken chat's sender takes no new message once the next chat has started.
func TestOutboxSendsUnansweredMessagesAgain(t *testing.T) {
	box := &outbox{p: plan{message: "m", count: 3}}
	first, again := box.start()
	if len(again) != 0 {
		t.Fatalf("first chat resends %v", again)
	}
	for range 2 {
		if _, ok := box.take(first); !ok {
			t.Fatal("first chat got no message")
		}
	}
	box.answered() // one of two answered, then the chat breaks
	second, again := box.start()
	if len(again) != 1 {
		t.Fatalf("second chat resends %d messages, want 1", len(again))
	}
	if _, ok := box.take(first); ok {
		t.Fatal("the broken chat took a new message")
	}
	if _, ok := box.take(second); !ok {
		t.Fatal("the second chat got no new message")
	}
	if _, ok := box.take(second); ok {
		t.Fatal("more messages than count")
	}
}
