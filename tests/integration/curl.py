"""A thin runner for the curl binary, used as an independent HTTP/1.1 and HTTP/2 client."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass


@dataclass
class CurlResult:
    status: int
    headers: dict[str, str]
    body: bytes
    http_version: str


def curl(url: str, *args: str, timeout: float = 20.0) -> CurlResult:
    """Run curl and return status, headers (last response, lower-cased names) and body."""
    cmd = ["curl", "-sS", "--max-time", str(int(timeout)), "-D", "-", "-o", "-", *args, url]
    done = subprocess.run(cmd, capture_output=True, timeout=timeout + 5, check=False)
    assert done.returncode == 0, f"curl failed ({done.returncode}): {done.stderr.decode()}"
    raw = done.stdout
    # With -D - and -o -, headers of every response (1xx, 101 upgrade, final) come first.
    blocks = []
    rest = raw
    while rest.startswith(b"HTTP/"):
        head, _, rest = rest.partition(b"\r\n\r\n")
        blocks.append(head)
    final = blocks[-1].decode("latin-1").split("\r\n")
    version, status = final[0].split(" ")[:2]
    headers = {}
    for line in final[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return CurlResult(int(status), headers, rest, version)
