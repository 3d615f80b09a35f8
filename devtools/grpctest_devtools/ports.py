"""Free and busy TCP ports on loopback."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((LOOPBACK, port)) == 0


def free_port_block(size: int) -> int:
    """A first port such that it and the next size-1 ports are all free."""
    for _ in range(50):
        base = free_port()
        if base + size < 65536 and not any(port_in_use(base + i) for i in range(size)):
            return base
    raise RuntimeError("no block of free ports found")
