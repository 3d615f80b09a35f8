package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "grpctest/proto/go"
)

// The contract's reply, exactly as py-server has it (the conformance suite checks both
// servers against the same replies and statuses).
const replyTemplate = `Hello I am up and running received "%s" message from you`

// service implements grpctest.Grpctest: it acknowledges each message and names the
// replica. Its requests have been checked before (requestCheck, validation.go): they
// parsed and keep the contract's rules. Streams end cleanly when the server shuts down: once closing is closed,
// each open stream ends with UNAVAILABLE and says how far it got, so that the caller
// can continue on another replica.
type service struct {
	pb.UnimplementedGrpctestServer
	replica string
	closing chan struct{}
}

func newService(replica string) *service {
	return &service{replica: replica, closing: make(chan struct{})}
}

// closeStreamsAfter ends the streams still open after d.
func (s *service) closeStreamsAfter(d time.Duration) {
	time.AfterFunc(d, func() { close(s.closing) })
}

func (s *service) GetServerResponse(_ context.Context, in *pb.Message) (*pb.MessageResponse, error) {
	return s.reply(in.GetMessage(), 0), nil
}

func (s *service) StreamServerResponses(in *pb.StreamRequest, stream pb.Grpctest_StreamServerResponsesServer) error {
	count, interval := in.GetCount(), in.GetInterval().AsDuration()
	for sequence := in.GetResumeAfter() + 1; sequence <= count; sequence++ {
		if s.isClosing() {
			return s.endStream(fmt.Sprintf("%d of %d replies sent", sequence-1, count))
		}
		// Send blocks until HTTP/2 flow control lets the reply go.
		if err := stream.Send(s.reply(in.GetMessage(), sequence)); err != nil {
			return err
		}
		if interval > 0 && sequence < count {
			if err := s.pause(stream.Context(), interval); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *service) Chat(stream pb.Grpctest_ChatServer) error {
	messages := receive(stream)
	var sequence uint32
	for {
		select {
		case <-s.closing:
			return s.endStream(fmt.Sprintf("%d messages answered", sequence))
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case received := <-messages:
			if errors.Is(received.err, io.EOF) {
				return nil
			}
			if received.err != nil {
				return received.err
			}
			sequence++
			if err := stream.Send(s.reply(received.msg.GetMessage(), sequence)); err != nil {
				return err
			}
		}
	}
}

type received struct {
	msg *pb.Message
	err error
}

// receive reads the caller's messages in the background, so that Chat can also
// wait for the server to close its streams. It stops after the first error (io.EOF
// included), which also comes once the call has ended.
func receive(stream pb.Grpctest_ChatServer) <-chan received {
	messages := make(chan received)
	go func() {
		for {
			msg, err := stream.Recv()
			select {
			case messages <- received{msg, err}:
			case <-stream.Context().Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return messages
}

func (s *service) reply(message string, sequence uint32) *pb.MessageResponse {
	return &pb.MessageResponse{
		Message:  fmt.Sprintf(replyTemplate, message),
		Received: true,
		Replica:  s.replica,
		Sequence: sequence,
	}
}

func (s *service) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// deadlineMargin: how long before a call's deadline a pause that would outlast it
// ends the call with DEADLINE_EXCEEDED itself. At the deadline, grpc-go's transport
// resets the stream (RST_STREAM CANCEL), and a client whose own timer fires a moment
// later (a busy client) reads that reset as CANCELLED; the status sent first says why.
const deadlineMargin = 20 * time.Millisecond

// pause sleeps, but wakes up at once when the streams are to close; it fails when
// the call ends (deadline, cancellation), or just before its deadline if it would
// sleep past it.
func (s *service) pause(ctx context.Context, d time.Duration) error {
	deadline, hasDeadline := ctx.Deadline()
	past := hasDeadline && time.Until(deadline)-deadlineMargin < d
	if past {
		d = max(time.Until(deadline)-deadlineMargin, 0)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		if past {
			return status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error())
		}
	case <-s.closing:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	return nil
}

func (s *service) endStream(progress string) error {
	return status.Errorf(codes.Unavailable,
		"replica %s is shutting down: %s; continue on another replica", s.replica, progress)
}
