"""The benchmark harness end to end, tiny: one Hot Rod scenario against a real server.

Asserts the shape of the result file, never a speed: timing depends on the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

REQUIRED = {
    "name": str,
    "status": str,
    "ops_per_s": float,
    "p50_ms": float,
    "p99_ms": float,
    "server_peak_rss_mb": float,
    "params": dict,
}


@pytest.mark.integration
def test_bench_smoke_writes_a_valid_result_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    latest = tmp_path / "latest.json"
    document = json.loads(latest.read_text())
    assert document["mode"] == "smoke"
    assert len(list(tmp_path.glob("2*.json"))) == 1
    [record] = document["scenarios"]
    assert record["status"] == "ok", record
    assert record["name"].startswith("hotrod-")
    for key, kind in REQUIRED.items():
        assert isinstance(record[key], kind), (key, record[key])
    assert record["ops_per_s"] > 0
    assert 0 < record["p50_ms"] <= record["p99_ms"]
    assert record["server_peak_rss_mb"] > 0
    assert record["params"]["connections"] > 0
    assert record["extra"]["misses"] == 0  # the keys were loaded before the GETs
    for key in ("redis_ops_per_s", "ratio_to_redis"):
        assert key in record
    redis_installed = shutil.which("redis-server") and shutil.which("redis-benchmark")
    if redis_installed:
        assert record["redis_ops_per_s"] > 0
        assert record["ratio_to_redis"] == pytest.approx(record["ops_per_s"] / record["redis_ops_per_s"])
    else:
        assert record["redis_ops_per_s"] is None
    assert "results:" in done.stdout
