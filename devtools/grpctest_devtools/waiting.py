"""The one polling helper: wait until something is true, or fail saying what."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1
) -> float:
    """Polls predicate until it is true; returns the seconds it took.

    OSError from the predicate counts as "not yet" (connection refused, ...); after
    `timeout` seconds TimeoutError names `what` and the last such error.
    """
    start = time.monotonic()
    last_error: OSError | None = None
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return time.monotonic() - start
        except OSError as err:
            last_error = err
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout:.0f} s waiting for {what}"
        + (f" (last error: {last_error})" if last_error else "")
    )
