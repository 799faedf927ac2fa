"""The official Node.js Hot Rod client (npm ``infinispan``) as a sanity point.

Not a load generator (one connection, JavaScript per request): it shows that the figures
of our own generator are met by the client users actually run, on the same server, and
that every value it reads back is right. Runs ``tests/interop/node/ops.js`` with
``GA_ONLY=timed`` (seed ``GA_KEYS`` keys, then GETs with ``GA_DEPTH`` in flight for
``GA_SECONDS``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parents[1] / "tests" / "interop" / "node"


@dataclass(frozen=True)
class NodeFigures:
    ops_per_s: float
    wrong_values: int


def node_missing() -> str | None:
    """Why the Node client cannot run here (None when it can)."""
    if shutil.which("node") is None:
        return "node is not installed (make install-test)"
    if not (NODE_DIR / "node_modules" / "infinispan").is_dir():
        return "npm package infinispan is not installed (make install-test)"
    return None


def run_node_gets(
    host: str, port: int, *, seconds: float, depth: int, keys: int, value_size: int
) -> NodeFigures:
    env = dict(
        os.environ,
        GA_HOST=host,
        GA_PORT=str(port),
        GA_ONLY="timed",
        GA_SECONDS=str(seconds),
        GA_DEPTH=str(depth),
        GA_KEYS=str(keys),
        GA_VALUE_SIZE=str(value_size),
        GA_PREFIX="bench-",
        GA_TIMEOUT_MS=str(int((seconds + 60) * 1000)),
    )
    done = subprocess.run(
        ["node", str(NODE_DIR / "ops.js")],
        env=env,
        capture_output=True,
        timeout=seconds + 90,
        cwd=NODE_DIR,
        check=False,
    )
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if not lines:
        raise RuntimeError(f"no report from ops.js (exit {done.returncode}): {done.stderr.decode()[-500:]}")
    report = json.loads(lines[-1])
    if "connect_error" in report or "fatal" in report:
        raise RuntimeError(str(report.get("connect_error") or report.get("fatal")))
    (name, result), = report["ops"]
    if name != "timed" or not isinstance(result, dict) or "error" in result:
        raise RuntimeError(f"node client failed: {result}")
    elapsed_s = max(result["elapsed_ms"], 1) / 1000
    return NodeFigures(result["ops"] / elapsed_s, int(result["wrong"]))
