package main

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// replica is what the controller knows of one replica.
type replica struct {
	stop      context.CancelFunc // ends its checks
	serving   bool               // its Watch stream's last status was SERVING
	answering bool               // it answered its last Check in time
	watched   bool               // its Watch stream has said something (or failed)
	reason    string             // why it is unhealthy, for the log
	name      string             // the name it was found under (its endpoint's hostname)
}

func (r *replica) healthy() bool { return r.serving && r.answering }

// controller owns the replicas' state: it starts and stops their checks as discovery
// finds and loses them, folds in what the checks observe, and publishes every change.
// One goroutine (run) does all of it, so nothing here needs a lock.
type controller struct {
	checking     checking
	publisher    *publisher
	replicas     map[string]*replica
	observations chan observation
	discovered   bool // discovery has reported at least once
	published    bool // a first snapshot went out
}

func newController(c checking, p *publisher) *controller {
	return &controller{
		checking: c, publisher: p,
		replicas:     map[string]*replica{},
		observations: make(chan observation, 64),
	}
}

// run consumes discovery's reports until ctx ends. The first snapshot waits until
// every replica found has been heard from (its Watch stream said something, or its
// checks failed), at most as long as failing the checks takes, so that a restarted
// control plane never tells the data planes that healthy replicas are unhealthy just
// because it has not asked them yet.
func (c *controller) run(ctx context.Context, found <-chan []discovered) {
	var startup <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case addresses := <-found:
			c.update(ctx, addresses)
			if !c.discovered {
				c.discovered = true
				startup = time.After(time.Duration(c.checking.failures) * (c.checking.timeout + c.checking.interval))
			}
		case o := <-c.observations:
			c.observe(o)
		case <-startup:
			c.publishNow(ctx, "startup: not every replica answered yet")
		}
		if c.discovered && (c.published || c.allHeardFrom()) {
			c.publishNow(ctx, "")
		}
	}
}

// update starts checking new replicas and forgets those discovery no longer lists.
func (c *controller) update(ctx context.Context, found []discovered) {
	names := make(map[string]string, len(found))
	for _, d := range found {
		names[d.address] = d.name
	}
	slog.Info("replicas found", "addresses", sortedKeys(names))
	for address, r := range c.replicas {
		if name, listed := names[address]; !listed || name != r.name {
			r.stop()
			delete(c.replicas, address)
		}
	}
	for address, name := range names {
		if _, known := c.replicas[address]; known {
			continue
		}
		checkCtx, stop := context.WithCancel(ctx)
		c.replicas[address] = &replica{stop: stop, answering: true, reason: "not checked yet", name: name}
		go func() {
			if err := c.checking.checkReplica(checkCtx, address, c.observations); err != nil {
				slog.Error("cannot check replica", "address", address, "error", err)
			}
		}()
	}
}

// observe folds one observation into the replica's state and logs health changes.
func (c *controller) observe(o observation) {
	r, known := c.replicas[o.address]
	if !known {
		return // forgotten meanwhile
	}
	was := r.healthy()
	if o.watch {
		r.serving, r.watched = o.ok, true
	} else {
		r.answering = o.ok
	}
	if !o.ok {
		r.reason = o.reason
	}
	if now := r.healthy(); now != was {
		if now {
			slog.Info("replica healthy", "address", o.address)
		} else {
			slog.Warn("replica unhealthy", "address", o.address, "reason", r.reason)
		}
	}
}

func (c *controller) allHeardFrom() bool {
	for _, r := range c.replicas {
		if !r.watched && r.answering {
			return false
		}
	}
	return true
}

// endpointState is what the data planes are told of one replica.
type endpointState struct {
	healthy  bool
	hostname string
}

// health is every replica's address, whether it is healthy and its name. Late answers never take
// the last replicas out: when every replica that says SERVING is failing its checks at
// once, the control plane is more likely looking at overload (or is starved itself)
// than at frozen replicas, and publishing none would make slowness an outage; those
// replicas stay healthy (Envoy's own checks and outlier detection still judge them).
func (c *controller) health() (health map[string]endpointState, kept bool) {
	health = make(map[string]endpointState, len(c.replicas))
	anyHealthy := false
	for address, r := range c.replicas {
		health[address] = endpointState{r.healthy(), r.name}
		anyHealthy = anyHealthy || r.healthy()
	}
	for address, r := range c.replicas {
		if !anyHealthy && r.serving {
			health[address], kept = endpointState{true, r.name}, true
		}
	}
	return health, kept
}

// publishNow publishes the replicas' health if it changed since the last snapshot.
func (c *controller) publishNow(ctx context.Context, note string) {
	health, kept := c.health()
	if kept {
		note = "every replica that says SERVING is failing its checks: kept them"
	}
	if err := c.publisher.publish(ctx, health, note); err != nil {
		slog.Error("cannot publish", "error", err)
		return
	}
	c.published = true
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
