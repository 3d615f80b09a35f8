"""Free and busy TCP ports on loopback."""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"
# How many ports below the kernel's ephemeral range free ports come from.
POOL_SIZE = 10_000
# Every port handed out by this process: never handed out twice.
_handed_out: set[int] = set()


def _pool() -> range:
    """Ports below the kernel's ephemeral range (ip_local_port_range): an outgoing
    connection (Envoy's health checks, a client) takes its local port from that range,
    so it could take a port the kernel picked for us before a server binds it."""
    first_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return range(max(1024, first_ephemeral - POOL_SIZE), first_ephemeral)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port_block(size: int) -> int:
    """A first port such that it and the next size-1 ports are all free, outside the
    kernel's ephemeral range and not handed out before by this process."""
    pool = _pool()
    for _ in range(1000):
        base = random.randrange(pool.start, pool.stop - size + 1)
        block = range(base, base + size)
        if not _handed_out.intersection(block) and all(_bindable(p) for p in block):
            _handed_out.update(block)
            return base
    raise RuntimeError("no block of free ports found")


def free_port() -> int:
    """A port nothing listens on right now (see free_port_block)."""
    return free_port_block(1)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((LOOPBACK, port)) == 0
