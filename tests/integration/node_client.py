"""Runs tests/interop/node/ops.js (the official Node.js Hot Rod client) and parses its report."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from tests.conftest import NODE_DIR, node_available


def run_node_ops(port: int, *, timeout: float = 60.0, **settings: str) -> dict[str, Any]:
    assert node_available(), "the Node client is missing: run `make install-test`"
    env = dict(os.environ, GA_PORT=str(port))
    for name, value in settings.items():
        env[f"GA_{name.upper()}"] = value
    done = subprocess.run(
        ["node", str(NODE_DIR / "ops.js")],
        env=env,
        capture_output=True,
        timeout=timeout,
        cwd=NODE_DIR,
        check=False,
    )
    lines = done.stdout.decode().strip().splitlines()
    assert lines, f"no report from ops.js (exit {done.returncode}): {done.stderr.decode()}"
    report: dict[str, Any] = json.loads(lines[-1])
    assert "fatal" not in report, report["fatal"]
    return report


def results(report: dict[str, Any]) -> dict[str, Any]:
    return dict((name, value) for name, value in report["ops"])


def prev_value(result: Any) -> Any:
    """4.x returns previous values as {value, version, …}; 3.x as the bare value."""
    if isinstance(result, dict) and "value" in result:
        return result["value"]
    return result
