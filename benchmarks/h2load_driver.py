"""REST over HTTP/2 cleartext (prior knowledge) with h2load (Debian ``nghttp2-client``).

h2load prints throughput but no percentiles; its ``--log-file`` has one line per
request (start µs, status, duration µs), from which p50/p99 are computed here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_FINISHED = re.compile(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s")
_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed")


@dataclass
class H2Result:
    ops_per_s: float
    succeeded: int
    failed: int
    p50_ms: float | None
    p99_ms: float | None
    statuses: dict[str, int] = field(default_factory=dict)


def available() -> bool:
    return shutil.which("h2load") is not None


def version() -> str | None:
    if not available():
        return None
    out = subprocess.run(["h2load", "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip() or None


def write_uris(path: Path, base: str, cache: str, keys: list[bytes]) -> Path:
    path.write_text("".join(f"{base}/rest/v2/caches/{cache}/{key.decode()}\n" for key in keys))
    return path


def run_h2load(
    uri_file: Path,
    *,
    connections: int,
    streams: int,
    workdir: Path,
    duration_s: float | None = None,
    warmup_s: float = 0.0,
    requests: int | None = None,
    put_body: Path | None = None,
) -> H2Result:
    """``streams`` concurrent streams per connection is HTTP/2's pipelining depth."""
    log_file = workdir / "h2load-requests.log"
    cmd = ["h2load", "-i", str(uri_file), "-c", str(connections), "-m", str(streams), "-t", "1"]
    cmd += ["--log-file", str(log_file)]
    if duration_s is not None:
        # h2load takes whole numbers with a unit, not fractions.
        cmd += ["-D", f"{round(duration_s * 1000)}ms"]
        if warmup_s:
            cmd += [f"--warm-up-time={round(warmup_s * 1000)}ms"]
    else:
        cmd += ["-n", str(requests or 1000)]
    if put_body is not None:
        cmd += ["-d", str(put_body), "-H", ":method: PUT", "-H", "content-type: application/octet-stream"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"h2load failed ({done.returncode}): {done.stderr.strip() or done.stdout[-500:]}")
    finished = _FINISHED.search(done.stdout)
    counts = _REQUESTS.search(done.stdout)
    if finished is None or counts is None:
        raise RuntimeError(f"cannot parse h2load output:\n{done.stdout}")
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    if log_file.exists():
        for line in log_file.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                statuses[parts[1]] = statuses.get(parts[1], 0) + 1
                latencies.append(int(parts[2]) / 1000.0)
        log_file.unlink()
    latencies.sort()

    def pct(fraction: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] if latencies else None

    return H2Result(
        ops_per_s=float(finished.group(3)),
        succeeded=int(counts.group(4)),
        failed=int(counts.group(5)),
        p50_ms=pct(0.5),
        p99_ms=pct(0.99),
        statuses=statuses,
    )
