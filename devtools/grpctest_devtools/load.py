"""Steady client load in a background thread, for the fault tests."""

from __future__ import annotations

import collections
import threading
import time

import grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc


class Load:
    """Calls GetServerResponse back to back on one channel until stopped.

    Records which replica answered each call, and every failure with its status.
    Bounded: it stops by itself after max_seconds.
    """

    def __init__(self, target: str, max_seconds: float = 120) -> None:
        self.target = target
        self.max_seconds = max_seconds
        self.answers: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with grpc.insecure_channel(self.target) as channel:
            stub = grpctest_pb2_grpc.GrpctestStub(channel)
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    reply = stub.GetServerResponse(grpctest_pb2.Message(message="load"), timeout=5)
                    self.answers.append((time.monotonic(), reply.replica))
                except grpc.RpcError as err:
                    self.failures.append(f"{err.code().name}: {err.details()}")

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    @property
    def sent(self) -> int:
        return len(self.answers) + len(self.failures)

    def replicas_since(self, since: float) -> collections.Counter[str]:
        return collections.Counter(r for t, r in self.answers if t >= since)
