"""The Redis reference: redis-server on a free loopback port, driven by redis-benchmark.

Measured in the same run as gridactor, with the same value size, connections and
pipelining, so every gridactor figure is also a ratio to Redis on this machine. Note
(performance-notes.md): redis-benchmark saturates before Redis does when not pipelined,
so the non-pipelined ratio flatters gridactor; the pipelined one is the honest one.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.server import free_port


@dataclass(frozen=True)
class RedisFigures:
    ops_per_s: float
    p50_ms: float | None
    p99_ms: float | None


def available() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-benchmark") is not None


def version() -> str | None:
    if not available():
        return None
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip() or None


class RedisReference:
    """One redis-server for the whole run; ``measure`` results are cached per shape."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._cache: dict[tuple[str, int, int, int, int], RedisFigures] = {}

    def start(self) -> None:
        self.port = free_port()
        cmd = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", str(self.workdir), "--protected-mode", "yes",
        ]  # fmt: skip
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True, check=False
            )
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def _bench(
        self, test: str, connections: int, pipeline: int, requests: int, keyspace: int, size: int
    ) -> str:
        cmd = [
            "redis-benchmark", "-h", "127.0.0.1", "-p", str(self.port), "-c", str(connections),
            "-P", str(pipeline), "-d", str(size), "-n", str(requests), "-r", str(keyspace),
            "-t", test, "--csv",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
        return done.stdout

    def measure(
        self, op: str, connections: int, pipeline: int, *, seconds: float, keyspace: int, value_size: int
    ) -> RedisFigures:
        shape = (op, connections, pipeline, keyspace, value_size)
        cached = self._cache.get(shape)
        if cached is not None:
            return cached
        # redis-benchmark runs a request count, not a time: size it from typical rates.
        rate = (25_000 if connections == 1 else 110_000) * min(pipeline, 10)
        requests = max(10_000, int(rate * seconds))
        if op == "get":  # GETs must hit: store the keyspace first
            self._bench("set", 50, 16, keyspace * 4, keyspace, value_size)
        test = _REDIS_TESTS[op]
        figures = _parse_csv(self._bench(test, connections, pipeline, requests, keyspace, value_size))
        self._cache[shape] = figures
        return figures


# Our operation names -> redis-benchmark test names.
_REDIS_TESTS = {"get": "get", "put": "set"}


def _parse_csv(text: str) -> RedisFigures:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if len(rows) < 2 and not (rows and rows[0][0] != "test"):
        raise RuntimeError(f"redis-benchmark printed no result: {text!r}")
    header = rows[0]
    if "rps" not in header:  # older redis-benchmark: "test","rps" without a header row
        return RedisFigures(float(rows[-1][1]), None, None)
    row = dict(zip(header, rows[-1], strict=False))
    p50 = row.get("p50_latency_ms")
    p99 = row.get("p99_latency_ms")
    return RedisFigures(float(row["rps"]), float(p50) if p50 else None, float(p99) if p99 else None)
