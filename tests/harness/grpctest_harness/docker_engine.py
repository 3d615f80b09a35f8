"""A Docker engine for the container tests: started if none runs, stopped again.

Only an engine started here is stopped here; one that was already running is used
and left alone.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grpctest_devtools.waiting import wait_until

log = logging.getLogger(__name__)


def sh(*argv: str, timeout: float = 900, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Runs a command; RuntimeError with its output if it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def engine_running() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


class DockerEngine:
    """`with DockerEngine(log_path):` a running engine inside the block.

    `argv`: how to start one (an engine with paths of its own: its own flags, and
    DOCKER_HOST naming its socket in this process's environment).
    """

    def __init__(self, log_path: Path, argv: Sequence[str] = ("dockerd",)) -> None:
        self.log_path = log_path
        self.argv = list(argv)
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DockerEngine:
        if engine_running():
            log.info("using the Docker engine that is already running")
            return self
        if shutil.which("dockerd") is None:
            raise RuntimeError(
                "no Docker engine running and no dockerd installed: "
                "run `make test-containers`, which installs Debian's docker.io"
            )
        with self.log_path.open("wb") as log_file:
            self._process = subprocess.Popen(
                self.argv, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_until(lambda: self._alive() and engine_running(), 60, "dockerd to answer", 0.5)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _alive(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(
                f"dockerd exited; see {self.log_path}:\n"
                + self.log_path.read_text(errors="replace")[-3000:]
            )
        return True

    def __exit__(self, *exc: object) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
