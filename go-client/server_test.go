package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	pb "grpctest/proto/go"
)

// testReplica names the in-process server in every reply.
const testReplica = "go-test-replica"

// testService answers as both real servers do, as far as the client's tests look: the
// reply's words, replica and sequence, a stream's pace, and a broken rule's
// INVALID_ARGUMENT with its google.rpc.BadRequest detail, here for the message
// "refused". (The servers themselves, and the rules, are tested in go-server/ and
// tests/conformance/; tests/ runs this client against them.)
type testService struct{ pb.UnimplementedGrpctestServer }

func answer(message string, sequence uint32) *pb.MessageResponse {
	text := fmt.Sprintf(`Hello I am up and running received "%s" message from you`, message)
	return &pb.MessageResponse{Message: text, Received: true, Replica: testReplica, Sequence: sequence}
}

const refusedMessage = "refused"

// invalid is the servers' answer to a request that breaks two rules.
func invalid(message string) error {
	if message != refusedMessage {
		return nil
	}
	st, err := status.New(codes.InvalidArgument, "count: must be greater than or equal to 1 and less than or equal to 100000; resume_after must be less than count").
		WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "count", Reason: "uint32.gte_lte", Description: "must be greater than or equal to 1 and less than or equal to 100000"},
			{Reason: "resume_after_below_count", Description: "resume_after must be less than count"},
		}})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func (testService) GetServerResponse(_ context.Context, in *pb.Message) (*pb.MessageResponse, error) {
	if err := invalid(in.GetMessage()); err != nil {
		return nil, err
	}
	return answer(in.GetMessage(), 0), nil
}

func (testService) StreamServerResponses(in *pb.StreamRequest, stream grpc.ServerStreamingServer[pb.MessageResponse]) error {
	if err := invalid(in.GetMessage()); err != nil {
		return err
	}
	for n := in.GetResumeAfter() + 1; n <= in.GetCount(); n++ {
		if err := stream.Send(answer(in.GetMessage(), n)); err != nil {
			return err
		}
		if n < in.GetCount() && !pause(stream.Context(), in.GetInterval().AsDuration()) {
			return status.FromContextError(stream.Context().Err()).Err()
		}
	}
	return nil
}

func (testService) Chat(stream grpc.BidiStreamingServer[pb.Message, pb.MessageResponse]) error {
	for n := uint32(1); ; n++ {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := invalid(in.GetMessage()); err != nil {
			return err
		}
		if err := stream.Send(answer(in.GetMessage(), n)); err != nil {
			return err
		}
	}
}

// serveInProcess serves service in this process over an in-memory connection (bufconn)
// and returns a client of it; both end with the test.
func serveInProcess(t *testing.T, service pb.GrpctestServer) pb.GrpctestClient {
	t.Helper()
	listener := bufconn.Listen(1 << 20)
	server := grpc.NewServer()
	pb.RegisterGrpctestServer(server, service)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	dial := func(ctx context.Context, _ string) (net.Conn, error) { return listener.DialContext(ctx) }
	conn, err := grpc.NewClient("passthrough:///bufconn", grpc.WithContextDialer(dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("failed to create client: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewGrpctestClient(conn)
}

// startTestServer serves testService in-process for the test's length.
func startTestServer(t *testing.T) pb.GrpctestClient {
	t.Helper()
	return serveInProcess(t, testService{})
}

// The in-process server keeps a stream's pace: a paced stream takes its intervals.
func TestTestServerPacesStreams(t *testing.T) {
	start := time.Now()
	_, err := run(context.Background(), startTestServer(t),
		plan{mode: "server-stream", message: "s", count: 3, interval: 50 * time.Millisecond, timeout: 5 * time.Second}, io.Discard)
	if took := time.Since(start); err != nil || took < 100*time.Millisecond {
		t.Fatalf("paced stream: %v after %v, want 2 intervals of 50ms", err, took)
	}
}
