"""What the server's processes hold, read from /proc: for tests of ``--listeners``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conftest import RunningServer


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def _cmdline(pid: int) -> str:
    try:
        parts = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return ""
    words = [p.decode() for p in parts if p]
    return " ".join(w for w in words if not w.startswith("-") and not w.isdigit())


def worker_pids(server: RunningServer) -> list[int]:
    return [pid for pid in children(server.process.pid) if "gridactor.server.workers" in _cmdline(pid)]


def accepted_per_process(server: RunningServer, expected: int) -> dict[int, int]:
    """:func:`established_per_process` once the server processes hold ``expected``
    connections: a connection is established in the kernel before a process accepts it."""
    deadline = time.monotonic() + 5
    counts = established_per_process(server)
    while sum(counts.values()) < expected and time.monotonic() < deadline:
        time.sleep(0.02)
        counts = established_per_process(server)
    return counts


def established_per_process(server: RunningServer) -> dict[int, int]:
    """How many established TCP connections to the server's port each process holds."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == server.port and fields[3] == "01":
                inodes.add(fields[9])
    counts: dict[int, int] = {}
    for pid in [server.process.pid, *worker_pids(server)]:
        n = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                n += 1
        counts[pid] = n
    return counts


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its (dead) parent's reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
