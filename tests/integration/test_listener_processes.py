"""``gridactor run --listeners 2``: two processes serve one port in front of the same shards.

Real server processes; connections are spread by the kernel (SO_REUSEPORT), and the tests
check through /proc that both listener processes hold some, then that entries, caches
created at run time and client-listener events are the same whichever process a
connection landed on, that a killed listener process is replaced, and that SIGTERM stops
every process.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from gridactor.client.hotrod import HotRodClient, open_hotrod_client
from gridactor.errors import GridError
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod.primitives import Incomplete, Reader, write_bytes, write_string, write_vint
from tests.conftest import NO_AUTH_CONFIG, RunningServer, start_server
from tests.integration.processes import accepted_per_process, alive, children, worker_pids
from tests.unit.hotrod.hotrod_helpers import header, next_response

CONNECTIONS = 16


@pytest.fixture
def two_listeners(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path, ["--listeners", "2", "--shards", "2"], config=NO_AUTH_CONFIG)
    yield running
    assert running.stop() == 0, running.log()


@asynccontextmanager
async def hotrod_clients(server: RunningServer, n: int) -> AsyncIterator[list[HotRodClient]]:
    async with AsyncExitStack() as stack:
        opened = [open_hotrod_client(server.host, server.port) for _ in range(n)]
        yield [await stack.enter_async_context(client) for client in opened]


async def test_connections_are_spread_and_see_the_same_entries(two_listeners: RunningServer) -> None:
    assert len(worker_pids(two_listeners)) == 1, two_listeners.log()
    async with hotrod_clients(two_listeners, CONNECTIONS) as clients:
        counts = accepted_per_process(two_listeners, CONNECTIONS)
        assert len(counts) == 2, counts
        assert all(n > 0 for n in counts.values()), counts
        assert sum(counts.values()) == CONNECTIONS, counts
        for i, client in enumerate(clients):
            await client.put(f"k{i}", f"v{i}")
        for client in clients:
            for i in range(CONNECTIONS):
                assert await client.get(f"k{i}") == f"v{i}".encode()


async def test_a_cache_created_through_one_process_serves_on_all(two_listeners: RunningServer) -> None:
    # REST creates the cache through whichever process the HTTP connection reaches.
    async with httpx.AsyncClient(base_url=two_listeners.base_url) as http:
        created = await http.post("/rest/v2/caches/made-at-runtime", json={"local-cache": {}})
        assert created.status_code == 200, created.text
    async with hotrod_clients(two_listeners, CONNECTIONS) as clients:
        counts = accepted_per_process(two_listeners, CONNECTIONS)
        assert len({pid for pid, n in counts.items() if n}) == 2, counts
        for i, client in enumerate(clients):
            # Definitions reach the other process asynchronously: a bounded wait.
            for _ in range(50):
                try:
                    await client.put(f"k{i}", b"v", cache="made-at-runtime")
                    break
                except GridError:
                    await trio.sleep(0.05)
            assert await client.get(f"k{i}", cache="made-at-runtime") == b"v"
        assert await clients[0].size(cache="made-at-runtime") == CONNECTIONS


def _add_listener_frame(listener_id: bytes) -> bytes:
    body = write_bytes(listener_id) + b"\x00" + write_string("") + write_string("") + b"\x00" + write_vint(0)
    return header(op.ADD_CLIENT_LISTENER, mid=7, key_type=b"\x00", value_type=b"\x00") + body


def _read_events(sock: socket.socket, want: int, deadline: float) -> list[tuple[int, bytes]]:
    """(event opcode, key) of the events that arrive on a raw listener connection."""
    data = b""
    events: list[tuple[int, bytes]] = []
    while len(events) < want and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        assert chunk, "the server closed the listener connection"
        data += chunk
        while True:
            r = Reader(data)
            try:
                response = next_response(r)
                if response.opcode in (0x60, 0x61, 0x62, 0x63):
                    r.array(1 << 20)  # listener id
                    r.byte()  # custom
                    r.byte()  # retried
                    key = r.array(1 << 20)
                    if response.opcode in (0x60, 0x61):  # created and modified carry a version
                        r.long()
                    events.append((response.opcode, key))
            except Incomplete:
                break
            data = data[r.pos :]
    return events


async def test_listener_events_come_from_writes_through_every_process(two_listeners: RunningServer) -> None:
    listener = socket.create_connection((two_listeners.host, two_listeners.port), timeout=5)
    try:
        listener.sendall(_add_listener_frame(b"L1"))
        reply = listener.recv(65536)
        added = next_response(Reader(reply))
        assert (added.opcode, added.status) == (op.ADD_CLIENT_LISTENER + 1, 0), reply
        async with hotrod_clients(two_listeners, CONNECTIONS) as clients:
            for i, client in enumerate(clients):
                await client.put(f"e{i}", b"1")
            await clients[0].put("e0", b"2")
            await clients[-1].remove("e1")
        events = await trio.to_thread.run_sync(_read_events, listener, CONNECTIONS + 2, time.monotonic() + 10)
    finally:
        listener.close()
    created = sorted(key for kind, key in events if kind == 0x60)
    assert created == sorted(f"e{i}".encode() for i in range(CONNECTIONS))
    assert (0x61, b"e0") in events
    assert (0x62, b"e1") in events


async def test_expired_entries_reach_listeners_on_every_process(two_listeners: RunningServer) -> None:
    listener = socket.create_connection((two_listeners.host, two_listeners.port), timeout=5)
    try:
        listener.sendall(_add_listener_frame(b"L2"))
        added = next_response(Reader(listener.recv(65536)))
        assert (added.opcode, added.status) == (op.ADD_CLIENT_LISTENER + 1, 0)
        async with hotrod_clients(two_listeners, 4) as clients:
            for i, client in enumerate(clients):
                await client.put(f"x{i}", b"short-lived", lifespan=0.2)
        # The shards' sweep (every second) finds them: bounded wait.
        events = await trio.to_thread.run_sync(_read_events, listener, 8, time.monotonic() + 10)
    finally:
        listener.close()
    assert sorted(key for kind, key in events if kind == 0x63) == [f"x{i}".encode() for i in range(4)]


def test_a_killed_listener_process_is_replaced(two_listeners: RunningServer) -> None:
    (first,) = worker_pids(two_listeners)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 15
    replacement: list[int] = []
    while time.monotonic() < deadline:
        replacement = [pid for pid in worker_pids(two_listeners) if pid != first]
        if replacement and "restarting" in two_listeners.log():
            break
        time.sleep(0.1)
    assert replacement, two_listeners.log()
    # The replacement serves: with enough connections some land on it.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        address = (two_listeners.host, two_listeners.port)
        socks = [socket.create_connection(address) for _ in range(CONNECTIONS)]
        try:
            counts = accepted_per_process(two_listeners, CONNECTIONS)
            if counts.get(replacement[0], 0) > 0:
                break
        finally:
            for s in socks:
                s.close()
        time.sleep(0.2)
    else:
        pytest.fail(f"the replacement listener process never got a connection:\n{two_listeners.log()}")


def test_sigterm_stops_every_process(tmp_path: Path) -> None:
    running = start_server(tmp_path, ["--listeners", "3", "--shards", "2"], config=NO_AUTH_CONFIG)
    tree = [running.process.pid, *children(running.process.pid)]
    try:
        assert len(worker_pids(running)) == 2, running.log()
    finally:
        code = running.stop()
    assert code == 0, running.log()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in tree):
        time.sleep(0.05)
    assert not [pid for pid in tree if Path(f"/proc/{pid}").exists()], running.log()


def test_listeners_need_shard_processes(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="needs shard processes"):
        start_server(tmp_path, ["--listeners", "2", "--shards", "0"], config=NO_AUTH_CONFIG, timeout=10)


def test_workers_do_not_outlive_a_killed_main_process(tmp_path: Path) -> None:
    running = start_server(tmp_path, ["--listeners", "2", "--shards", "1"], config=NO_AUTH_CONFIG)
    tree = children(running.process.pid)
    try:
        assert len(worker_pids(running)) == 1, running.log()
        running.process.kill()
        running.process.wait(5)
        # The lifeline's EOF stops the worker, the shards see their main link close: all exit.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(alive(pid) for pid in tree):
            time.sleep(0.05)
        assert not [pid for pid in tree if alive(pid)], running.log()
    finally:
        running.stop()
        for pid in tree:  # whatever a failure above left behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
