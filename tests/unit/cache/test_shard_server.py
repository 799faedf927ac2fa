"""The multi-parent shard loop and its messages, without the pool.

The shard server (the real ``ShardServer``) runs in a thread of this process; the tests
are its parents over real Unix sockets: the main one over a socket pair, others through
its abstract listen address. Plus the pure parts: new messages, events from items, the
EventHub's watch callback.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
from collections.abc import Iterator

import pytest
import trio
from tests.unit.cache.shard_helpers import wire

from gridactor.cache.api import (
    CacheOp,
    CacheSettings,
    Get,
    Put,
    PutAll,
    PutIfAbsent,
    Remove,
    RemoveIfUnmodified,
    Replace,
    ReplaceIfUnmodified,
)
from gridactor.cache.events import EventHub, EventKind
from gridactor.cache.messages import (
    EVENT_CREATED,
    EVENT_MODIFIED,
    EVENT_REMOVED,
    SHARD_HANDLERS,
    STATUS_OK,
    CacheDefined,
    CacheDefinitions,
    CacheDropped,
    DefineCache,
    EventBatch,
    Hello,
    Notice,
    OpenToParents,
    ProtocolViolation,
    ReplyBatch,
    RequestBatch,
    Shutdown,
    Watch,
    encode_op,
    execute_items,
    execute_items_with_events,
    parse_message,
)
from gridactor.cache.router import events_from_wire
from gridactor.cache.shard_process import ShardServer
from gridactor.cache.store import ShardStore
from gridactor.runtime.framing import FrameDecoder, encode

# ---------------------------------------------------------------- messages and events, pure


def test_new_messages_roundtrip_and_malformed_ones_are_refused() -> None:
    settings = CacheSettings("n", mode="distributed", lifespan_ms=5, max_idle_ms=6, max_count=7,
                             statistics=False, key_media_type="k", value_media_type="v")
    messages: list[Notice | Watch | CacheDefinitions | CacheDefined | CacheDropped] = [
        Notice("flush", b"\x00x"), Watch("c", True), Watch("c", False), CacheDefinitions((settings,)),
        CacheDefinitions(()), CacheDefined(settings), CacheDropped("n"),
    ]
    for msg in messages:
        assert parse_message(wire(msg.to_wire())) == msg
    batch = parse_message(wire(EventBatch(("c", EVENT_CREATED, b"k", 5)).to_wire()))
    assert isinstance(batch, EventBatch)
    [event] = events_from_wire(batch.flat)
    assert (event.cache, event.kind, event.key, event.version) == ("c", EventKind.CREATED, b"k", 5)
    assert [EVENT_CREATED, EVENT_MODIFIED, EVENT_REMOVED] == [
        EventKind.CREATED, EventKind.MODIFIED, EventKind.REMOVED
    ]
    for bad in [
        (6, ("c", 0x60, b"k")), (9, 5, b""), (9, "k", "not bytes"), (10, "c", 1), (10, 3, True),
        (7, ("n",)), (7, (1, "m", 0, 0, 0, True, "", "")), (8, 3), (5, "x"), (5, (("n",),)),
    ]:
        with pytest.raises(ProtocolViolation):
            parse_message(bad)
    for flat in [("c", 0x99, b"k", 1), (1, 0x60, b"k", 1), ("c", 0x60, "k", 1)]:
        with pytest.raises(ProtocolViolation):
            events_from_wire(flat)
    assert OpenToParents().to_item(3) == (3, "", 23)
    assert Notice("k", b"p").to_item(4) == (4, "", 24, "k", b"p")


def test_events_come_from_successful_writes_of_watched_caches() -> None:
    def clock() -> int:
        return 1_000

    watched = ShardStore([CacheSettings("c"), CacheSettings("quiet")], clock=clock, epoch=9)
    plain = ShardStore([CacheSettings("c"), CacheSettings("quiet")], clock=clock, epoch=9)
    ops: list[CacheOp] = [
        Put(b"a", b"1"), Put(b"a", b"2"), PutIfAbsent(b"a", b"3"), PutIfAbsent(b"b", b"3"),
        Replace(b"zz", b"x"), Replace(b"b", b"4"), ReplaceIfUnmodified(b"b", b"5", 1),
        Remove(b"a"), Remove(b"a"), RemoveIfUnmodified(b"b", 1),
        PutAll(((b"b", b"6"), (b"new", b"7"))), Get(b"b"), Get(b"new"),
    ]
    items = [encode_op(rid, "c", op) for rid, op in enumerate(ops)]
    items.append(encode_op(len(items), "quiet", Put(b"q", b"v")))
    items.append(encode_op(len(items), "nope", Put(b"q", b"v")))
    out_w: list[object] = []
    events: list[object] = []
    execute_items_with_events(watched, wire(tuple(items)), 1_000, out_w, SHARD_HANDLERS, {"c"}, events)  # type: ignore[arg-type]
    out_p: list[object] = []
    execute_items(plain, wire(tuple(items)), 1_000, out_p)  # type: ignore[arg-type]
    assert wire(out_w) == wire(out_p)  # same replies, same store effects
    got = [(e.kind, e.key) for e in events_from_wire(events)]
    assert got == [
        (EventKind.CREATED, b"a"), (EventKind.MODIFIED, b"a"), (EventKind.CREATED, b"b"),
        (EventKind.MODIFIED, b"b"), (EventKind.REMOVED, b"a"),
        (EventKind.MODIFIED, b"b"), (EventKind.CREATED, b"new"),
    ]
    versions = [e.version for e in events_from_wire(events)]
    entry_b, entry_new = watched.get("c", b"b", 1_000), watched.get("c", b"new", 1_000)
    assert entry_b is not None
    assert entry_new is not None
    assert versions[4] == 0
    assert versions[5:] == [entry_b.version, entry_new.version]
    assert all(v != 0 for v in versions[:4])


def test_the_hub_tells_when_a_cache_is_first_and_last_listened() -> None:
    hub = EventHub(queue_size=1)
    calls: list[tuple[str, bool]] = []
    hub.on_watch = lambda cache, on: calls.append((cache, on))
    first, second = hub.subscribe("c"), hub.subscribe("c")
    other = hub.subscribe("d")
    assert calls == [("c", True), ("d", True)]
    assert hub.watched_caches() == ["c", "d"]
    first.close()
    assert calls == [("c", True), ("d", True)]
    second.close()
    assert calls[-1] == ("c", False)
    events = events_from_wire(("d", EVENT_CREATED, b"1", 1, "d", EVENT_CREATED, b"2", 2))
    hub.publish(events)  # a queue of one: the subscriber fell behind and is dropped
    assert calls[-1] == ("d", False)
    assert hub.watched_caches() == []
    other.close()
    assert len(calls) == 4


# ---------------------------------------------------------------- the shard loop in a thread


class Peer:
    """A blocking test-side parent: send requests, read frames."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.decoder = FrameDecoder()
        self.frames: list[object] = []

    def send(self, *messages: tuple[object, ...]) -> None:
        self.sock.sendall(b"".join(encode(m) for m in messages))

    def next_message(self, timeout: float = 5.0) -> object:
        self.sock.settimeout(timeout)
        while not self.frames:
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError
            self.decoder.receive_data(data)
            self.frames.extend(self.decoder.next_frames())
        return parse_message(self.frames.pop(0))

    def replies(self, n: int) -> list[object]:
        """The next n reply payloads (skipping other messages)."""
        flat: list[object] = []
        while len(flat) < 3 * n:
            msg = self.next_message()
            if isinstance(msg, ReplyBatch):
                flat.extend(msg.flat)
        assert flat[1::3] == [STATUS_OK] * n
        return flat[2::3]

    def read_until_eof(self, timeout: float = 5.0) -> int:
        self.sock.settimeout(timeout)
        total = 0
        while data := self.sock.recv(1 << 20):
            total += len(data)
        return total


@pytest.fixture
def shard() -> Iterator[tuple[Peer, str]]:
    """A ShardServer (shard 0 of 1, 64 KiB backlog limit) in a thread; its main parent and address."""
    name = f"gridactor-test-{os.getpid()}-{threading.get_ident()}-{id(object())}"
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    server = ShardServer(ShardStore(), theirs, listen_name=name, purge_interval=0.05, max_backlog=64 << 10)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    main = Peer(ours)
    assert isinstance(main.next_message(), Hello)
    setup = RequestBatch([DefineCache(CacheSettings("c")).to_item(0), OpenToParents().to_item(1)])
    main.send(setup.to_wire())
    assert main.replies(2) == [None, None]
    try:
        yield main, name
    finally:
        main.send(Shutdown().to_wire())
        thread.join(5)
        server.close()
        ours.close()
    assert not thread.is_alive()


def connect(name: str) -> Peer:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect("\0" + name)
    peer = Peer(sock)
    assert isinstance(peer.next_message(), Hello)
    definitions = peer.next_message()
    assert definitions == CacheDefinitions((CacheSettings("c"),))
    return peer


def test_a_parent_that_stops_reading_is_dropped_the_others_are_served(shard: tuple[Peer, str]) -> None:
    main, name = shard
    slow, fine = connect(name), connect(name)
    slow.send(Watch("c", True).to_wire())
    fine.send(Watch("c", True).to_wire())
    fine.send(RequestBatch([encode_op(0, "c", Get(b"x"))]).to_wire())
    assert fine.replies(1) == [None]  # its watch is in, and the slow one's (sent first) too
    received = 0
    for batch in range(40):  # ~2.5 MB of events (long keys) for each watcher
        main.send(RequestBatch([
            encode_op(i, "c", Put(b"%04d-%04d" % (batch, i) + b"k" * 1000, b"v")) for i in range(64)
        ]).to_wire())
        assert len(main.replies(64)) == 64
        while fine.frames or _readable(fine.sock):
            msg = fine.next_message()
            if isinstance(msg, EventBatch):
                received += len(msg.flat) // 4
    while received < 40 * 64:
        msg = fine.next_message()
        if isinstance(msg, EventBatch):
            received += len(msg.flat) // 4
    assert received == 40 * 64  # the parent that reads got every event
    assert slow.read_until_eof() < 3 << 20  # the other was cut off after its backlog, not fed forever
    main.send(RequestBatch([encode_op(9, "c", Get(b"x"))]).to_wire())
    assert main.replies(1) == [None]


def test_the_main_parent_is_never_dropped_the_shard_waits_for_it(shard: tuple[Peer, str]) -> None:
    main, name = shard
    other = connect(name)
    value = b"v" * (100 << 10)
    main.send(RequestBatch([encode_op(0, "c", Put(b"big", value))]).to_wire())
    assert main.replies(1)[0][0] is True  # type: ignore[index]
    # ~3 MB of replies that main does not read for a while (backlog limit: 64 KiB).
    main.send(RequestBatch([encode_op(i, "c", Get(b"big")) for i in range(30)]).to_wire())
    other.send(RequestBatch([encode_op(0, "c", Get(b"nothing"))]).to_wire())
    threading.Event().wait(0.3)
    replies = main.replies(30)
    assert all(r[1] == value for r in replies)  # type: ignore[index]
    assert other.replies(1) == [None]  # served once main had caught up


def test_a_worker_that_disconnects_loses_its_watches(shard: tuple[Peer, str]) -> None:
    main, name = shard
    gone = connect(name)
    gone.send(Watch("c", True).to_wire(), RequestBatch([encode_op(0, "c", Get(b"x"))]).to_wire())
    assert gone.replies(1) == [None]
    gone.sock.close()
    main.send(RequestBatch([encode_op(0, "c", Get(b"x"))]).to_wire())
    assert main.replies(1) == [None]
    main.send(RequestBatch([encode_op(1, "c", Put(b"x", b"1"))]).to_wire())
    assert main.replies(1)[0][0] is True  # type: ignore[index]  # and no event for anyone


def _readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


async def test_trio_is_not_needed_by_the_shard() -> None:
    # The shard process imports neither trio nor the events module (which needs trio).
    proc = await trio.run_process(
        [
            sys.executable, "-c",
            "import sys, gridactor.cache.shard_process; print('trio' in sys.modules)",
        ],
        capture_stdout=True,
    )
    assert proc.stdout.strip() == b"False"
