package main

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/status"

	pb "grpctest/proto/go"
)

// caller calls back to back and keeps what the calls that ended after measureFrom saw.
type caller struct {
	client      pb.GrpctestClient
	measureFrom time.Time
	latencies   []int64 // µs
	answered    []time.Time
	replicas    []string
	failures    []string
}

// callUntil calls until ctx ends; a call is never cut by it (each has its own deadline).
func (c *caller) callUntil(ctx context.Context, request *pb.Message, deadline time.Duration) {
	for ctx.Err() == nil {
		begin := time.Now()
		reply, err := unary(request, c.client, deadline)
		end := time.Now()
		switch {
		case end.Before(c.measureFrom):
		case err != nil:
			s := status.Convert(err)
			c.failures = append(c.failures, fmt.Sprintf("%s: %s", s.Code(), s.Message()))
		default:
			c.latencies = append(c.latencies, end.Sub(begin).Microseconds())
			c.answered = append(c.answered, end)
			c.replicas = append(c.replicas, reply.GetReplica())
		}
	}
}

func unary(request *pb.Message, client pb.GrpctestClient, deadline time.Duration) (*pb.MessageResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	return client.GetServerResponse(ctx, request)
}

// merge adds the callers' calls up.
func merge(callers []*caller, measureFrom time.Time) report {
	r := report{
		Failures: map[string]int{}, PerReplica: map[string]int{}, LatencyUS: []int64{},
		StartMS: measureFrom.UnixMilli(), AnsweredMS: []int64{},
	}
	last := measureFrom
	for _, c := range callers {
		r.LatencyUS = append(r.LatencyUS, c.latencies...)
		for _, failure := range c.failures {
			r.Failures[failure]++
		}
		for i, replica := range c.replicas {
			r.PerReplica[replica]++
			r.AnsweredMS = append(r.AnsweredMS, c.answered[i].Sub(measureFrom).Milliseconds())
			last = later(last, c.answered[i])
		}
		r.Calls += len(c.latencies) + len(c.failures)
	}
	r.Seconds = last.Sub(measureFrom).Seconds()
	return r
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
