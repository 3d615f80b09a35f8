"""A docker compose project (Compose v2, `docker compose`), as the tests drive it."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from grpctest_devtools.repo import REPO
from grpctest_harness.docker_engine import sh


class ComposeProject:
    """`docker compose --project-name NAME --file FILE ...` for one project; `env`: the
    variables the compose file reads (docker-compose.yml's PORT_* host ports)."""

    def __init__(
        self,
        name: str,
        file: Path = REPO / "docker-compose.yml",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.file = file
        self.env = dict(env or {})

    def __call__(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Runs a compose command; RuntimeError with its output if it fails."""
        return sh(
            "docker", "compose", "--project-name", self.name, "--file", str(self.file), *args,
            timeout=timeout, cwd=self.file.parent, env={**os.environ, **self.env},
        )  # fmt: skip

    def _label(self, key: str, value: str) -> list[str]:
        return ["--filter", f"label=com.docker.compose.{key}={value}"]

    def containers(self, service: str, *, running_only: bool = True) -> list[str]:
        """The service's container IDs, by their number (py-server-1, -2, ...)."""
        listing = sh(
            "docker", "ps", *([] if running_only else ["--all"]),
            *self._label("project", self.name), *self._label("service", service),
            "--format", '{{.ID}} {{.Label "com.docker.compose.container-number"}}',
        ).stdout.split("\n")  # fmt: skip
        rows = [line.split() for line in listing if line.strip()]
        return [container for container, _ in sorted(rows, key=lambda row: int(row[1]))]

    def leftovers(self) -> list[str]:
        """Containers and networks of the project that still exist."""
        label = self._label("project", self.name)
        containers = sh("docker", "ps", "--all", "--quiet", *label).stdout.split()
        networks = sh("docker", "network", "ls", "--quiet", *label).stdout.split()
        return containers + networks


def inspect(container: str) -> dict:
    return json.loads(sh("docker", "inspect", container).stdout)[0]


def address(container: dict) -> str:
    """An inspected container's address on its one network ("" while it has none)."""
    networks = list((container["NetworkSettings"]["Networks"] or {}).values())
    return networks[0]["IPAddress"] if len(networks) == 1 else ""


class ExitWatch:
    """The exit code of a container's next exit, from Docker's `die` event.

    `docker inspect` cannot tell it once a restart policy has started the container
    again (the restart resets State.ExitCode to 0); the event keeps it. Start the watch
    before signalling: it sees every event from the moment it was created.
    """

    def __init__(self, container: str) -> None:
        self.container = container
        since = f"{time.time():.3f}"
        self._process = subprocess.Popen(
            ["docker", "events", "--since", since, "--filter", f"container={container}",
             "--filter", "event=die", "--format", "{{json .}}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self._events: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._events.put(line)

    def exit_code(self, timeout: float) -> int:
        """Waits for the container's exit (its die event); its exit code."""
        try:
            event = json.loads(self._events.get(timeout=timeout))
        except queue.Empty:
            what = f"container {self.container} did not exit within {timeout:.0f} s"
            raise TimeoutError(what) from None
        finally:
            self.close()
        return int(event["Actor"]["Attributes"]["exitCode"])

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(30)
