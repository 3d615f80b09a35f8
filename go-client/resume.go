package main

// Streams that survive a replica's shutdown or crash: resumed where they broke.
//
// A server stream that breaks is asked for again with resume_after set to the sequence
// of the last reply received; the replica that answers (Envoy picks another one) sends
// the rest, numbered as the broken stream would have numbered them. A chat that breaks
// is opened again and the messages that got no reply are sent again; replies are
// numbered across chats, so each message gets exactly one reply, in order. Every
// reply's sequence is checked: a gap or a repeat ends the call with DATA_LOSS. All
// attempts share the call's one deadline (its context), with at most p.resumes resumes.
//
// When the deadline ends a call that is being resumed (a pause before the next attempt
// would outlast it, or an attempt after a break ran out of time before its first reply),
// the call ends with DEADLINE_EXCEEDED, saying what broke it: "deadline exceeded while
// resuming after UNAVAILABLE: ...". No pause is started that would end after the
// deadline: the call ends at once instead. The Python client does the same
// (grpctest_client/resume.py).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "grpctest/proto/go"
)

// Pause before a resume, doubling per attempt: Envoy needs a moment (its outlier
// detection, about a second at most) to stop routing to a replica that just died.
const (
	firstBackoff = 50 * time.Millisecond
	maxBackoff   = time.Second
)

// retryable says whether a broken stream is worth continuing on another replica.
//
// UNAVAILABLE: the replica is shutting down (it says so) or none could be reached.
// INTERNAL only when the stream had already delivered replies: when a replica dies
// mid-stream, Envoy can only reset the caller's stream (RST_STREAM INTERNAL_ERROR,
// which grpc-go reports as INTERNAL); headers and replies were sent, so Envoy cannot
// end it with a status of its own. gRPC's rule is not to retry INTERNAL, and for a
// call that failed before any reply (a real server error) that rule is kept.
func retryable(err error, progress bool) bool {
	switch status.Code(err) {
	case codes.Unavailable:
		return true
	case codes.Internal:
		return progress
	}
	return false
}

// backoff is the pause before resume number n+1 (attempt 0 broke first).
func backoff(n int) time.Duration {
	return min(firstBackoff<<min(n, 10), maxBackoff) // (no overflow)
}

// resumeLoop runs attempt until it succeeds, fails for good, the resumes are used up
// or the context's deadline ends it; attempt reports whether it made progress.
func resumeLoop(ctx context.Context, resumes int, attempt func() (bool, error)) error {
	var broken error // the break an attempt without progress is resuming after
	for n := 0; ; n++ {
		progress, err := attempt()
		if progress {
			broken = nil
		}
		switch {
		case err == nil:
			return nil
		case broken != nil && status.Code(err) == codes.DeadlineExceeded:
			return resumeDeadlineExceeded(broken)
		case n == resumes || !retryable(err, progress):
			return err
		case !fits(ctx, backoff(n)) || !pause(ctx, backoff(n)):
			return resumeDeadlineExceeded(err)
		}
		broken = err
	}
}

// resumeDeadlineExceeded is the status of a call the deadline ended while it was being
// resumed after broken.
func resumeDeadlineExceeded(broken error) error {
	s := status.Convert(broken)
	return status.Errorf(codes.DeadlineExceeded, "deadline exceeded while resuming after %s: %s",
		codeName(s.Code()), s.Message())
}

// fits says whether a pause of d ends before ctx's deadline (if it has one).
func fits(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > d
}

// pause waits for d, or less if ctx is done first; it says whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// outOfSequence is the DATA_LOSS error for what came instead of reply number expected
// (0: no reply at all, every message sent had its reply): reply, or (nil) the end of
// the stream. The Python client words it the same (grpctest_client/resume.py).
func outOfSequence(expected uint32, reply *pb.MessageResponse) error {
	want, got := "no reply", "end of stream"
	if expected > 0 {
		want = fmt.Sprintf("reply %d", expected)
	}
	if reply != nil {
		got = fmt.Sprintf("%d from %s", reply.GetSequence(), reply.GetReplica())
	}
	return status.Errorf(codes.DataLoss, "expected %s, got %s", want, got)
}

// resumableStream receives a server stream's replies, resuming after the last one
// received until all p.count have come; a stream that ends before is DATA_LOSS.
func resumableStream(ctx context.Context, client pb.GrpctestClient, request *pb.StreamRequest, p plan, emit func(*pb.MessageResponse)) error {
	var last uint32
	return resumeLoop(ctx, p.resumes, func() (bool, error) {
		request.ResumeAfter = last
		stream, err := client.StreamServerResponses(ctx, request)
		if err != nil {
			return false, err
		}
		for progress := false; ; progress = true {
			reply, err := stream.Recv()
			switch {
			case errors.Is(err, io.EOF) && last == request.GetCount():
				return progress, nil
			case errors.Is(err, io.EOF):
				return progress, outOfSequence(last+1, nil)
			case err != nil:
				return progress, err
			case reply.GetSequence() != last+1:
				return progress, outOfSequence(last+1, reply)
			case last > 0 && !progress:
				p.onResume(last, reply.GetReplica())
			}
			last = reply.GetSequence()
			emit(reply)
		}
	})
}

// outbox holds a chat's messages: those sent and not yet answered, and how many are
// still to come. Each chat (attempt) sends the unanswered ones again, then new ones; a
// broken chat's sender stops taking new messages as soon as the next chat has started,
// so no message is sent on a dead stream only.
type outbox struct {
	mu         sync.Mutex
	p          plan
	taken      int
	unanswered []string
	chat       int
}

// start begins a new chat: its number and the messages to send again.
func (o *outbox) start() (int, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.chat++
	return o.chat, append([]string(nil), o.unanswered...)
}

// take is the next new message for chat, p.interval after the last one, or false when
// there is none, chat is over or ctx is done. It pauses without the lock, so that
// replies are answered (and emitted) meanwhile.
func (o *outbox) take(ctx context.Context, chat int) (string, bool) {
	if open, wait := o.next(chat); !open || !pause(ctx, wait) {
		return "", false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.open(chat) { // the next chat may have started during the pause
		return "", false
	}
	o.taken++
	o.unanswered = append(o.unanswered, o.p.message)
	return o.p.message, true
}

// next says whether chat may take a new message, and how long it waits first (none
// before the first message).
func (o *outbox) next(chat int) (bool, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.taken == 0 {
		return o.open(chat), 0
	}
	return o.open(chat), o.p.interval
}

// open says whether chat is the current one and has messages to come (o.mu held).
func (o *outbox) open(chat int) bool {
	return chat == o.chat && o.taken < o.p.count
}

// answered marks the oldest unanswered message answered; false when there is none (a
// reply too many).
func (o *outbox) answered() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.unanswered) == 0 {
		return false
	}
	o.unanswered = o.unanswered[1:]
	return true
}

// send writes one chat's messages to stream and closes its sending side; it reports a
// failed send on sent (Recv then says why the stream failed).
func (o *outbox) send(ctx context.Context, stream pb.Grpctest_ChatClient, sent chan<- error) {
	chat, again := o.start()
	for _, m := range again {
		if err := stream.Send(&pb.Message{Message: m}); err != nil {
			sent <- err
			return
		}
	}
	for m, ok := o.take(ctx, chat); ok; m, ok = o.take(ctx, chat) {
		if err := stream.Send(&pb.Message{Message: m}); err != nil {
			sent <- err
			return
		}
	}
	sent <- stream.CloseSend()
}

// resumableChat sends p.count messages, one every p.interval, and emits each reply
// renumbered to count across chats (a new chat numbers from 1).
func resumableChat(ctx context.Context, client pb.GrpctestClient, p plan, emit func(*pb.MessageResponse)) error {
	box := &outbox{p: p}
	var last uint32
	return resumeLoop(ctx, p.resumes, func() (bool, error) {
		stream, err := client.Chat(ctx)
		if err != nil {
			return false, err
		}
		sent := make(chan error, 1)
		go box.send(ctx, stream, sent)
		for answered := uint32(0); ; answered++ {
			reply, err := stream.Recv()
			switch {
			case errors.Is(err, io.EOF):
				return answered > 0, <-sent
			case err != nil:
				return answered > 0, err
			case reply.GetSequence() != answered+1:
				return true, outOfSequence(answered+1, reply)
			case last > 0 && answered == 0:
				p.onResume(last, reply.GetReplica())
			}
			if !box.answered() {
				return true, outOfSequence(0, reply)
			}
			last++
			reply.Sequence = last
			emit(reply)
		}
	})
}
