package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "grpctest/proto/go"
)

// plan is what to call: the mode, the message, how many, how fast, the deadline of
// each call (unary) or of the whole stream (its resumes included), how many times a
// broken stream is resumed, and whom to tell (the sequence resumed after, the replica
// that now answers).
type plan struct {
	mode     string
	message  string
	count    int
	interval time.Duration
	timeout  time.Duration
	resumes  int
	onResume func(after uint32, replica string)
	json     bool // --output json: one JSON object per reply (reply), then a summary
}

// reply is one reply as --output json prints it; the Python client prints the same fields.
type reply struct {
	N        int    `json:"n"`
	Replica  string `json:"replica"`
	Message  string `json:"message"`
	Received bool   `json:"received"`
	Sequence uint32 `json:"sequence"`
}

// summary is the last object --output json prints: the replies per replica.
type summary struct {
	Replies    int            `json:"replies"`
	Target     string         `json:"target"`
	PerReplica map[string]int `json:"per_replica"`
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
	encoder := jsonEncoder(out)
	emit := func(r *pb.MessageResponse) {
		received++
		perReplica[r.GetReplica()]++
		// A stream's reply carries its place in the stream (a unary reply: 0).
		position := int(r.GetSequence())
		if position == 0 {
			position = received
		}
		if p.json {
			// A write error on stdout has nowhere to be reported: ignored, like Fprintf's.
			_ = encoder.Encode(reply{position, r.GetReplica(), r.GetMessage(), r.GetReceived(), r.GetSequence()})
			return
		}
		printReply(out, position, p.count, r)
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

// jsonEncoder writes --output json: one object a line, with <, > and & as they are
// (encoding/json would escape them for HTML), as the Python client writes it.
func jsonEncoder(out io.Writer) *json.Encoder {
	encoder := json.NewEncoder(out)
	encoder.SetEscapeHTML(false)
	return encoder
}

// printReply prints one reply as "[position/count] replica: message (received=true)".
func printReply(out io.Writer, position, count int, reply *pb.MessageResponse) {
	_, _ = fmt.Fprintf(out, "[%d/%d] %s: %s (received=%t)\n", position, count, reply.GetReplica(), reply.GetMessage(), reply.GetReceived())
}

// unary makes count calls one after another, interval apart, and emits each reply.
func unary(ctx context.Context, client pb.GrpctestClient, p plan, emit func(*pb.MessageResponse)) error {
	for i := range p.count {
		if i > 0 && p.interval > 0 {
			time.Sleep(p.interval)
		}
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

// serverStream asks for count replies, one every interval, and emits each as it
// arrives, resuming on another replica where the stream breaks (resume.go).
func serverStream(ctx context.Context, client pb.GrpctestClient, p plan, emit func(*pb.MessageResponse)) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	request := &pb.StreamRequest{Message: p.message, Count: uint32(p.count), Interval: durationpb.New(p.interval)}
	return resumableStream(ctx, client, request, p, emit)
}

// chat sends count messages, one every interval, and emits each reply as it arrives,
// going on in a new chat where one breaks (resume.go).
func chat(ctx context.Context, client pb.GrpctestClient, p plan, emit func(*pb.MessageResponse)) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	return resumableChat(ctx, client, p, emit)
}

// resumed is a resume as -output json reports it: {"resumed":{"after":558,"replica":"replica-3"}}.
type resumed struct {
	After   uint32 `json:"after"`
	Replica string `json:"replica"`
}

// printResumed is the plan's onResume for the command line: one line on out per resume,
// "resumed after 558 on replica-3" or (asJSON) a JSON object, the Python client's bytes.
func printResumed(out io.Writer, asJSON bool) func(uint32, string) {
	return func(after uint32, replica string) {
		if asJSON {
			_ = jsonEncoder(out).Encode(map[string]resumed{"resumed": {after, replica}})
			return
		}
		_, _ = fmt.Fprintf(out, "resumed after %d on %s\n", after, replica)
	}
}

// printJSONSummary prints {"summary": {...}}, the last line of --output json.
func printJSONSummary(out io.Writer, target string, perReplica map[string]int) {
	total := 0
	for _, n := range perReplica {
		total += n
	}
	_ = jsonEncoder(out).Encode(map[string]summary{"summary": {total, target, perReplica}})
}

func printSummary(out io.Writer, target string, perReplica map[string]int, unit string) {
	replicas := make([]string, 0, len(perReplica))
	total := 0
	for replica, n := range perReplica {
		replicas = append(replicas, replica)
		total += n
	}
	sort.Strings(replicas)
	_, _ = fmt.Fprintf(out, "summary: %d %s through %s, %d replicas answered\n", total, unit, target, len(replicas))
	for _, replica := range replicas {
		_, _ = fmt.Fprintf(out, "  %s: %d %s\n", replica, perReplica[replica], unit)
	}
}

// codeName spells a status code as the gRPC spec and the Python client do
// (INVALID_ARGUMENT rather than Go's InvalidArgument): google.rpc.Code's names.
func codeName(c codes.Code) string {
	return code.Code(c).String()
}
