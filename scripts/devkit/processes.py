"""Processes and ports on this machine: the checkout's root, scratch files, free ports, stopping.

Every process the toolkit starts runs in a session of its own, so that stopping it stops its
children too.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

#: The checkout: scripts/devkit/ is two levels below it.
ROOT = Path(__file__).resolve().parents[2]

_SCRATCH: Path | None = None


def scratch_dir(kind: str) -> Path:
    """A fresh directory for one server's or stack's files (logs, ACL, data).

    All of them live under one directory per process, removed when the process exits: the
    logs stay readable after a stop, for assertions and failure reports, and nothing is left
    behind in /tmp.
    """
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix="canaduck-dev-"))
        atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=_SCRATCH))


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` different TCP ports nobody listens on right now, on 127.0.0.1. Held open
    together while chosen: two calls of `free_port` may give the same port, freed by the first
    (a replica's IRC port and its HTTP port were once one, and it could not start)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


#: Where port blocks are looked for: below Linux's ephemeral range (32768-60999), whose ports
#: a busy machine fills with TIME-WAIT connections (thousands during a benchmark), and above
#: the ports people pick by hand.
BLOCK_RANGE = (20000, 32768)


def free_port_block(size: int) -> int:
    """A base port with `size` free ports after it (the local stack's CANADUCK_PORT_BASE).

    A port counts as free when a listener could bind it with SO_REUSEADDR, as Hypercorn,
    Caddy and valkey-server do: a TIME-WAIT connection on it does not stop them.
    """
    low, high = BLOCK_RANGE
    for _ in range(200):
        base = random.randrange(low, high - size - 1)
        ports = []
        try:
            for offset in range(1, size + 1):
                sock = socket.socket()
                ports.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in ports:
                sock.close()
    raise RuntimeError(f"no block of {size} free ports between {low} and {high}")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    """Signal `proc` (its whole process group) and wait; SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return int(proc.returncode)
