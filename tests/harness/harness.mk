# The test harness's tools, included by the Makefile: only the container tests need them.
# None of this is needed to run grpctest; it exists because the machines the tests run on
# have no container registry and no running Docker engine.

# Debian's Docker engine and debootstrap (for offline base-image stand-ins).
DEBIAN_CONTAINER_PACKAGES := docker.io=20.10.24+dfsg1-1+deb12u1+b6 debootstrap=1.0.128+nmu2+deb12u2
# Docker Compose v2, built from its Go module where no `docker compose` is installed.
COMPOSE_VERSION := v2.31.0

.PHONY: base-images
base-images: setup ## No registry? Build offline stand-ins for the base images (test harness; needs a running engine)
	python -m grpctest_harness.base_images

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
