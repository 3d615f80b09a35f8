package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectiongrpc "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "grpctest/proto/go"
)

const testReplica = "unit-go"

// serve starts the server in-process on an in-memory listener and returns a
// connection to it; both end with the test.
func serve(t *testing.T) (*server, *grpc.ClientConn) {
	t.Helper()
	listener := bufconn.Listen(1 << 20)
	srv, err := startOn(listener, config{replica: testReplica, reflection: true, maxMessageBytes: 64 * 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.grpc.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return listener.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return srv, conn
}

func callContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantStatus(t *testing.T, err error, code codes.Code, message string) {
	t.Helper()
	if s := status.Convert(err); s.Code() != code || (message != "" && s.Message() != message) {
		t.Fatalf("got %v %q, want %v %q", s.Code(), s.Message(), code, message)
	}
}

// violation is what a test expects of one field violation: the field's path and the
// rule's id (the descriptions are protovalidate's words).
type violation struct{ field, rule string }

// wantViolations: INVALID_ARGUMENT with a BadRequest detail naming exactly these.
func wantViolations(t *testing.T, err error, want ...violation) {
	t.Helper()
	st := status.Convert(err)
	var got []violation
	for _, detail := range st.Details() {
		if request, ok := detail.(*errdetails.BadRequest); ok {
			for _, v := range request.GetFieldViolations() {
				got = append(got, violation{v.GetField(), v.GetReason()})
			}
		}
	}
	if st.Code() != codes.InvalidArgument || !slices.Equal(got, want) {
		t.Fatalf("got %v %q %v, want INVALID_ARGUMENT %v", st.Code(), st.Message(), got, want)
	}
}

func TestGetServerResponse(t *testing.T) {
	_, conn := serve(t)
	client := pb.NewGrpctestClient(conn)
	for _, message := range []string{"hi there", "héllo ✓"} {
		reply, err := client.GetServerResponse(callContext(t), &pb.Message{Message: message})
		if err != nil || reply.GetMessage() != `Hello I am up and running received "`+message+`" message from you` ||
			!reply.GetReceived() || reply.GetReplica() != testReplica {
			t.Errorf("%q: got %v, %v", message, reply, err)
		}
	}
	_, err := client.GetServerResponse(callContext(t), &pb.Message{})
	wantViolations(t, err, violation{"message", "required"})
	wantStatus(t, err, codes.InvalidArgument, "message: value is required")
}

// rawCodec sends the request's bytes as they are, as a broken client would.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *(v.(*[]byte)) = data; return nil }
func (rawCodec) Name() string                       { return "proto" }

// Bytes that do not parse: INVALID_ARGUMENT with protobuf-go's reason. Unknown fields
// (a newer client's) are no reason to refuse a request.
func TestMalformedRequestIsInvalidArgument(t *testing.T) {
	_, conn := serve(t)
	const prefix = "request is not a valid grpctest.Message: "
	tests := []struct {
		body   string
		reason string
	}{
		{"\x0a\x02\xff\xfe", "string field contains invalid UTF-8"},
		{"\x0a\x10ab", "cannot parse invalid wire-format data"},
		{"\xff\xff\xff\xff", "cannot parse invalid wire-format data"},
	}
	for _, tt := range tests {
		var reply []byte
		err := conn.Invoke(callContext(t), "/grpctest.Grpctest/GetServerResponse", []byte(tt.body), &reply,
			grpc.ForceCodec(rawCodec{}))
		if st := status.Convert(err); st.Code() != codes.InvalidArgument ||
			!strings.HasPrefix(st.Message(), prefix) || !strings.Contains(st.Message(), tt.reason) {
			t.Errorf("%q: got %v %q", tt.body, st.Code(), st.Message())
		}
	}
	var reply []byte
	withUnknownField := "\x0a\x02hi\x48\x01" // message "hi", field 9 = 1
	if err := conn.Invoke(callContext(t), "/grpctest.Grpctest/GetServerResponse", []byte(withUnknownField), &reply,
		grpc.ForceCodec(rawCodec{})); err != nil {
		t.Errorf("unknown field: %v", err)
	}
}

func TestOversizedRequestIsResourceExhausted(t *testing.T) {
	_, conn := serve(t)
	_, err := pb.NewGrpctestClient(conn).GetServerResponse(callContext(t),
		&pb.Message{Message: string(make([]byte, 64*1024+1))})
	wantStatus(t, err, codes.ResourceExhausted, "")
}

func streamRequest(count, resumeAfter uint32, interval time.Duration) *pb.StreamRequest {
	return &pb.StreamRequest{Message: "s", Count: count, ResumeAfter: resumeAfter, Interval: durationpb.New(interval)}
}

// readStream returns the sequence numbers a stream delivered and the error that
// ended it (nil for a clean end).
func readStream(stream grpc.ServerStreamingClient[pb.MessageResponse]) ([]uint32, error) {
	var sequences []uint32
	for {
		reply, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return sequences, nil
		}
		if err != nil {
			return sequences, err
		}
		sequences = append(sequences, reply.GetSequence())
	}
}

func TestStreamServerResponses(t *testing.T) {
	_, conn := serve(t)
	client := pb.NewGrpctestClient(conn)
	count := violation{"count", "uint32.gte_lte"}
	interval := violation{"interval", "duration.gte_lte"}
	resume := violation{"", "resume_after_below_count"}
	tests := []struct {
		name       string
		request    *pb.StreamRequest
		first      uint32
		replies    int
		violations []violation
	}{
		{"in order", streamRequest(1000, 0, 0), 1, 1000, nil},
		{"resumed", streamRequest(10, 7, 0), 8, 3, nil},
		{"the most replies", streamRequest(100_000, 99_998, 0), 99_999, 2, nil},
		{"the longest pause", streamRequest(2, 1, 10*time.Second), 2, 1, nil},
		{"no replies", streamRequest(0, 0, 0), 0, 0, []violation{count}},
		{"too many", streamRequest(100_001, 0, 0), 0, 0, []violation{count}},
		{"slow", streamRequest(5, 0, 11*time.Second), 0, 0, []violation{interval}},
		{"backwards", streamRequest(5, 0, -time.Second/2), 0, 0, []violation{interval}},
		{"resume past the end", streamRequest(5, 5, 0), 0, 0, []violation{resume}},
		{"resume past the end, slow", streamRequest(5, 5, 11*time.Second), 0, 0, []violation{resume, interval}},
		{"past what a Duration holds", &pb.StreamRequest{Message: "s", Count: 5, Interval: &durationpb.Duration{Seconds: 1e15}},
			0, 0, []violation{interval}},
		{"empty", &pb.StreamRequest{Count: 1}, 0, 0, []violation{{"message", "required"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := client.StreamServerResponses(callContext(t), tt.request)
			if err != nil {
				t.Fatal(err)
			}
			sequences, err := readStream(stream)
			if tt.violations != nil {
				wantViolations(t, err, tt.violations...)
				return
			}
			if err != nil || len(sequences) != tt.replies || sequences[0] != tt.first ||
				sequences[len(sequences)-1] != tt.request.GetCount() {
				t.Fatalf("got %d replies %v..., error %v", len(sequences), sequences[:min(3, len(sequences))], err)
			}
		})
	}
}

func TestChat(t *testing.T) {
	_, conn := serve(t)
	stream, err := pb.NewGrpctestClient(conn).Chat(callContext(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, message := range []string{"m1", "m2"} {
		if err := stream.Send(&pb.Message{Message: message}); err != nil {
			t.Fatal(err)
		}
		reply, err := stream.Recv()
		if err != nil || reply.GetMessage() != `Hello I am up and running received "`+message+`" message from you` {
			t.Fatalf("got %v, %v", reply, err)
		}
	}
	if err := stream.Send(&pb.Message{}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	wantViolations(t, err, violation{"message", "required"})
}

func TestHealth(t *testing.T) {
	_, conn := serve(t)
	client := healthpb.NewHealthClient(conn)
	for _, service := range []string{"", "grpctest.Grpctest"} {
		reply, err := client.Check(callContext(t), &healthpb.HealthCheckRequest{Service: service})
		if err != nil || reply.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("%q: got %v, %v", service, reply, err)
		}
	}
	_, err := client.Check(callContext(t), &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	wantStatus(t, err, codes.NotFound, "")
	list, err := client.List(callContext(t), &healthpb.HealthListRequest{})
	if err != nil || len(list.GetStatuses()) != 2 {
		t.Errorf("List: got %v, %v", list, err)
	}
}

func TestReflectionListsTheServices(t *testing.T) {
	_, conn := serve(t)
	stream, err := reflectiongrpc.NewServerReflectionClient(conn).ServerReflectionInfo(callContext(t))
	if err != nil {
		t.Fatal(err)
	}
	request := &reflectiongrpc.ServerReflectionRequest{MessageRequest: &reflectiongrpc.ServerReflectionRequest_ListServices{}}
	if err := stream.Send(request); err != nil {
		t.Fatal(err)
	}
	reply, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, service := range reply.GetListServicesResponse().GetService() {
		names[service.GetName()] = true
	}
	if !names["grpctest.Grpctest"] || !names["grpc.health.v1.Health"] {
		t.Fatalf("listed %v", names)
	}
}

// A stream that would outlast the grace period ends a second before it, saying how
// far it got; one that fits finishes; health reports NOT_SERVING from the start.
func TestShutdownEndsOpenStreamsWithTheirProgress(t *testing.T) {
	srv, conn := serve(t)
	client := pb.NewGrpctestClient(conn)
	type result struct {
		sequences []uint32
		err       error
	}
	results := make([]chan result, 2)
	for i, count := range []uint32{100, 5} {
		stream, err := client.StreamServerResponses(callContext(t), streamRequest(count, 0, 100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		results[i] = make(chan result, 1)
		go func() { s, err := readStream(stream); results[i] <- result{s, err} }()
	}
	time.Sleep(300 * time.Millisecond)
	srv.drainAndStop(0, 2*time.Second)
	long, short := <-results[0], <-results[1]
	if len(short.sequences) != 5 || short.err != nil {
		t.Errorf("short stream: %v, %v", short.sequences, short.err)
	}
	n := len(long.sequences)
	wantStatus(t, long.err, codes.Unavailable,
		"replica unit-go is shutting down: "+strconv.Itoa(n)+" of 100 replies sent; continue on another replica")
	if n < 5 || n >= 100 {
		t.Errorf("long stream sent %d replies", n)
	}
}

// clearSettings unsets every variable of the server's table for the test.
func clearSettings(t *testing.T) {
	for _, s := range serverSettings {
		t.Setenv(s.Env(), "")
	}
}

func TestLogLevelIgnoresCase(t *testing.T) {
	clearSettings(t)
	for name, want := range map[string]slog.Level{"debug": slog.LevelDebug, "Warning": slog.LevelWarn, "ERROR": slog.LevelError} {
		if err := serverSettings.Parse([]string{"--log-level", name}); err != nil || logLevels[logLevel] != want {
			t.Errorf("%q: got %q (%v), %v", name, logLevel, logLevels[logLevel], err)
		}
	}
	if err := serverSettings.Parse([]string{"--log-level", "verbose"}); err == nil ||
		err.Error() != `--log-level: want one of DEBUG, INFO, WARNING, ERROR, got "verbose"` {
		t.Errorf(`"verbose": err = %v`, err)
	}
}

// The server's table: its defaults, variables (as the conformance suite sets them), a
// bad flag, a bad variable, and --help.
func TestServerSettings(t *testing.T) {
	clearSettings(t)
	if err := serverSettings.Parse(nil); err != nil || host != "127.0.0.1" || port != 50051 || replica != hostname() ||
		!reflect || maxMessageBytes != 1024*1024 || drain != 3*time.Second || grace != 10*time.Second || metricsPort != 0 || logLevel != "INFO" {
		t.Fatalf("defaults: %v, %q %d %q %t %d %v %v %d %q", err, host, port, replica, reflect, maxMessageBytes, drain, grace, metricsPort, logLevel)
	}
	t.Setenv("GRPCTEST_REFLECTION", "false")
	t.Setenv("GRPCTEST_DRAIN_SECONDS", "0.5")
	if err := serverSettings.Parse([]string{"-port", "0", "--replica", "go-9", "--grace-seconds", "1m30s"}); err != nil ||
		reflect || drain != 500*time.Millisecond || grace != 90*time.Second || port != 0 || replica != "go-9" {
		t.Fatalf("set: %v, %t %v %v %d %q", err, reflect, drain, grace, port, replica)
	}
	if err := serverSettings.Parse([]string{"--port", "http"}); err == nil || err.Error() != `--port: want a whole number, got "http"` {
		t.Errorf("bad flag: err = %v", err)
	}
	t.Setenv("GRPCTEST_GRACE_SECONDS", "long")
	if err := serverSettings.Parse(nil); err == nil || err.Error() != `GRPCTEST_GRACE_SECONDS (for --grace-seconds): want seconds (like 5, 0.5 or 500ms), got "long"` {
		t.Errorf("bad variable: err = %v", err)
	}
	var out bytes.Buffer
	serverSettings.Usage(&out)
	if want := "  --max-message-bytes whole number\n    \tlargest request accepted; larger ones get RESOURCE_EXHAUSTED (env GRPCTEST_MAX_MESSAGE_BYTES, default 1048576)\n"; !strings.Contains(out.String(), want) {
		t.Errorf("usage %q does not contain %q", out.String(), want)
	}
}

// A server whose listener fails (here: closed under it) returns Serve's error at
// once instead of waiting for a signal with nothing served.
func TestServeFailureIsReturned(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := listener.Close(); err != nil {
		t.Fatal(err)
	}
	srv, err := startOn(listener, config{replica: testReplica, maxMessageBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.serveUntil(ctx, 0, 0); !errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
		t.Fatalf("got %v (context: %v), want the listener's error at once", err, ctx.Err())
	}
}
