package main

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// observation is one thing learnt about a replica's health: from its Health/Watch stream
// (ok: it reports SERVING) or from a Health/Check (ok: it answered in time, whatever
// it answered).
type observation struct {
	address string
	watch   bool // from the Watch stream; else from a Check
	ok      bool
	reason  string // what was seen: SERVING, NOT_SERVING, the error
}

// checking is how replicas are checked: the service name, the checks' pace, how many
// failed checks in a row make a replica unhealthy, the transport credentials.
type checking struct {
	service  string
	interval time.Duration
	timeout  time.Duration
	failures int
	creds    credentials.TransportCredentials
}

// newChecking is checking for the settings: plaintext, or TLS trusting tlsCA.
func newChecking(service string, interval, timeout time.Duration, failures int, tlsCA, serverName string) (checking, error) {
	creds := insecure.NewCredentials()
	if tlsCA != "" {
		var err error
		if creds, err = credentials.NewClientTLSFromFile(tlsCA, serverName); err != nil {
			return checking{}, err
		}
	}
	return checking{service: service, interval: interval, timeout: timeout, failures: failures, creds: creds}, nil
}

// checkReplica checks one replica until ctx ends, reporting to observations: a
// Health/Watch stream, so that NOT_SERVING (a replica draining) is seen the moment
// the replica says it, and the stream's end (the replica died) too; beside it a
// Health/Check every interval with a deadline of timeout, since a frozen replica keeps
// its stream open and silent (`failures` of them unanswered in a row: one late answer
// under load is not a frozen replica). Returns once its connection is closed.
func (c checking) checkReplica(ctx context.Context, address string, observations chan<- observation) error {
	conn, err := grpc.NewClient("passthrough:///"+address,
		grpc.WithTransportCredentials(c.creds),
		// A replica that was down is reconnected to within half a second of coming
		// back (grpc-go's default backoff grows to 2 minutes).
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: c.timeout,
		}))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }() // checks over: nothing to report
	client := healthpb.NewHealthClient(conn)
	report := func(o observation) {
		o.address = address
		select {
		case observations <- o:
		case <-ctx.Done():
		}
	}
	go c.watch(ctx, client, report)
	c.probe(ctx, client, report)
	return nil
}

// watch keeps a Health/Watch stream open, reporting each status it sends and its end.
func (c checking) watch(ctx context.Context, client healthpb.HealthClient, report func(observation)) {
	for ctx.Err() == nil {
		err := c.watchOnce(ctx, client, report)
		if ctx.Err() != nil {
			return
		}
		report(observation{watch: true, reason: status.Convert(err).Message()})
		// The next Watch waits for the connection (WaitForReady); this only keeps a
		// replica that ends streams at once from being called in a loop.
		sleep(ctx, c.interval)
	}
}

func (c checking) watchOnce(ctx context.Context, client healthpb.HealthClient, report func(observation)) error {
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: c.service}, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	for {
		reply, err := stream.Recv()
		if err != nil {
			return err
		}
		serving := reply.GetStatus() == healthpb.HealthCheckResponse_SERVING
		report(observation{watch: true, ok: serving, reason: reply.GetStatus().String()})
	}
}

// probe asks Health/Check every interval and reports when the replica stops answering
// (`failures` checks in a row unanswered in time) and when it answers again. The
// controller takes a replica as answering until told otherwise.
func (c checking) probe(ctx context.Context, client healthpb.HealthClient, report func(observation)) {
	answering, failed := true, 0
	for ctx.Err() == nil {
		answered, reason := c.checkOnce(ctx, client)
		if ctx.Err() != nil {
			return
		}
		if failed++; answered {
			failed = 0
		}
		if now := failed < c.failures; now != answering {
			answering = now
			report(observation{ok: now, reason: reason})
		}
		sleep(ctx, c.interval)
	}
}

// checkOnce is one Health/Check: whether the replica answered within the timeout (any
// status: NOT_SERVING is an answer too, and Watch reports it).
func (c checking) checkOnce(ctx context.Context, client healthpb.HealthClient) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	reply, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: c.service})
	if err != nil && status.Code(err) != codes.NotFound {
		return false, status.Convert(err).Message()
	}
	return true, reply.GetStatus().String()
}

func sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}
