"""Start, stop, supervision and the CLI, against real server processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import NO_AUTH_CONFIG, ROOT, start_server
from tests.integration.curl import curl
from tests.integration.node_client import results, run_node_ops

pytestmark = pytest.mark.integration

# PING, protocol 4.1, default cache, no flags, intelligence 1, topology 0, no media types,
# no other params: the smallest complete Hot Rod request.
PING_41 = bytes.fromhex("A0 01 29 17 00 00 01 00 00 00 00")


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def hotrod_ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(PING_41)
        return sock.recv(4096)


def test_sigterm_with_an_idle_client_stops_within_the_grace_period(tmp_path: Path) -> None:
    running = start_server(tmp_path, ["--grace", "1"])
    idle = socket.create_connection(("127.0.0.1", running.port), timeout=5)
    idle.sendall(PING_41)
    assert idle.recv(4096)[:1] == b"\xa1"
    shard_pids = children_of(running.process.pid)
    assert len(shard_pids) >= 2
    started = time.monotonic()
    assert running.stop(timeout=15) == 0, running.log()
    assert time.monotonic() - started < 10
    idle.close()
    assert "ISPN080003: stopped" in running.log()
    for pid in shard_pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_a_killed_shard_process_is_restarted(tmp_path: Path) -> None:
    running = start_server(tmp_path, ["--shards", "2"], config=NO_AUTH_CONFIG)
    try:
        shard_pids = children_of(running.process.pid)
        assert len(shard_pids) == 2
        os.kill(shard_pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = children_of(running.process.pid)
            if len(now) == 2 and shard_pids[0] not in now:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"shard was not restarted:\n{running.log()}")
        ops = results(run_node_ops(running.port, only="pipeline"))
        assert ops["pipeline"] == 500
    finally:
        assert running.stop() == 0, running.log()


def test_in_process_store_mode(tmp_path: Path) -> None:
    running = start_server(tmp_path, ["--shards", "0"])
    try:
        assert children_of(running.process.pid) == []
        assert hotrod_ping(running.port)[:1] == b"\xa1"
    finally:
        assert running.stop() == 0


def gridactor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridactor", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_config_check_accepts_the_default_configuration() -> None:
    done = gridactor("config", "check", "config/infinispan.xml")
    assert done.returncode == 0, done.stderr
    assert "default" in done.stdout


def test_config_check_names_file_line_and_element(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text(
        '<infinispan>\n<cache-container default-cache="c">\n  <local-cache name="c" bogus="1"/>\n'
        "</cache-container>\n</infinispan>\n"
    )
    done = gridactor("config", "check", str(bad))
    assert done.returncode == 1
    assert f"{bad}:3: local-cache:" in done.stderr
    assert "bogus" in done.stderr


def test_run_refuses_a_feature_that_is_not_implemented(tmp_path: Path) -> None:
    source = (ROOT / "config" / "examples" / "no-authentication.xml").read_text()
    persistent = '<local-cache name="stored"><persistence><file-store/></persistence></local-cache>'
    config = tmp_path / "persistent.xml"
    default = '<local-cache name="default"/>'
    config.write_text(source.replace(default, default + persistent))
    check = gridactor("config", "check", str(config))
    assert check.returncode == 0, check.stderr  # valid configuration…
    done = gridactor("run", "-c", str(config), "-p", "0")
    assert done.returncode == 1  # …that this build will not run with a feature silently off
    assert f"not supported yet: <persistence> ({config}:" in done.stderr


def test_connector_idle_timeout_and_max_content_length(tmp_path: Path) -> None:
    source = (ROOT / "config" / "examples" / "no-authentication.xml").read_text()
    assert '<hotrod-connector name="hotrod"/>' in source
    assert '<rest-connector name="rest"/>' in source
    config = tmp_path / "limits.xml"
    config.write_text(
        source.replace(
            '<hotrod-connector name="hotrod"/>', '<hotrod-connector name="hotrod" idle-timeout="1"/>'
        ).replace('<rest-connector name="rest"/>', '<rest-connector name="rest" max-content-length="16"/>')
    )
    running = start_server(tmp_path, config=config)
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as idle:
            idle.sendall(PING_41)
            assert idle.recv(4096)[:1] == b"\xa1"
            started = time.monotonic()
            assert idle.recv(4096) == b""  # closed by the server for idling
            assert 0.5 < time.monotonic() - started < 5
        url = f"http://127.0.0.1:{running.port}/rest/v2/caches/default/k"
        assert curl(url, "-X", "PUT", "--data-binary", "x" * 17).status == 413
        assert curl(url, "-X", "PUT", "--data-binary", "x" * 16).status == 204
    finally:
        assert running.stop() == 0, running.log()
