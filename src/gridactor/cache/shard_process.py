"""The shard process: one :class:`ShardStore` served to one or more parent processes.

Launched by :class:`gridactor.cache.pool.ShardPool` as::

    python -m gridactor.cache.shard_process --fd N --index I --count C [--purge-interval S]
        [--listen NAME]

where ``N`` is the child end of a ``socket.socketpair()`` passed with ``pass_fds``: the
*main* parent (the pool). ``NAME`` is a Linux abstract Unix socket name (given without
its leading NUL byte) on which *other* parents -- worker listener processes sharing these
shards -- connect once the main parent has defined the caches and sent OpenToParents.
A connecting process must run as the same user (checked with SO_PEERCRED).

Theory of operation: a ``selectors`` loop (no trio here). For each parent that is
readable it ``recv``\\ s what is available, decodes *all* complete frames, applies every
request item of every frame in order, and per round answers each parent with *one*
frame of replies. Under load one receive carries many frames, so the per-wake-up cost is
paid once for many operations. The select timeout doubles as the sweep timer.

Besides replies a parent may get, per round and before its replies: an EventBatch (the
client-listener events of the caches it watches: writes by any parent, and entries found
expired by a read or the sweep), and from
shard 0 CacheDefined / CacheDropped / Notice messages caused by *other* parents.

Bounds: a parent's unsent output is kept up to :data:`MAX_BACKLOG` bytes. A worker
parent beyond that is dropped (logged; it reconnects and watches again). The main parent
is never dropped: while its backlog is over the limit the shard stops reading from
everybody and blocks until the main parent has taken it (what the single-parent shard
always did).

The process exits with status 0 on a Shutdown message from the main parent or on EOF
of the main link (the pool is gone; the data is not persistent). Workers that disconnect
or send Shutdown do not stop it.
"""

from __future__ import annotations

import argparse
import logging
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence

from gridactor.cache.messages import (
    EVENT_EXPIRED,
    OP_DEFINE_CACHE,
    OP_DROP_CACHE,
    OP_NOTICE,
    OP_OPEN,
    SHARD_HANDLERS,
    CacheDefined,
    CacheDefinitions,
    CacheDropped,
    EventBatch,
    Handler,
    Hello,
    Item,
    Notice,
    ProtocolViolation,
    ReplyBatch,
    RequestBatch,
    Shutdown,
    Watch,
    execute_items,
    execute_items_with_events,
    parse_message,
    settings_from_item,
)
from gridactor.cache.segment_table import pin_mmap_threshold
from gridactor.cache.store import ShardStore
from gridactor.errors import GridError, InvalidRequestError
from gridactor.runtime.collector import settle_after_start_up
from gridactor.runtime.framing import FrameDecoder, FrameError, encode

log = logging.getLogger("gridactor.cache.shard")

RECV_SIZE = 1 << 20
MAX_BACKLOG = 64 << 20  # unsent bytes per parent (module docstring)
MAX_PARENTS = 64  # the main one plus worker listener processes (one per core is the use)
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_uid(sock: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket."""
    _pid, uid, _gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return int(uid)


class Parent:
    """One connected parent process: its socket, decoder, output and watches."""

    __slots__ = (
        "backlog", "closed", "decoder", "events", "handlers", "is_main", "messages", "name", "replies",
        "sock", "watched",
    )

    def __init__(self, sock: socket.socket, name: str, is_main: bool) -> None:
        self.sock = sock
        self.name = name
        self.is_main = is_main
        self.decoder = FrameDecoder()
        self.handlers: dict[int, Handler] = dict(SHARD_HANDLERS)
        self.replies: list[object] = []  # flat rid/status/payload of this round
        self.events: list[object] = []  # flat cache/kind/key/version of this round
        self.messages: list[tuple[object, ...]] = []  # other unsolicited messages of this round
        self.backlog = bytearray()  # encoded output the socket did not take yet
        self.watched: set[str] = set()
        self.closed = False


class ShardServer:
    """The selector loop of one shard process (module docstring)."""

    def __init__(
        self,
        store: ShardStore,
        main_sock: socket.socket,
        *,
        listen_name: str | None = None,
        purge_interval: float = 1.0,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self.store = store
        self.max_backlog = max_backlog
        self.listen_name = listen_name
        self.purge_interval = purge_interval
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.parents: list[Parent] = []
        self.watchers: dict[str, list[Parent]] = {}  # cache -> parents watching it
        self.events: list[object] = []  # this batch's events, routed to watchers after it
        self.stopping = False
        self._next_worker = 1
        store.on_expired = self._expired
        main_sock.setblocking(False)
        self.main = self._add_parent(main_sock, "main", True)

    # ------------------------------------------------------------ parents

    def _add_parent(self, sock: socket.socket, name: str, is_main: bool) -> Parent:
        parent = Parent(sock, name, is_main)
        handlers = parent.handlers
        if self.store.shard_index == 0:  # the authority on definitions tells the others
            handlers[OP_DEFINE_CACHE] = self._define_handler(parent)
            handlers[OP_DROP_CACHE] = self._drop_handler(parent)
            handlers[OP_NOTICE] = self._notice_handler(parent)
        if is_main:
            handlers[OP_OPEN] = self._open
        self.parents.append(parent)
        self.selector.register(sock, selectors.EVENT_READ, parent)
        return parent

    def _drop(self, parent: Parent, why: str, level: int = logging.WARNING) -> None:
        if parent.closed:
            return
        log.log(level, "shard %d: dropping parent %s: %s", self.store.shard_index, parent.name, why)
        parent.closed = True
        self.parents.remove(parent)
        for cache in parent.watched:
            self._unwatch(parent, cache)
        parent.watched.clear()
        self.selector.unregister(parent.sock)
        parent.sock.close()

    def _tell_others(self, origin: Parent, message: tuple[object, ...]) -> None:
        for parent in self.parents:
            if parent is not origin:
                parent.messages.append(message)

    # ------------------------------------------------------------ per-parent control handlers

    def _define_handler(self, parent: Parent) -> Handler:
        def define(store: ShardStore, cache: str, it: Item, now: int) -> object:
            settings = settings_from_item(it)
            store.define_cache(settings)  # CacheExistsError: nothing to tell
            self._tell_others(parent, CacheDefined(settings).to_wire())
            return None

        return define

    def _drop_handler(self, parent: Parent) -> Handler:
        def drop(store: ShardStore, cache: str, it: Item, now: int) -> object:
            store.drop_cache(cache)  # CacheNotFoundError: nothing to tell
            self._tell_others(parent, CacheDropped(cache).to_wire())
            return None

        return drop

    def _notice_handler(self, parent: Parent) -> Handler:
        def notice(store: ShardStore, cache: str, it: Item, now: int) -> object:
            _, _, _, kind, payload = it
            if not isinstance(kind, str) or not isinstance(payload, bytes):
                raise InvalidRequestError("a notice is a kind (string) and a payload (bytes)")
            self._tell_others(parent, Notice(kind, payload).to_wire())
            return None

        return notice

    def _open(self, store: ShardStore, cache: str, it: Item, now: int) -> object:
        """The main parent's definitions are in: accept other parents from now on."""
        if self.listener is not None or self.listen_name is None:
            return None
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind("\0" + self.listen_name)
            listener.listen(MAX_PARENTS)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise  # the reply says why; the pool restarts the shard
        self.listener = listener
        self.selector.register(listener, selectors.EVENT_READ, None)
        return None

    def _watch(self, parent: Parent, msg: Watch) -> None:
        if msg.on:
            if msg.cache not in parent.watched:
                parent.watched.add(msg.cache)
                self.watchers.setdefault(msg.cache, []).append(parent)
        elif msg.cache in parent.watched:
            parent.watched.discard(msg.cache)
            self._unwatch(parent, msg.cache)

    def _unwatch(self, parent: Parent, cache: str) -> None:
        watching = self.watchers.get(cache)
        if watching is not None and parent in watching:
            watching.remove(parent)
            if not watching:
                del self.watchers[cache]

    # ------------------------------------------------------------ the loop

    def serve(self) -> None:
        """Serve until Shutdown or EOF from the main parent. Raises FrameError/ProtocolViolation
        when the main parent sends garbage (a worker that does is dropped instead)."""
        store = self.store
        main = self.main
        main.messages.append(self._hello())
        self._send_round()
        next_purge = time.monotonic() + self.purge_interval
        select = self.selector.select
        while not self.stopping:
            if len(main.backlog) >= self.max_backlog:
                self._drain_main()
                continue
            timeout = max(0.0, next_purge - time.monotonic())
            for key, mask in select(timeout):
                target = key.data
                if target is None:
                    self._accept()
                    continue
                if target.closed:
                    continue
                if mask & selectors.EVENT_WRITE:
                    self._flush(target)
                if mask & selectors.EVENT_READ and not target.closed:
                    self._receive(target)
                if self.stopping:
                    break
            self._send_round()
            if time.monotonic() >= next_purge:
                store.purge_expired()
                if self.events:  # expired events of the sweep
                    self._route_events()
                    self._send_round()
                next_purge = time.monotonic() + self.purge_interval

    def _hello(self) -> tuple[object, ...]:
        store = self.store
        return Hello(store.shard_index, store.shard_count, os.getpid(), store.epoch).to_wire()

    def _receive(self, parent: Parent) -> None:
        try:
            data = parent.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError as e:
            data = b""
            log.debug("shard %d: receive from %s failed: %s", self.store.shard_index, parent.name, e)
        if not data:
            if parent.is_main:
                self.stopping = True  # the pool is gone (or stopping us mid-frame): nobody to answer
            else:
                self._drop(parent, "disconnected", logging.INFO)
            return
        decoder = parent.decoder
        decoder.receive_data(data)
        try:
            frames = decoder.next_frames()
            store = self.store
            now = store.clock()
            for obj in frames:
                msg = parse_message(obj)
                if isinstance(msg, RequestBatch):
                    watchers = self.watchers
                    if watchers:
                        execute_items_with_events(
                            store, msg.items, now, parent.replies, parent.handlers, watchers, self.events
                        )
                        if self.events:
                            self._route_events()
                    else:
                        execute_items(store, msg.items, now, parent.replies, parent.handlers)
                elif isinstance(msg, Watch):
                    self._watch(parent, msg)
                elif isinstance(msg, Shutdown):
                    if parent.is_main:
                        self.stopping = True
                        return
                    log.warning("shard %d: ignoring Shutdown from worker parent %s", store.shard_index,
                                parent.name)
                else:
                    log.warning("shard %d: ignoring unexpected %s from %s", store.shard_index,
                                type(msg).__name__, parent.name)
        except (FrameError, ProtocolViolation) as e:
            if parent.is_main:
                raise
            self._drop(parent, f"broken IPC stream: {e}")

    def _expired(self, cache: str, key: bytes) -> None:
        """An entry of ``cache`` expired (met by a read or a sweep): an event if anyone watches."""
        if cache in self.watchers:
            self.events += (cache, EVENT_EXPIRED, key, 0)

    def _route_events(self) -> None:
        events, self.events = self.events, []
        watchers = self.watchers
        for j in range(0, len(events), 4):
            for parent in watchers.get(events[j], ()):  # type: ignore[call-overload]
                parent.events += events[j : j + 4]

    def _accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as e:  # e.g. out of file descriptors: keep serving who we have
                log.error("shard %d: accept failed: %s", self.store.shard_index, e)
                return
            try:
                uid = peer_uid(sock)
            except OSError:
                uid = -1
            if uid != os.geteuid():
                log.warning("shard %d: refused a connection from user id %d", self.store.shard_index, uid)
                sock.close()
                continue
            if len(self.parents) >= MAX_PARENTS:
                log.error("shard %d: refused a parent: already %d connected", self.store.shard_index,
                          len(self.parents))
                sock.close()
                continue
            sock.setblocking(False)
            parent = self._add_parent(sock, f"worker-{self._next_worker}", False)
            self._next_worker += 1
            store = self.store
            parent.messages.append(self._hello())
            if store.shard_index == 0:
                snapshot = tuple(store.settings(name) for name in store.cache_names())
                parent.messages.append(CacheDefinitions(snapshot).to_wire())
            log.info("shard %d: parent %s connected", store.shard_index, parent.name)

    # ------------------------------------------------------------ output

    def _send_round(self) -> None:
        """Send every parent what this round produced: events and notices first, replies last."""
        for parent in list(self.parents):  # _send may drop one
            if not (parent.replies or parent.events or parent.messages):
                continue
            chunks: list[bytes] = []
            if parent.events:
                chunks.append(encode(EventBatch(parent.events).to_wire()))
                parent.events = []
            if parent.messages:
                chunks.extend(encode(m) for m in parent.messages)
                parent.messages = []
            if parent.replies:
                chunks.append(encode(ReplyBatch(parent.replies).to_wire()))
                parent.replies = []
            self._send(parent, chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def _send(self, parent: Parent, data: bytes) -> None:
        if parent.backlog:  # already waiting for the socket: keep the order
            if len(parent.backlog) >= self.max_backlog and not parent.is_main:
                # Checked before appending, so one large reply (a whole-cache scan) to a
                # reader that keeps up is fine; a parent that stopped reading is not.
                self._drop(parent, f"it stopped reading ({len(parent.backlog)} bytes unsent)")
                return
            parent.backlog += data
            return
        try:
            sent = parent.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as e:
            self._lost(parent, e)
            return
        if sent < len(data):
            parent.backlog += memoryview(data)[sent:]
            self.selector.modify(parent.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, parent)

    def _flush(self, parent: Parent) -> None:
        try:
            sent = parent.sock.send(parent.backlog)
        except BlockingIOError:
            return
        except OSError as e:
            self._lost(parent, e)
            return
        del parent.backlog[:sent]
        if not parent.backlog:
            self.selector.modify(parent.sock, selectors.EVENT_READ, parent)

    def _drain_main(self) -> None:
        """Block until the main parent has taken its backlog (module docstring: bounds)."""
        main = self.main
        log.warning("shard %d: the main process is %d bytes behind; pausing", self.store.shard_index,
                    len(main.backlog))
        try:
            main.sock.setblocking(True)
            main.sock.sendall(main.backlog)
            main.sock.setblocking(False)
        except OSError as e:
            self._lost(main, e)
            return
        main.backlog.clear()
        self.selector.modify(main.sock, selectors.EVENT_READ, main)

    def _lost(self, parent: Parent, e: OSError) -> None:
        if parent.is_main:
            self.stopping = True  # the pool went away while we answered
            parent.backlog.clear()
        else:
            self._drop(parent, f"send failed: {e}")

    def close(self) -> None:
        for parent in list(self.parents):
            parent.sock.close()
        if self.listener is not None:
            self.listener.close()
        self.selector.close()


def serve(
    sock: socket.socket,
    store: ShardStore,
    *,
    purge_interval: float = 1.0,
    listen_name: str | None = None,
) -> None:
    """Serve ``sock`` (the main parent) and, once opened, other parents on ``listen_name``."""
    server = ShardServer(store, sock, listen_name=listen_name, purge_interval=purge_interval)
    try:
        server.serve()
    finally:
        server.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gridactor.cache.shard_process")
    parser.add_argument("--fd", type=int, required=True, help="inherited socket file descriptor")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--purge-interval", type=float, default=1.0, help="seconds between expiry sweeps")
    parser.add_argument(
        "--listen", default=None, help="abstract Unix socket name (no leading NUL) for more parents"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format=f"%(asctime)s shard[{args.index}] %(levelname)s %(message)s",
    )
    # Ctrl-C reaches the whole process group; the parent decides when shards stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=args.fd)
    # Large segment slabs in mappings of their own: no heap holes as they grow (issue 7).
    pin_mmap_threshold()
    store = ShardStore(shard_index=args.index, shard_count=args.count)
    settle_after_start_up()
    try:
        serve(sock, store, purge_interval=args.purge_interval, listen_name=args.listen)
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the parent went away while we answered
    except GridError as e:  # FrameError, ProtocolViolation
        log.error("shard %d: broken IPC stream: %s", args.index, e)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
