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

// No message is taken once the call's deadline has passed (the pause before it, an
// hour here, is not even waited out).
func TestOutboxTakesNothingAfterTheDeadline(t *testing.T) {
	box := &outbox{p: plan{message: "m", count: 2, interval: time.Hour}}
	chat, _ := box.start()
	ctx, cancel := context.WithCancel(context.Background())
	if _, ok := box.take(ctx, chat); !ok {
		t.Fatal("the first message was not taken")
	}
	cancel()
	if _, ok := box.take(ctx, chat); ok {
		t.Error("a message was taken after the deadline")
	}
}

// A chat reply is emitted as it arrives, not held back until the next message is sent:
// with the second message an hour away, the first one's reply still comes (were it held
// back, or the pause holding the outbox's lock, which marking a reply answered takes,
// the chat would end with DEADLINE_EXCEEDED instead).
func TestChatRepliesAreNotHeldBack(t *testing.T) {
	client := startTestServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan *pb.MessageResponse, 1)
	ended := make(chan error, 1)
	p := plan{message: "c", count: 2, interval: time.Hour, timeout: 20 * time.Second}
	go func() {
		ended <- chat(ctx, client, p, func(r *pb.MessageResponse) {
			select {
			case first <- r:
			default:
			}
		})
	}()
	select {
	case r := <-first:
		if r.GetSequence() != 1 {
			t.Errorf("first reply has sequence %d", r.GetSequence())
		}
	case err := <-ended:
		t.Fatalf("the chat ended before its first reply: %v", err)
	}
	cancel()
	t.Logf("after cancel: %v", <-ended) // (the cancelled chat's end is not what this test checks)
}

// failingAttempts is resumeLoop's attempt function for tests: each call fails with the
// next of errs (the last repeats), after progress where progress[i] says so.
type failingAttempts struct {
	errs     []error
	progress []bool
	calls    int
}

func (f *failingAttempts) attempt() (bool, error) {
	i := min(f.calls, len(f.errs)-1)
	f.calls++
	return i < len(f.progress) && f.progress[i], f.errs[i]
}

var errUnavailable = status.Error(codes.Unavailable, "gone")

// A pause before a resume that would end after the deadline is not started: the call
// ends at once with DEADLINE_EXCEEDED, naming the break it was resuming after.
func TestAPauseThatWouldOutlastTheDeadlineEndsTheCall(t *testing.T) {
	for _, left := range []time.Duration{0, 30 * time.Millisecond} { // the first pause: 50 ms
		ctx, cancel := context.WithTimeout(context.Background(), left)
		f := &failingAttempts{errs: []error{errUnavailable}}
		err := resumeLoop(ctx, 5, f.attempt)
		cancel()
		want := "deadline exceeded while resuming after UNAVAILABLE: gone"
		if s := status.Convert(err); s.Code() != codes.DeadlineExceeded || s.Message() != want || f.calls != 1 {
			t.Errorf("%v left: %d attempts, err = %v; want 1 attempt, DEADLINE_EXCEEDED %q", left, f.calls, err, want)
		}
	}
}

func TestFits(t *testing.T) {
	hour, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	short, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want bool
	}{
		{"no deadline", context.Background(), time.Hour, true},
		{"a second of an hour", hour, time.Second, true},
		{"50 ms of 30 ms", short, 50 * time.Millisecond, false},
	} {
		if got := fits(tc.ctx, tc.d); got != tc.want {
			t.Errorf("%s: fits = %t, want %t", tc.name, got, tc.want)
		}
	}
}

// How a resumed call ends, with time left: the deadline meeting an attempt after a
// break names the break; once an attempt had replies, its status is its own; resumes
// used up end with the last break.
func TestHowAResumedCallEnds(t *testing.T) {
	deadline := status.Error(codes.DeadlineExceeded, "context deadline exceeded")
	internal := status.Error(codes.Internal, "RST_STREAM")
	for _, tc := range []struct {
		name      string
		attempts  failingAttempts
		resumes   int
		wantCalls int
		want      error
	}{
		{"deadline after a break", failingAttempts{errs: []error{errUnavailable, deadline}}, 5, 2,
			status.Error(codes.DeadlineExceeded, "deadline exceeded while resuming after UNAVAILABLE: gone")},
		{"deadline after replies", failingAttempts{errs: []error{internal, deadline}, progress: []bool{true, true}}, 5, 2, deadline},
		{"resumes used up", failingAttempts{errs: []error{errUnavailable}}, 2, 3, errUnavailable},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := resumeLoop(ctx, tc.resumes, tc.attempts.attempt)
		cancel()
		if status.Code(err) != status.Code(tc.want) || status.Convert(err).Message() != status.Convert(tc.want).Message() || tc.attempts.calls != tc.wantCalls {
			t.Errorf("%s: %d attempts, err = %v; want %d, %v", tc.name, tc.attempts.calls, err, tc.wantCalls, tc.want)
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
