# The test harness's tools, included by the Makefile: only the container tests need them.
# None of this is needed to run grpctest; it exists because the machines the tests run on
# have no container registry and no running Docker engine.

# Debian's Docker engine and debootstrap (for offline base-image stand-ins), as
# PACKAGE:COMMAND:MINIMUM like the Makefile's DEBIAN_ packages: no exact build.
DEBIAN_CONTAINERS := docker.io:dockerd:20.10 debootstrap:debootstrap:1.0.128
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
	@tests/harness/debian-packages.sh $(DEBIAN_CONTAINERS)
	@docker compose version >/dev/null 2>&1 || $(MAKE) --no-print-directory compose-plugin

# Built once per version, like the Makefile's Go tools.
COMPOSE_BUILD := $(BIN)/compose@$(COMPOSE_VERSION)/cmd
$(COMPOSE_BUILD):
	GOBIN=$(@D) go install \
	  -ldflags "-X github.com/docker/compose/v2/internal.Version=$(COMPOSE_VERSION)" \
	  github.com/docker/compose/v2/cmd@$(COMPOSE_VERSION)

.PHONY: compose-plugin
compose-plugin: $(COMPOSE_BUILD) ## Build Docker Compose v2 (pinned) and install it as the `docker compose` plugin
	install -D -m 755 $(COMPOSE_BUILD) $(COMPOSE_PLUGIN)
