"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "tests" / "interop" / "node"
_LISTENING = re.compile(r"listening on (\S+):(\d+)")
_STARTED = "ISPN080001"


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_server(
    tmp_path: Path, args: Sequence[str] = (), *, config: str | Path | None = None, timeout: float = 30.0
) -> RunningServer:
    """Start `gridactor run` as a real process on a free loopback port and wait until it serves."""
    log_path = tmp_path / f"server-{time.monotonic_ns()}.log"
    cmd = [sys.executable, "-m", "gridactor", "run", "-b", "127.0.0.1", "-p", "0"]
    cmd += ["-c", str(config or ROOT / "config" / "infinispan.xml"), *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if _STARTED in text:
            match = _LISTENING.search(text)
            assert match, text
            return RunningServer(process, match.group(1), int(match.group(2)), log_path)
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{text}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"server did not start in {timeout}s:\n{log_path.read_text()}")


NO_AUTH_CONFIG = ROOT / "config" / "examples" / "no-authentication.xml"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server with authentication disabled (spec 4.4), for the data-path tests."""
    running = start_server(tmp_path, config=NO_AUTH_CONFIG)
    yield running
    code = running.stop()
    assert code == 0, running.log()


@dataclass(frozen=True)
class GridUser:
    name: str
    password: str
    groups: tuple[str, ...] = ()


USERS = (
    GridUser("alice", "alice-Secret1", ("admin",)),
    GridUser("bob", "bob-Secret2", ("reader",)),
    GridUser("ключ", "pässwörd-Ω", ("writer",)),
)


def make_server_root(
    tmp_path: Path,
    config: Path,
    users: Sequence[GridUser] = USERS,
    *,
    plain_text: bool = False,
    extra_args: Sequence[str] = (),
) -> Path:
    """Copy ``config`` into a fresh folder and create its users with the real `user` CLI."""
    root = tmp_path / "conf"
    root.mkdir(exist_ok=True)
    target = root / "infinispan.xml"
    if config.resolve() != target.resolve():
        shutil.copy(config, target)
    users_file, groups_file = root / "users.properties", root / "groups.properties"
    users_file.touch()
    groups_file.touch()
    for user in users:
        cmd = [sys.executable, "-m", "gridactor", "user", "create", user.name, "-p", user.password]
        cmd += ["-f", str(users_file), "-w", str(groups_file), *extra_args]
        if user.groups:
            cmd += ["-g", ",".join(user.groups)]
        if plain_text:
            cmd.append("--plain-text")
        subprocess.run(cmd, check=True, capture_output=True, timeout=60, cwd=ROOT)
    return target


def node_available() -> bool:
    return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "infinispan").is_dir()
