"""One supervised child process, and signals turned into KeyboardInterrupt.

Every child started here is stopped again by its owner (SIGTERM, then SIGKILL), and
also gets SIGTERM from the kernel if the supervising process dies without cleaning up:
it is started through util-linux's `setpriv --pdeathsig TERM`, which sets the parent-death
signal (PR_SET_PDEATHSIG) and execs the program. (Setting it from Python between fork and
exec, with preexec_fn, can deadlock the child when the parent runs threads.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

DIE_WITH_PARENT = ("setpriv", "--pdeathsig", "TERM", "--")


class Process:
    """One supervised child: how to start it, and the running process."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`env`: variables set for this process on top of this one's environment."""
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env or {})
        self.restarts = 0
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def start(self) -> None:
        if self.log_path is not None and self._log_file is None:
            self._log_file = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self._popen = subprocess.Popen(
            [*DIE_WITH_PARENT, *self.argv],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT if self._log_file else None,
            # Own process group: a terminal's Ctrl-C reaches only the supervisor, which
            # then stops the children in order.
            start_new_session=True,
        )

    def restart(self) -> None:
        """Starts it again after it exited (what a restart policy does)."""
        self.restarts += 1
        log.warning(
            "%s exited with code %s; restarting it (restart #%s)",
            self.name,
            self.returncode,
            self.restarts,
        )
        self.start()

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def resident_mb(self) -> float:
        """Its resident memory (RSS) in MB, from /proc; 0 if it is not running."""
        if not self.running or self.pid is None:
            return 0.0
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code once it has exited; None while it runs or before it started."""
        return self._popen.poll() if self._popen is not None else None

    def signal(self, sig: int) -> None:
        if self.running and self._popen is not None:
            self._popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Waits for it to exit; returns the exit code (TimeoutExpired after timeout)."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._popen.wait(timeout)

    def stop(self, timeout: float) -> int | None:
        """SIGTERM, then SIGKILL after timeout seconds; returns the exit code."""
        if self._popen is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
            self._popen.kill()
            self._popen.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self._popen.returncode

    def check_alive(self) -> bool:
        """Raises with the log's last lines if it has exited; else True (for wait_until
        predicates: a process that died fails the wait at once, saying why)."""
        if self.returncode is not None:
            raise RuntimeError(f"{self.name} exited with code {self.returncode}; {self.log_tail()}")
        return True

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of its log, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"last lines of {self.log_path}:\n" + "\n".join(tail)


@contextlib.contextmanager
def signals_raise_interrupt() -> Iterator[None]:
    """Turns SIGINT and SIGTERM into KeyboardInterrupt, so both take the same cleanup path.

    SIGINT is set explicitly: a shell starts background jobs with SIGINT ignored, and
    Python then would not raise KeyboardInterrupt on Ctrl-C / kill -INT.
    """

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
