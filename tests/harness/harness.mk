# The test harness's tools, included by the Makefile: the container and cluster tests
# (`make test-all`) need them, and the hostile-load table is made with them. None of this is
# needed to run grpctest; it exists because the machines the tests run on have no container
# registry and no running Docker engine.

##@ Test harness (tests/harness: the test suites' own tools, no part of grpctest)

# The hostile-load test's attacks at full size (tests/test_hostile_load.py runs them smaller):
# every attack at the issue's sizes and at ten times them, each on a fresh local stack,
# printed as a markdown table (docs/failure-behaviour.md has the last one).
# HOSTILE_ARGS="--only unread-streams --times 1 --output trials.jsonl --logs logs/" for part.
HOSTILE_ARGS ?=
.PHONY: hostile-load
hostile-load: $(SYNCED) $(GO_SERVER) ## One client attacking the local stack while honest callers call: every attack at the issue's sizes and 10x, as a table (about 25 minutes)
	python -m grpctest_harness.hostile_load $(HOSTILE_ARGS)

# Debian's Docker engine and debootstrap (for offline base-image stand-ins), as
# PACKAGE:COMMAND:MINIMUM like the Makefile's DEBIAN_ packages: no exact build.
DEBIAN_CONTAINERS := docker.io:dockerd:20.10 debootstrap:debootstrap:1.0.128
# Docker Compose v2, built from its Go module where no `docker compose` is installed.
COMPOSE_VERSION := v2.31.0

.PHONY: base-images
base-images: $(SYNCED) ## No registry? Build offline stand-ins for the base images (test harness; needs a running engine)
	python -m grpctest_harness.base_images

# What the container tests need: a Docker engine (dockerd), debootstrap, and Compose v2
# as a Docker CLI plugin (where Docker looks for it: $DOCKER_CONFIG/cli-plugins).
DOCKER_CONFIG ?= $(HOME)/.docker
COMPOSE_PLUGIN := $(DOCKER_CONFIG)/cli-plugins/docker-compose

.PHONY: container-tools
container-tools:
	@tests/harness/debian-packages.sh $(DEBIAN_CONTAINERS)
	@docker compose version >/dev/null 2>&1 || $(MAKE) --no-print-directory compose-plugin

# Built once per version, like the Makefile's Go tools.
COMPOSE_BUILD := $(BIN)/compose@$(COMPOSE_VERSION)/cmd
$(COMPOSE_BUILD):
	GOBIN=$(@D) $(STATIC) go install \
	  -ldflags "-X github.com/docker/compose/v2/internal.Version=$(COMPOSE_VERSION)" \
	  github.com/docker/compose/v2/cmd@$(COMPOSE_VERSION)

.PHONY: compose-plugin
compose-plugin: $(COMPOSE_BUILD) ## Build Docker Compose v2 (pinned) and install it as the `docker compose` plugin
	install -D -m 755 $(COMPOSE_BUILD) $(COMPOSE_PLUGIN)

# The single-node cluster the manifests run on in `make test-cluster`: Kubernetes and
# etcd as pinned by tools/kubernetes/go.mod, CoreDNS by COREDNS_VERSION, built (under
# nice: a large build) once per version into a cache folder outside the checkout;
# containerd (with runc), the CNI plugins and iptables from Debian.
KUBERNETES_VERSION := $(shell sed -n 's/^\tk8s.io\/kubernetes \(v[0-9.]*\).*/\1/p' tools/kubernetes/go.mod)
# The CoreDNS kubeadm v1.34 deploys.
COREDNS_VERSION := v1.12.1
# PACKAGE:COMMAND:MINIMUM, as tests/harness/debian-packages.sh takes them.
DEBIAN_CLUSTER := containernetworking-plugins:/usr/lib/cni/bridge:1.1 iptables:iptables:1.8 \
  conntrack:conntrack:1.4
# Named for the version and for what tools/kubernetes pins (a hash of its go.mod and go.sum),
# so a fresh checkout finds the binaries already built, and a new pin builds them anew.
CLUSTER_PINS := $(shell cat tools/kubernetes/go.mod tools/kubernetes/go.sum | sha256sum | cut -c1-12)
XDG_CACHE_HOME ?=
CLUSTER_BIN := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/grpctest/kubernetes-$(KUBERNETES_VERSION)-$(CLUSTER_PINS)
CLUSTER_COMPONENTS := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
KUBERNETES_MINOR := $(word 2,$(subst ., ,$(KUBERNETES_VERSION)))
# Without these, `--version` says v0.0.0-master (and kubectl warns about the skew).
KUBERNETES_LDFLAGS := -s -w $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(p).gitVersion=$(KUBERNETES_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=$(KUBERNETES_MINOR) \
  -X $(p).gitTreeState=clean)

# All in one `go build` (a grouped target): the packages they share compile once, where
# one build per program, side by side under make -j, would compile them once each.
$(addprefix $(CLUSTER_BIN)/,$(CLUSTER_COMPONENTS)) &:
	mkdir -p $(CLUSTER_BIN)
	cd tools/kubernetes && GOWORK=off $(STATIC) nice -n 19 go build -trimpath -ldflags '$(KUBERNETES_LDFLAGS)' \
	  -o $(CLUSTER_BIN)/ $(addprefix k8s.io/kubernetes/cmd/,$(CLUSTER_COMPONENTS))

$(CLUSTER_BIN)/etcd:
	cd tools/kubernetes && GOWORK=off $(STATIC) nice -n 19 go build -trimpath -ldflags '-s -w' -o $@ go.etcd.io/etcd/server/v3

# Once per version, like the Makefile's Go tools (and linked the same way).
$(CLUSTER_BIN)/coredns: $(CLUSTER_BIN)/coredns@$(COREDNS_VERSION)/coredns FORCE
	@ln -sfn coredns@$(COREDNS_VERSION)/coredns $@
$(CLUSTER_BIN)/coredns@$(COREDNS_VERSION)/coredns:
	GOBIN=$(@D) $(STATIC) nice -n 19 go install github.com/coredns/coredns@$(COREDNS_VERSION)

.PHONY: cluster-tools
CLUSTER_TOOLS := $(addprefix $(CLUSTER_BIN)/,$(CLUSTER_COMPONENTS) etcd coredns)
cluster-tools: $(CLUSTER_TOOLS) ## Build the test cluster (Kubernetes and etcd as tools/kubernetes pins them, CoreDNS) into ~/.cache/grpctest
	@tests/harness/debian-packages.sh $(DEBIAN_CONTAINERS) $(DEBIAN_CLUSTER)
