# grpctest: every entry point a person types. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

# --- pinned tools ------------------------------------------------------------------------
# One place per ecosystem: Python packages in uv.lock (uv itself: required-version in
# pyproject.toml); Go libraries and the protoc plugins in go-client/go.mod; the web
# page's npm packages in web/package-lock.json; Go programs and Debian packages here.
UV_VERSION      := $(shell sed -n 's/^required-version = "==\(.*\)"$$/\1/p' pyproject.toml)
BUF_VERSION     := v1.75.0
GRPCURL_VERSION := v1.9.3
GHZ_VERSION     := v0.121.0
HEALTH_PROBE_VERSION := v0.4.62
H2SPEC_VERSION  := v2.2.1+incompatible
# h2load, the load generator of `make bench` (Debian's nghttp2-client).
NGHTTP2_CLIENT  := nghttp2-client=1.52.0-1+deb12u3
# The browser the web page's test drives (Debian's Chromium).
CHROMIUM        := chromium=156.0.8078.108-1~deb12u1
# The metrics backend of the observability test and `make observe` (Debian's Prometheus).
PROMETHEUS      := prometheus=2.42.0+ds-5+deb12u1
# Jaeger, the tracing backend, is pinned in tools/jaeger/go.mod (a module of its own).
# Debian's Docker engine and debootstrap (for offline base-image stand-ins).
DEBIAN_CONTAINER_PACKAGES := docker.io=20.10.24+dfsg1-1+deb12u1+b6 debootstrap=1.0.128+nmu2+deb12u2
# Docker Compose v2, built from its Go module where no `docker compose` is installed.
COMPOSE_VERSION := v2.31.0
# Renders deploy/kubernetes (`make k8s`); the Kubernetes versions the manifests are
# validated against are in tests/test_kubernetes.py.
KUSTOMIZE_VERSION := v5.7.1

# The Python that creates the venv (read before PATH below puts the venv's first).
PYTHON_BOOTSTRAP ?= python3
BOOTSTRAP := $(shell command -v $(PYTHON_BOOTSTRAP))
VENV := $(CURDIR)/.venv
BIN  := $(CURDIR)/bin
# The venv's programs (grpctest-*, python, envoy) and bin/'s (go-client, grpcurl, buf)
# come first for every command below.
export PATH := $(VENV)/bin:$(BIN):$(PATH)
export GOBIN := $(BIN)
export CGO_ENABLED := 0
# uv: use this machine's Python, never download one.
export UV_PYTHON_DOWNLOADS := never

UV_DIST   := $(BIN)/uv-$(UV_VERSION)
UV        := $(BIN)/uv
SYNCED    := $(VENV)/.synced
NODE_MODULES := web/node_modules/.package-lock.json
GO_CLIENT := $(BIN)/go-client
GO_TOOLS  := $(BIN)/buf $(BIN)/grpcurl $(BIN)/ghz $(BIN)/grpc-health-probe \
             $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/kustomize
PYTEST_ARGS ?=

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- set-up --------------------------------------------------------------------------------

$(UV_DIST)/bin/uv:
	$(BOOTSTRAP) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
	  --target $(UV_DIST) uv==$(UV_VERSION)

$(UV): $(UV_DIST)/bin/uv
	ln -sf $(notdir $(UV_DIST))/bin/uv $@

# Every Python project of the workspace, editable, exactly as uv.lock says (--locked:
# a lock file that no longer matches the pyproject.toml files is an error).
$(SYNCED): $(UV) uv.lock pyproject.toml $(wildcard */pyproject.toml proto/python/pyproject.toml)
	$(UV) sync --locked --python $(BOOTSTRAP)
	touch $@

$(GO_CLIENT): go-client/go.mod go-client/go.sum $(wildcard go-client/*.go go-client/grpctestpb/*.go)
	cd go-client && go build -trimpath -ldflags='-s -w' -o $@ .

# protoc-gen-go and protoc-gen-go-grpc: the tool directives of go-client/go.mod.
$(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc &: go-client/go.mod
	cd go-client && go install tool

$(BIN)/buf: Makefile
	go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(BIN)/grpcurl: Makefile
	go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

$(BIN)/ghz: Makefile
	go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

$(BIN)/grpc-health-probe: Makefile
	go install github.com/grpc-ecosystem/grpc-health-probe@$(HEALTH_PROBE_VERSION)

$(BIN)/kustomize: Makefile
	go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
$(BIN)/h2spec: Makefile
	go install github.com/summerwind/h2spec/cmd/h2spec@$(H2SPEC_VERSION)

# A large build (minutes the first time), so only for what needs it.
$(BIN)/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && go install tool

.PHONY: observability-tools
observability-tools: $(BIN)/jaeger
	@command -v prometheus >/dev/null || { echo "installing $(PROMETHEUS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(PROMETHEUS); }

# The web page's packages, exactly as web/package-lock.json says.
$(NODE_MODULES): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

.PHONY: setup
setup: $(SYNCED) $(GO_CLIENT) $(GO_TOOLS) ## Install everything pinned: the Python workspace (.venv), go-client and tools (bin/)

.PHONY: grpcurl
grpcurl: $(BIN)/grpcurl ## Install grpcurl (pinned) as bin/grpcurl

# --- the local run (no container engine) ---------------------------------------------------

.PHONY: demo
demo: setup ## Start 3 replicas + Envoy, call through Envoy with both clients, stop
	grpctest-local demo

.PHONY: run
run: setup ## Start 3 replicas + Envoy on :8080 in the foreground until Ctrl-C
	grpctest-local run

.PHONY: observe
observe: setup observability-tools ## Like `make run`, plus Prometheus (:9090) and Jaeger (:16686) collecting metrics and traces
	grpctest-local run --observe

.PHONY: client
client: setup ## Call the running stack with both clients (ARGS="--mode server-stream --count 10")
	grpctest-client $(or $(ARGS),--count 6)
	go-client $(or $(ARGS),--count 6)

# --- the web page ----------------------------------------------------------------------------

.PHONY: web
web: $(NODE_MODULES) ## Build the web page (web/dist, served by Envoy at /) from web/src
	cd web && npm run build

.PHONY: web-tools
web-tools:
	@command -v chromium >/dev/null || { echo "installing $(CHROMIUM)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(CHROMIUM); }

.PHONY: screenshot
screenshot: setup web-tools ## Use the web page in Chromium and save docs/web-page.png (stops what it starts)
	grpctest-local screenshot

# --- containers (Docker Compose v2) ---------------------------------------------------------

.PHONY: up
up: ## Build and start the compose topology; returns once every replica is healthy
	docker compose up --build --detach --wait

.PHONY: down
down: ## Stop and remove the compose topology
	docker compose --profile clients down --remove-orphans

.PHONY: logs
logs: ## Follow the compose topology's logs
	docker compose logs --follow

.PHONY: ps
ps: ## Show the compose topology's containers, their health, and the run-once jobs
	docker compose ps --all

.PHONY: base-images
base-images: setup ## No registry? Build offline stand-ins for the base images (needs a running engine)
	grpctest-base-images

# What the container tests need: a Docker engine (dockerd), debootstrap, and Compose v2
# as a Docker CLI plugin (where Docker looks for it: $DOCKER_CONFIG/cli-plugins).
DOCKER_CONFIG ?= $(HOME)/.docker
COMPOSE_PLUGIN := $(DOCKER_CONFIG)/cli-plugins/docker-compose

.PHONY: container-tools
container-tools:
	@if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then \
	  echo "installing $(DEBIAN_CONTAINER_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_CONTAINER_PACKAGES); \
	fi
	@docker compose version >/dev/null 2>&1 || $(MAKE) --no-print-directory compose-plugin

.PHONY: compose-plugin
compose-plugin: ## Build Docker Compose v2 (pinned) and install it as the `docker compose` plugin
	mkdir -p $(dir $(COMPOSE_PLUGIN))
	GOBIN=$(BIN)/compose go install \
	  -ldflags "-X github.com/docker/compose/v2/internal.Version=$(COMPOSE_VERSION)" \
	  github.com/docker/compose/v2/cmd@$(COMPOSE_VERSION)
	install -m 755 $(BIN)/compose/cmd $(COMPOSE_PLUGIN)

# --- Kubernetes -----------------------------------------------------------------------------

KUSTOMIZE_OVERLAY ?= deploy/kubernetes/overlays/kind
.PHONY: k8s
k8s: $(BIN)/kustomize ## Print the Kubernetes manifests (`make -s k8s | kubectl apply -f -`); needs `make certs`
	@# The overlay reads envoy/, web/dist/ and certs/ from outside its folder.
	@kustomize build --load-restrictor LoadRestrictionsNone $(KUSTOMIZE_OVERLAY)

# The single-node cluster the manifests run on in `make test-cluster`: Kubernetes and
# etcd as pinned by tools/kubernetes/go.mod, CoreDNS by COREDNS_VERSION, built (under
# nice: a large build) once per version into a cache folder outside the checkout;
# containerd (with runc), the CNI plugins and iptables from Debian.
KUBERNETES_VERSION := $(shell sed -n 's/^\tk8s.io\/kubernetes \(v[0-9.]*\).*/\1/p' tools/kubernetes/go.mod)
# The CoreDNS kubeadm v1.34 deploys.
COREDNS_VERSION := v1.12.1
CLUSTER_DEBIAN_PACKAGES := docker.io debootstrap containernetworking-plugins iptables conntrack
CLUSTER_BIN := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/grpctest/kubernetes-$(KUBERNETES_VERSION)
CLUSTER_COMPONENTS := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
KUBERNETES_MINOR := $(word 2,$(subst ., ,$(KUBERNETES_VERSION)))
# Without these, `--version` says v0.0.0-master (and kubectl warns about the skew).
KUBERNETES_LDFLAGS := -s -w $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(p).gitVersion=$(KUBERNETES_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=$(KUBERNETES_MINOR) \
  -X $(p).gitTreeState=clean)

$(addprefix $(CLUSTER_BIN)/,$(CLUSTER_COMPONENTS)): $(CLUSTER_BIN)/%: tools/kubernetes/go.mod tools/kubernetes/go.sum
	cd tools/kubernetes && nice -n 19 go build -trimpath -ldflags '$(KUBERNETES_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/$*

$(CLUSTER_BIN)/etcd: tools/kubernetes/go.mod tools/kubernetes/go.sum
	cd tools/kubernetes && nice -n 19 go build -trimpath -ldflags '-s -w' -o $@ go.etcd.io/etcd/server/v3

$(CLUSTER_BIN)/coredns: Makefile
	GOBIN=$(CLUSTER_BIN) nice -n 19 go install github.com/coredns/coredns@$(COREDNS_VERSION)

.PHONY: cluster-tools
cluster-tools: $(addprefix $(CLUSTER_BIN)/,$(CLUSTER_COMPONENTS) etcd coredns) ## Build the test cluster (Kubernetes $(KUBERNETES_VERSION), etcd, CoreDNS) into ~/.cache/grpctest
	@if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null || \
	    ! command -v iptables >/dev/null || [ ! -x /usr/lib/cni/bridge ]; then \
	  echo "installing $(CLUSTER_DEBIAN_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(CLUSTER_DEBIAN_PACKAGES); \
	fi

# --- benchmark ------------------------------------------------------------------------------

# The benchmark's grpc-go baseline (bench/go-server, a module of its own).
$(BIN)/bench-go-server: bench/go-server/go.mod bench/go-server/go.sum bench/go-server/main.go $(wildcard go-client/grpctestpb/*.go)
	cd bench/go-server && go build -trimpath -o $@ .
.PHONY: bench-tools
bench-tools: $(BIN)/bench-go-server
	@command -v h2load >/dev/null || { echo "installing $(NGHTTP2_CLIENT)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(NGHTTP2_CLIENT); }

.PHONY: bench
bench: setup bench-tools observability-tools ## Every layer's cost beside its floor, scaling, levers, gRPC vs REST (about 10 minutes)
	grpctest-bench

.PHONY: soak
soak: setup ## 2 x 100,000 calls, 1,000 in flight over 100 connections, through Envoy; memory before/after
	grpctest-soak

.PHONY: h2spec
h2spec: setup $(BIN)/h2spec ## HTTP/2 conformance (h2spec) of Envoy's :8080; needs `make run` in another terminal
	h2spec -h 127.0.0.1 -p 8080 -P /grpctest.Grpctest/GetServerResponse || true

# --- TLS ----------------------------------------------------------------------------------

.PHONY: certs
certs: ## Create the development CA and Envoy's TLS certificate in certs/ (kept if present)
	certs/generate.sh

# --- code generation ---------------------------------------------------------------------

.PHONY: proto
proto: $(SYNCED) $(NODE_MODULES) $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc ## Regenerate Python, Go and JavaScript from proto/, and Envoy's descriptor set
	buf generate
	@# For Envoy's gRPC-JSON transcoder: the contract and its imports, no source info.
	buf build --as-file-descriptor-set --exclude-source-info -o envoy/grpctest.binpb

# --- checks -------------------------------------------------------------------------------

.PHONY: test
test: lint test-local test-containers ## Run every check (what CI runs): lint, test-local, test-containers
.PHONY: test-local
test-local: setup $(NODE_MODULES) bench-tools web-tools observability-tools ## Fast tests: unit, Go client, the local stack through Envoy, browser, manifests, contract and drift
	cd go-client && go test -count=1 ./...
	pytest -m "not containers and not cluster" $(PYTEST_ARGS)

.PHONY: test-containers
test-containers: setup container-tools ## Compose and a two-node Swarm on real Docker engines (slow)
	pytest -m containers $(PYTEST_ARGS)

.PHONY: test-cluster
test-cluster: setup cluster-tools ## The Kubernetes manifests on a single-node cluster built here, under load and faults (slow; root)
	GRPCTEST_CLUSTER_BIN=$(CLUSTER_BIN) pytest -m cluster $(PYTEST_ARGS)

.PHONY: lint
lint: setup ## Static checks: ruff (lint and format), gofmt, go vet, buf lint
	ruff check .
	ruff format --check .
	test -z "$$(gofmt -l go-client bench/go-server)" || { gofmt -l go-client bench/go-server; exit 1; }
	cd go-client && go vet ./...
	cd bench/go-server && go vet ./...
	buf lint
	buf format --diff --exit-code

.PHONY: format
format: setup ## Rewrite Python, Go and proto files in their canonical format
	ruff check --fix .
	ruff format .
	gofmt -w go-client bench/go-server
	buf format --write

.PHONY: clean
clean: ## Remove the venv and the installed binaries
	rm -rf $(VENV) $(BIN)
