# grpctest: every entry point a person types. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

# Pinned tool versions (Python and Go libraries are pinned in the requirements files
# and go-client/go.mod).
PROTOC_GEN_GO_VERSION      := v1.36.11
PROTOC_GEN_GO_GRPC_VERSION := v1.6.1
GRPCURL_VERSION            := v1.9.3

PYTHON_BOOTSTRAP ?= python3
VENV   := .venv
PYTHON := $(VENV)/bin/python
BIN    := $(CURDIR)/bin
export GOBIN := $(BIN)
export CGO_ENABLED := 0

GO_CLIENT := $(BIN)/go-client
GRPCURL   := $(BIN)/grpcurl
PROTOC_PLUGINS := $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc
PYTEST_ARGS ?=

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- set-up --------------------------------------------------------------------------

$(PYTHON): requirements-dev.txt py-server/requirements.txt py-client/requirements.txt bench/requirements.txt
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --requirement requirements-dev.txt
	@# Make the generated stubs importable as `grpctest.grpctest_pb2` in the venv.
	echo "$(CURDIR)/proto/python" > "$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/grpctest-stubs.pth"
	touch $(PYTHON)

$(GO_CLIENT): go-client/go.mod go-client/go.sum $(wildcard go-client/*.go go-client/grpctestpb/*.go)
	cd go-client && go build -trimpath -ldflags='-s -w' -o $(GO_CLIENT) .

$(BIN)/protoc-gen-go:
	go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(BIN)/protoc-gen-go-grpc:
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

$(GRPCURL):
	go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

.PHONY: setup
setup: $(PYTHON) $(GO_CLIENT) $(GRPCURL) $(PROTOC_PLUGINS) ## Create the Python venv, build the Go client, install pinned tools

# --- the local run (no container engine) ---------------------------------------------

.PHONY: demo
demo: setup ## Start 3 replicas + Envoy, call through Envoy with both clients, stop
	$(PYTHON) local/stack.py demo

.PHONY: run
run: setup ## Start 3 replicas + Envoy on :8080 in the foreground until Ctrl-C
	$(PYTHON) local/stack.py run

.PHONY: client
client: setup ## Call the running stack with both clients (ARGS="--count 10")
	$(PYTHON) py-client/client.py $(or $(ARGS),--count 6)
	$(GO_CLIENT) $(or $(ARGS),--count 6)

# --- containers (docker compose) -------------------------------------------------------------

COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: up
up: ## Build and start the compose topology in the background (3 replicas + Envoy on :8080)
	$(COMPOSE) up --build --detach

.PHONY: down
down: ## Stop and remove the compose topology
	$(COMPOSE) --profile clients down --remove-orphans

.PHONY: logs
logs: ## Follow the compose topology's logs
	$(COMPOSE) logs --follow

.PHONY: ps
ps: ## Show the compose topology's containers and their health
	$(COMPOSE) ps

# --- benchmark ------------------------------------------------------------------------------

# h2load, the load generator of `make bench` (Debian's nghttp2-client, pinned).
NGHTTP2_CLIENT := nghttp2-client=1.52.0-1+deb12u3
.PHONY: bench-tools
bench-tools:
	@command -v h2load >/dev/null || { echo "installing $(NGHTTP2_CLIENT)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(NGHTTP2_CLIENT); }

.PHONY: bench
bench: setup bench-tools ## Benchmark gRPC vs REST, Envoy's cost, replica scaling (a few minutes)
	$(PYTHON) bench/run.py

# --- TLS ----------------------------------------------------------------------------------

.PHONY: certs
certs: ## Create the development CA and Envoy's TLS certificate in certs/ (kept if present)
	certs/generate.sh

# --- code generation -------------------------------------------------------------------

.PHONY: proto
proto: $(PYTHON) $(PROTOC_PLUGINS) ## Regenerate the Python and Go code from proto/
	PATH="$(BIN):$$PATH" PYTHON=$(abspath $(PYTHON)) proto/generate.sh

# --- checks -----------------------------------------------------------------------------

.PHONY: test
test: test-local test-compose ## Run every test (what CI runs): test-local, then test-compose

.PHONY: test-local
test-local: setup bench-tools ## Fast tests: unit, Go client, local stack through Envoy, drift check
	cd go-client && go vet ./... && GRPCTEST_PYTHON=$(CURDIR)/$(PYTHON) go test -count=1 ./...
	PATH="$(BIN):$$PATH" $(PYTHON) -m pytest --ignore=tests/test_compose.py $(PYTEST_ARGS)

.PHONY: test-compose
test-compose: setup container-tools ## The compose topology on a real Docker engine (slow)
	PATH="$(BIN):$$PATH" $(PYTHON) -m pytest tests/test_compose.py $(PYTEST_ARGS)

# Debian's Docker engine, Compose v1 and debootstrap (for offline base-image stand-ins).
DEBIAN_CONTAINER_PACKAGES := docker.io=20.10.24+dfsg1-1+deb12u1+b6 docker-compose=1.29.2-3 \
                             debootstrap=1.0.128+nmu2+deb12u2
.PHONY: container-tools
container-tools:
	@if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null \
	    || ! { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; }; then \
	  echo "installing $(DEBIAN_CONTAINER_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_CONTAINER_PACKAGES); \
	fi

.PHONY: lint
lint: setup ## Static checks: gofmt, go vet, ruff (generated code excluded)
	test -z "$$(gofmt -l go-client)" || { gofmt -l go-client; exit 1; }
	cd go-client && go vet ./...
	$(VENV)/bin/ruff check --select F,E9 --exclude proto/python py-server py-client local tests bench

.PHONY: clean
clean: ## Remove the venv and built binaries
	rm -rf $(VENV) $(BIN)
