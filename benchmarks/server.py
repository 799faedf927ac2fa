"""Start and stop processes for a scenario, and measure a process tree's memory from /proc."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"listening on (\S+):(\d+)")
_STARTED = "ISPN080001"


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc/*/stat parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    out = []
    todo = [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and its children, summed at one moment."""
    return sum(rss_bytes(pid) for pid in tree_pids(root))


class RssSampler:
    """Samples a process tree's summed RSS in a thread; ``peak`` is the highest sum seen."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.pid))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_bytes(self.pid))


class GridServer:
    """``python -m gridactor run`` on a free loopback port, until ``stop``."""

    def __init__(self, config: Path, *, shards: int | None, log_path: Path, listeners: int = 1) -> None:
        self.config = config
        self.shards = shards
        self.listeners = listeners
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"
        self.port = 0

    def start(self, timeout: float = 30.0) -> None:
        cmd = [sys.executable, "-m", "gridactor", "run", "-c", str(self.config), "-b", "127.0.0.1", "-p", "0"]
        if self.shards is not None:
            cmd += ["--shards", str(self.shards)]
        if self.listeners != 1:
            cmd += ["--listeners", str(self.listeners)]
        # Info level: the start-up lines are what we wait for.
        env = dict(os.environ, PYTHONUNBUFFERED="1", GRIDACTOR_LOG_LEVEL="info")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            if _STARTED in text:
                match = _LISTENING.search(text)
                if match is None:
                    raise RuntimeError(f"server started but logged no 'listening on':\n{text}")
                self.host, self.port = match.group(1), int(match.group(2))
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{text[-2000:]}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start within {timeout:.0f} s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
