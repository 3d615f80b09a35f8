package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "grpctest/proto/go"
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
		if _, ok := box.take(context.Background(), first); !ok {
			t.Fatal("first chat got no message")
		}
	}
	box.answered() // one of two answered, then the chat breaks
	second, again := box.start()
	if len(again) != 1 {
		t.Fatalf("second chat resends %d messages, want 1", len(again))
	}
	if _, ok := box.take(context.Background(), first); ok {
		t.Fatal("the broken chat took a new message")
	}
	if _, ok := box.take(context.Background(), second); !ok {
		t.Fatal("the second chat got no new message")
	}
	if _, ok := box.take(context.Background(), second); ok {
		t.Fatal("more messages than count")
	}
}

// The pause between a chat's messages holds no lock (a reply is marked answered
// meanwhile) and ends with the call's deadline.
func TestOutboxPausesWithoutTheLockUntilTheDeadline(t *testing.T) {
	box := &outbox{p: plan{message: "m", count: 2, interval: time.Hour}}
	chat, _ := box.start()
	ctx, cancel := context.WithCancel(context.Background())
	box.take(ctx, chat)
	took := make(chan bool)
	go func() { _, ok := box.take(ctx, chat); took <- ok }()
	time.Sleep(50 * time.Millisecond) // (the sender is pausing now)
	answered := make(chan bool)
	go func() { answered <- box.answered() }()
	select {
	case <-answered:
	case <-time.After(time.Second):
		t.Fatal("a reply waits for the next message to be taken")
	}
	cancel()
	select {
	case ok := <-took:
		if ok {
			t.Error("a message was taken after the deadline")
		}
	case <-time.After(time.Second):
		t.Fatal("the sender outlives the deadline")
	}
}

// Each chat reply is emitted as it arrives, not held back until the next message is
// sent: message n goes at (n-1)*interval, its reply well before message n+1.
func TestChatRepliesAreNotHeldBack(t *testing.T) {
	client := startTestServer(t)
	const interval = 500 * time.Millisecond
	var at []time.Duration
	start := time.Now()
	p := plan{message: "c", count: 3, interval: interval, timeout: 10 * time.Second}
	err := chat(context.Background(), client, p, func(*pb.MessageResponse) { at = append(at, time.Since(start)) })
	if err != nil || len(at) != 3 {
		t.Fatalf("chat: %v, replies at %v", err, at)
	}
	for n, got := range at {
		if limit := time.Duration(n)*interval + interval/2; got > limit {
			t.Errorf("reply %d came after %v, want within %v (replies at %v)", n+1, got, limit, at)
		}
	}
}

// misbehaving is a grpctest server that breaks the sequence contract: each chat message
// gets two replies, and a server stream ends (with OK) one reply short.
type misbehaving struct{ pb.UnimplementedGrpctestServer }

func (misbehaving) StreamServerResponses(r *pb.StreamRequest, stream grpc.ServerStreamingServer[pb.MessageResponse]) error {
	for n := r.GetResumeAfter() + 1; n < r.GetCount(); n++ {
		if err := stream.Send(&pb.MessageResponse{Replica: "short", Sequence: n}); err != nil {
			return err
		}
	}
	return nil
}

func (misbehaving) Chat(stream grpc.BidiStreamingServer[pb.Message, pb.MessageResponse]) error {
	for n := uint32(1); ; n += 2 {
		if _, err := stream.Recv(); err != nil {
			return nil // the client's end of sending (or of the call)
		}
		for _, sequence := range []uint32{n, n + 1} {
			if err := stream.Send(&pb.MessageResponse{Replica: "twice", Sequence: sequence}); err != nil {
				return err
			}
		}
	}
}

// A reply too many in a chat, and a server stream that ends short, are DATA_LOSS.
func TestRepliesOutOfSequenceAreDataLoss(t *testing.T) {
	client := serveInProcess(t, misbehaving{})
	for _, tc := range []struct {
		plan plan
		want string
	}{
		{plan{mode: "chat", message: "c", count: 1, timeout: 5 * time.Second}, "expected no reply, got 2 from twice"},
		{plan{mode: "server-stream", message: "s", count: 3, timeout: 5 * time.Second}, "expected reply 3, got end of stream"},
	} {
		_, err := run(context.Background(), client, tc.plan, &bytes.Buffer{})
		if s := status.Convert(err); s.Code() != codes.DataLoss || s.Message() != tc.want {
			t.Errorf("%s: err = %v, want DATA_LOSS %q", tc.plan.mode, err, tc.want)
		}
	}
}

// --output json writes a message as it is: no \u escapes of non-ASCII or of <, > and &
// (the same bytes as the Python client).
func TestJSONOutputIsUnescaped(t *testing.T) {
	var out bytes.Buffer
	p := plan{mode: "unary", message: "é<>&", count: 1, timeout: 5 * time.Second, json: true}
	if _, err := run(context.Background(), startTestServer(t), p, &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if want := `received \"é<>&\" message`; !strings.Contains(out.String(), want) {
		t.Errorf("output %q does not contain %q", out.String(), want)
	}
}
