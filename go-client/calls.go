package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "grpctest/proto/go"
)

// plan is what to call: the mode, the message, how many, how fast, and the deadline
// of each call (unary) or of the whole stream.
type plan struct {
	mode     string
	message  string
	count    int
	interval time.Duration
	timeout  time.Duration
}

// unit names what the summary counts.
func (p plan) unit() string {
	if p.mode == "unary" {
		return "calls"
	}
	return "replies"
}

// run makes the calls of the plan, prints each reply to out and returns the replies
// per replica. It stops at the first failed call and returns its error.
func run(ctx context.Context, client pb.GrpctestClient, p plan, out io.Writer) (map[string]int, error) {
	perReplica := make(map[string]int)
	received := 0
	emit := func(reply *pb.MessageResponse) {
		received++
		perReplica[reply.GetReplica()]++
		fmt.Fprintf(out, "[%d/%d] %s: %s (received=%t)\n", received, p.count, reply.GetReplica(), reply.GetMessage(), reply.GetReceived())
	}
	var err error
	switch p.mode {
	case "server-stream":
		err = serverStream(ctx, client, p, emit)
	case "chat":
		err = chat(ctx, client, p, emit)
	default:
		err = unary(ctx, client, p, emit)
	}
	return perReplica, err
}

func unary(ctx context.Context, client pb.GrpctestClient, p plan, emit func(*pb.MessageResponse)) error {
	for range p.count {
		reply, err := call(ctx, client, p.message, p.timeout)
		if err != nil {
			return err
		}
		emit(reply)
	}
	return nil
}

func call(ctx context.Context, client pb.GrpctestClient, msg string, timeout time.Duration) (*pb.MessageResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return client.GetServerResponse(ctx, &pb.Message{Message: msg})
}

// serverStream asks for count replies, one every interval, and emits each as it arrives.
func serverStream(ctx context.Context, client pb.GrpctestClient, p plan, emit func(*pb.MessageResponse)) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	stream, err := client.StreamServerResponses(ctx, &pb.StreamRequest{
		Message:  p.message,
		Count:    uint32(p.count),
		Interval: durationpb.New(p.interval),
	})
	if err != nil {
		return err
	}
	for {
		reply, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		emit(reply)
	}
}

// chat sends count messages, one every interval, on one stream, and emits each reply
// as it arrives.
func chat(ctx context.Context, client pb.GrpctestClient, p plan, emit func(*pb.MessageResponse)) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	stream, err := client.Chat(ctx)
	if err != nil {
		return err
	}
	sent := make(chan error, 1)
	go func() {
		for i := range p.count {
			if i > 0 && p.interval > 0 {
				time.Sleep(p.interval)
			}
			if err := stream.Send(&pb.Message{Message: p.message}); err != nil {
				sent <- err // the stream failed: Recv reports why
				return
			}
		}
		sent <- stream.CloseSend()
	}()
	for {
		reply, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return <-sent
		}
		if err != nil {
			return err
		}
		emit(reply)
	}
}

func printSummary(out io.Writer, target string, perReplica map[string]int, unit string) {
	replicas := make([]string, 0, len(perReplica))
	total := 0
	for replica, n := range perReplica {
		replicas = append(replicas, replica)
		total += n
	}
	sort.Strings(replicas)
	fmt.Fprintf(out, "summary: %d %s through %s, %d replicas answered\n", total, unit, target, len(replicas))
	for _, replica := range replicas {
		fmt.Fprintf(out, "  %s: %d %s\n", replica, perReplica[replica], unit)
	}
}

// codeName spells a status code as the gRPC spec and the Python client do
// (INVALID_ARGUMENT rather than Go's InvalidArgument): google.rpc.Code's names.
func codeName(c codes.Code) string {
	return code.Code(c).String()
}
