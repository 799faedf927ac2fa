"""A Hot Rod load generator that costs the server more than it costs itself.

Why it looks like this: a Python generator easily spends more CPU per request than the
server it drives (performance-notes.md), so it avoids everything a real client does per
request:

* plain non-blocking sockets and one ``selectors`` loop per OS process (no async
  framework), several processes (``multiprocessing``), many connections each;
* every request frame is encoded once, before the run. Message ids cycle through a small
  ring (1..127, one byte), so only the id differs between a connection's frames and a
  response's id says which frame (and send time) it answers;
* responses are parsed only as far as needed to find the next one: header, then the
  byte[] length of a GET hit or error text;
* a connection keeps ``depth`` requests in flight (pipelining); everything it can send
  after one receive goes out in one ``send``.

Timing: all workers get the same absolute ``CLOCK_MONOTONIC`` window (``time.monotonic``
is system-wide on Linux). Requests sent before ``t_start`` are warm-up; a request counts
if it was sent at or after ``t_start`` and answered by ``t_end``.
"""

from __future__ import annotations

import array
import multiprocessing
import multiprocessing.connection
import os
import selectors
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from gridactor.client.hotrod import encode_expiration, encode_header_tail, encode_request
from gridactor.client.sasl_client import ScramClient, client_mechanism
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod.primitives import (
    Incomplete,
    Reader,
    write_bytes,
    write_string,
    write_vint,
)

VERSION = 41
MAX_RING = 127  # message ids 1..127 are one vLong byte
_GET_RESPONSE = op.GET + 1
_PUT_RESPONSE = op.PUT + 1
_PUT_ALL_RESPONSE = op.PUT_ALL + 1


def key_of(index: int) -> bytes:
    return b"k%09d" % index


def value_of(size: int) -> bytes:
    return (b"0123456789abcdef" * (size // 16 + 1))[:size]


@dataclass(frozen=True)
class LoadSpec:
    """What to send. ``op``: get | put | putall (putall loads keys 0..keyspace-1 once)."""

    host: str
    port: int
    op: str
    connections: int
    depth: int = 1
    keyspace: int = 10_000
    value_size: int = 100
    batch: int = 1000  # entries per PUT_ALL
    cache: str = ""
    sasl: tuple[str, str, str] | None = None  # (mechanism, user, password) per connection
    tls: bool = False  # TLS to a server with a self-signed certificate (not verified: loopback)


@dataclass
class LoadResult:
    ops: int = 0
    errors: int = 0
    misses: int = 0
    elapsed_s: float = 0.0
    latencies_us: array.array[float] = field(default_factory=lambda: array.array("f"))
    error_text: str = ""

    def merge(self, other: LoadResult) -> None:
        self.ops += other.ops
        self.errors += other.errors
        self.misses += other.misses
        self.elapsed_s = max(self.elapsed_s, other.elapsed_s)
        self.latencies_us.extend(other.latencies_us)
        self.error_text = self.error_text or other.error_text

    def percentile_ms(self, fraction: float) -> float | None:
        if not self.latencies_us:
            return None
        ordered = sorted(self.latencies_us)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000.0


def _ring(depth: int) -> int:
    return min(MAX_RING, max(32, 4 * depth))


def _frames(spec: LoadSpec, conn_index: int) -> list[bytes]:
    """The pre-encoded frames of one connection: frame i has message id i+1."""
    ring = _ring(spec.depth)
    tail = encode_header_tail(VERSION, spec.cache, 0)
    value = write_bytes(value_of(spec.value_size))
    no_expiration = encode_expiration(None, None)
    frames = []
    for slot in range(ring):
        key = write_bytes(key_of((conn_index * ring + slot) % spec.keyspace))
        if spec.op == "get":
            body = key
            opcode = op.GET
        elif spec.op == "put":
            body = key + no_expiration + value
            opcode = op.PUT
        else:
            raise ValueError(f"no pre-encoded frames for {spec.op!r}")
        frames.append(encode_request(slot + 1, VERSION, opcode, tail, body))
    return frames


def _put_all_frames(spec: LoadSpec, first: int, last: int) -> Iterator[tuple[int, bytes]]:
    """(entry count, frame body) of PUT_ALL requests covering keys first..last-1."""
    value = write_bytes(value_of(spec.value_size))
    no_expiration = encode_expiration(None, None)
    for start in range(first, last, spec.batch):
        stop = min(last, start + spec.batch)
        entries = b"".join(write_bytes(key_of(i)) + value for i in range(start, stop))
        yield stop - start, no_expiration + write_vint(stop - start) + entries


def _blocking_response(sock: socket.socket) -> tuple[int, Reader]:
    """Read one whole response (blocking); (opcode, reader positioned at the body)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection during authentication")
        data += chunk
        r = Reader(data)
        try:
            r.byte()
            r.vlong()
            opcode = r.byte()
            r.byte()  # status
            r.byte()  # topology marker (never set: we declare intelligence 1)
            body_start = r.pos
            if opcode == op.ERROR_RESPONSE:
                r.string(1 << 20)
            else:
                r.byte()
                r.array(1 << 20)
        except Incomplete:
            continue
        return opcode, Reader(data, body_start)


# SCRAM salted passwords of this load process, as a long-lived client keeps them: the
# connection-rate scenario measures the server, not the generator's PBKDF2 (which costs
# several times the server's whole share of a connection).
_SALTED_PASSWORDS: dict[tuple[str, bytes, bytes, int], bytes] = {}


def authenticate_blocking(sock: socket.socket, mechanism: str, user: str, password: str) -> None:
    """The SASL exchange of one connection, as the Hot Rod client does it, on a blocking socket.

    Only AUTH rounds: the mechanism list is fixed by the scenario, and a connection-rate
    scenario measures what every client must do, not optional round trips.
    """
    mech = (
        ScramClient(mechanism, user, password, salted_passwords=_SALTED_PASSWORDS)
        if mechanism.upper().startswith("SCRAM-")
        else client_mechanism(mechanism, user, password)
    )
    evaluate = getattr(mech, "evaluate", None)
    if evaluate is None:
        raise ValueError(f"{mechanism}: the load generator drives PLAIN and SCRAM-* only")
    tail = encode_header_tail(VERSION, "", 0)
    name = write_string(mechanism)
    payload = mech.initial_response() or b""
    for mid in range(1, 10):
        sock.sendall(encode_request(mid, VERSION, op.AUTH, tail, name + write_bytes(payload)))
        opcode, r = _blocking_response(sock)
        if opcode == op.ERROR_RESPONSE:
            raise PermissionError(r.string(1 << 20))
        completed = r.byte()
        challenge = r.array(1 << 20)
        if completed:
            mech.complete(challenge)
            return
        following = evaluate(challenge)
        if following is None:
            return
        payload = following
    raise PermissionError(f"{mechanism}: no completion")


def _client_tls() -> ssl.SSLContext:
    # The benchmark measures the cost of encryption, not of trust: the server's self-signed
    # certificate is not verified (loopback only).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def connect(spec: LoadSpec) -> socket.socket:
    sock = socket.create_connection((spec.host, spec.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if spec.tls:
        sock = _client_tls().wrap_socket(sock, server_hostname=spec.host)
    if spec.sasl is not None:
        authenticate_blocking(sock, *spec.sasl)
    return sock


def run_connect_rate(spec: LoadSpec, t_start: float, t_end: float) -> LoadResult:
    """New connection + authentication + close, back to back, until ``t_end``."""
    result = LoadResult()
    while time.monotonic() < t_end:
        began = time.monotonic()
        sock = connect(spec)
        sock.close()
        done = time.monotonic()
        if began >= t_start and done <= t_end:
            result.ops += 1
            result.latencies_us.append((done - began) * 1e6)
    return result


class _Conn:
    __slots__ = (
        "buf",
        "frames",
        "inflight",
        "next_slot",
        "pending_out",
        "ring",
        "sent_at",
        "sock",
        "source",
        "weights",
    )

    def __init__(self, sock: socket.socket, frames: list[bytes], ring: int) -> None:
        self.sock = sock
        self.frames = frames
        self.ring = ring
        self.buf = b""
        self.inflight = 0
        self.next_slot = 0
        self.sent_at = [0.0] * ring
        self.weights = [1] * ring  # ops a response stands for (PUT_ALL: its entries)
        self.pending_out = b""
        self.source: Iterator[tuple[int, bytes]] | None = None


def run_load(
    spec: LoadSpec,
    conn_offset: int,
    t_start: float,
    t_end: float,
    ready: multiprocessing.connection.Connection | None = None,
    entries: tuple[int, int] | None = None,
) -> LoadResult:
    """Drive ``spec.connections`` connections until ``t_end`` (or until ``entries`` are loaded).

    ``t_start``/``t_end`` are ``time.monotonic`` instants; with ``ready`` they are
    received from it after every connection is up (the parent aligns all workers).
    """
    if spec.op == "connect":
        if ready is not None:
            ready.send("ready")
            t_start, t_end = ready.recv()
        return run_connect_rate(spec, t_start, t_end)
    socks = []
    for _ in range(spec.connections):
        sock = connect(spec)
        sock.setblocking(False)
        socks.append(sock)
    if ready is not None:
        ready.send("ready")
        t_start, t_end = ready.recv()
    ring = _ring(spec.depth)
    conns: list[_Conn] = []
    putall_tail = encode_header_tail(VERSION, spec.cache, 0)
    for i, sock in enumerate(socks):
        if entries is None:
            conns.append(_Conn(sock, _frames(spec, conn_offset + i), ring))
        else:
            conn = _Conn(sock, [], ring)
            first, last = entries
            per_conn = (last - first + spec.connections - 1) // spec.connections
            lo = first + i * per_conn
            conn.source = _put_all_frames(spec, lo, min(last, lo + per_conn))
            conns.append(conn)
    sel = selectors.DefaultSelector()
    for conn in conns:
        sel.register(conn.sock, selectors.EVENT_READ, conn)
    result = LoadResult()
    latencies = result.latencies_us
    depth = spec.depth
    now = time.monotonic
    # Both clocks are CLOCK_MONOTONIC-based; perf_counter has the finer resolution.
    offset = time.perf_counter() - now()
    p_start = t_start + offset
    p_end = t_end + offset
    perf = time.perf_counter

    def refill(conn: _Conn, at: float) -> None:
        out = []
        while conn.inflight < depth:
            slot = conn.next_slot
            if conn.source is not None:
                item = next(conn.source, None)
                if item is None:
                    break
                count, body = item
                out.append(encode_request(slot + 1, VERSION, op.PUT_ALL, putall_tail, body))
                conn.weights[slot] = count
            else:
                out.append(conn.frames[slot])
            conn.sent_at[slot] = at
            conn.next_slot = slot + 1 if slot + 1 < conn.ring else 0
            conn.inflight += 1
        if out:
            send(conn, b"".join(out))

    def send(conn: _Conn, data: bytes) -> None:
        if conn.pending_out:
            conn.pending_out += data
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            sent = 0
        if sent < len(data):
            conn.pending_out = data[sent:]
            sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    started = perf()
    for conn in conns:
        refill(conn, started)
    sending = True
    active = len(conns)
    drain_deadline = p_end + 10.0
    while active:
        t = perf()
        if sending and t >= p_end:
            sending = False
        if not sending and (t >= drain_deadline or all(c.inflight == 0 for c in conns)):
            break
        for key, mask in sel.select(timeout=0.2):
            conn = key.data
            if mask & selectors.EVENT_WRITE:
                data, conn.pending_out = conn.pending_out, b""
                sel.modify(conn.sock, selectors.EVENT_READ, conn)
                send(conn, data)
            if not mask & selectors.EVENT_READ:
                continue
            try:
                chunk = conn.sock.recv(1 << 18)
                # TLS may hold decrypted bytes the selector cannot see: take them now.
                while isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():
                    chunk += conn.sock.recv(1 << 18)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            if not chunk:
                result.error_text = result.error_text or "server closed a connection"
                sel.unregister(conn.sock)
                active -= 1
                continue
            buf = conn.buf + chunk if conn.buf else chunk
            t = perf()
            pos = 0
            n = len(buf)
            while pos + 5 <= n:
                if buf[pos] != 0xA1:
                    raise RuntimeError(f"bad response magic 0x{buf[pos]:02X}")
                slot = buf[pos + 1] - 1
                opcode = buf[pos + 2]
                status = buf[pos + 3]
                p = pos + 5
                if (opcode == _GET_RESPONSE and status == 0) or opcode == op.ERROR_RESPONSE:
                    length = 0
                    shift = 0
                    while p < n:
                        b = buf[p]
                        p += 1
                        length |= (b & 0x7F) << shift
                        if b < 0x80:
                            break
                        shift += 7
                    else:
                        break  # length incomplete
                    if p + length > n:
                        break
                    if opcode == op.ERROR_RESPONSE:
                        result.errors += 1
                        if not result.error_text:
                            result.error_text = buf[p : p + length].decode("utf-8", "replace")
                    p += length
                elif opcode == _GET_RESPONSE:
                    result.misses += 1
                elif opcode not in (_PUT_RESPONSE, _PUT_ALL_RESPONSE) or status != 0:
                    raise RuntimeError(f"unexpected response 0x{opcode:02X} status 0x{status:02X}")
                pos = p
                conn.inflight -= 1
                sent_at = conn.sent_at[slot]
                if sent_at >= p_start and t <= p_end:
                    result.ops += conn.weights[slot]
                    latencies.append((t - sent_at) * 1e6)
            conn.buf = buf[pos:] if pos < n else b""
            if sending:
                refill(conn, t)
            elif entries is not None and conn.inflight == 0:
                pass
        if entries is not None and all(c.inflight == 0 for c in conns):
            break  # everything loaded
    result.elapsed_s = perf() - max(started, p_start)
    sel.close()
    for conn in conns:
        conn.sock.close()
    return result


def _worker(
    spec: LoadSpec,
    conn_offset: int,
    pipe: multiprocessing.connection.Connection,
    entries: tuple[int, int] | None,
) -> None:
    try:
        result = run_load(spec, conn_offset, 0.0, 0.0, ready=pipe, entries=entries)
    except Exception as exc:  # reported to the parent, which fails the scenario
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
    else:
        pipe.send(
            (
                "ok",
                (result.ops, result.errors, result.misses, result.elapsed_s, result.latencies_us.tobytes()),
                result.error_text,
            )
        )
    pipe.close()


def drive(
    spec: LoadSpec,
    *,
    processes: int,
    warmup_s: float,
    duration_s: float,
    entries: tuple[int, int] | None = None,
) -> LoadResult:
    """Run ``spec`` split over ``processes`` worker processes; aggregate their results.

    With ``entries`` (PUT_ALL loading) the run ends when every entry is stored; the
    measuring window then starts at once and ``duration_s`` is only an upper bound.
    """
    processes = max(1, min(processes, spec.connections))
    ctx = multiprocessing.get_context("fork")
    workers = []
    offset = 0
    for index in range(processes):
        share = spec.connections // processes + (1 if index < spec.connections % processes else 0)
        sub_entries = None
        if entries is not None:
            first, last = entries
            per = (last - first + processes - 1) // processes
            lo = first + index * per
            sub_entries = (lo, min(last, lo + per))
        parent_end, child_end = ctx.Pipe()
        sub_spec = LoadSpec(**{**spec.__dict__, "connections": share})
        proc = ctx.Process(target=_worker, args=(sub_spec, offset, child_end, sub_entries), daemon=True)
        proc.start()
        child_end.close()
        workers.append((proc, parent_end))
        offset += share
    total = LoadResult()
    try:
        for _proc, pipe in workers:
            if not pipe.poll(30):
                raise RuntimeError("a load worker did not connect within 30 s")
            message = pipe.recv()
            if message != "ready":
                raise RuntimeError(f"load worker failed: {message[1]}")
        t_start = time.monotonic() + (0.0 if entries is not None else warmup_s)
        t_end = t_start + duration_s
        for _, pipe in workers:
            pipe.send((t_start, t_end))
        for _proc, pipe in workers:
            if not pipe.poll(max(60.0, duration_s + warmup_s + 30)):
                raise RuntimeError("a load worker did not report")
            message = pipe.recv()
            if message[0] != "ok":
                raise RuntimeError(f"load worker failed: {message[1]}")
            ops, errors, misses, elapsed, raw = message[1]
            part = LoadResult(ops, errors, misses, elapsed, error_text=message[2])
            part.latencies_us.frombytes(raw)
            total.merge(part)
    finally:
        for proc, _ in workers:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    if entries is None:
        total.elapsed_s = duration_s
    return total


def default_processes() -> int:
    """Half the cores: the server needs the rest (performance-notes.md)."""
    return max(1, (os.cpu_count() or 2) // 2)
