"""SharedShardClient: a worker process's router to the shard processes of the main process.

The main process's :class:`~gridactor.cache.pool.ShardPool` spawns and supervises the
shards; each shard also listens on ``pool.addresses[i]`` (an abstract Unix socket name).
A worker listener process serves clients through the same shards::

    client = SharedShardClient(addresses, default_cache="default")
    router: ShardRouter = await nursery.start(client.run)
    router.serve_events(hub)             # client-listener events from every process's writes
    router.on_notice = handle_notice     # Notices other processes broadcast

``run`` connects to every shard (Hello handshake; shard 0 also sends the current cache
definitions, which become the router's view), hands back the router once all are
connected, then supervises each connection: when one is lost (the shard died or is being
restarted by the pool) its in-flight requests fail at once with ShardUnavailableError and
the client reconnects with exponential backoff (up to ``max_backoff``) until the pool's
replacement shard accepts -- which it does only once the pool has defined every cache on
it. On reconnection the router re-sends its watches and, for shard 0, takes its
definitions again. The client never spawns or stops shard processes.

The first connection to each shard must succeed within ``startup_timeout`` (else ``run``
raises ShardUnavailableError). Cancelling ``run`` fails in-flight requests with
ServerStoppingError and closes the connections; the shards keep serving the others.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import trio

from gridactor.cache.messages import CacheDefinitions, Hello, parse_message
from gridactor.cache.router import DEFAULT_MAX_PENDING, ShardLink, ShardLostError, ShardRouter, until_lost
from gridactor.cache.shard_process import peer_uid
from gridactor.errors import GridError, ServerStoppingError, ShardUnavailableError
from gridactor.runtime.framing import FrameDecoder
from gridactor.runtime.supervision import start_all_then_supervise

log = logging.getLogger("gridactor.cache.shared")

MIN_BACKOFF = 0.05


@dataclass(slots=True)
class Handshake:
    """What a shard sends a non-main parent first, and whatever the read got past it."""

    hello: Hello
    definitions: CacheDefinitions | None
    decoder: FrameDecoder
    early_frames: list[object]


async def connect_to_shard(address: str) -> socket.socket:
    """A non-blocking socket connected to the shard listening on abstract name ``address``.

    Raises OSError (refused: no shard listens there right now) or ShardLostError when
    the listener belongs to another user.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        try:
            sock.connect("\0" + address)
        except BlockingIOError:  # the listen backlog is full: wait for our turn
            await trio.lowlevel.wait_writable(sock)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err)) from None
        uid = peer_uid(sock)
        if uid != os.geteuid():
            raise ShardLostError(f"{address!r} is held by user id {uid}, not by this server's user")
    except BaseException:
        sock.close()
        raise
    return sock


async def receive_handshake(sock: socket.socket, *, with_definitions: bool) -> Handshake:
    """Hello (and CacheDefinitions when ``with_definitions``) from a freshly connected shard."""
    decoder = FrameDecoder()
    frames: list[object] = []
    needed = 2 if with_definitions else 1
    while len(frames) < needed:
        try:
            data = sock.recv(1 << 16)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)
            continue
        if not data:
            raise ShardLostError("the shard closed the connection before its hello")
        decoder.receive_data(data)
        frames.extend(decoder.next_frames())
    hello = parse_message(frames[0])
    if not isinstance(hello, Hello):
        raise ShardLostError(f"expected Hello from the shard, got {type(hello).__name__}")
    definitions = None
    if with_definitions:
        second = parse_message(frames[1])
        if not isinstance(second, CacheDefinitions):
            raise ShardLostError(f"expected the cache definitions, got {type(second).__name__}")
        definitions = second
    return Handshake(hello, definitions, decoder, frames[needed:])


class SharedShardClient:
    """Connects a (non-primary) ShardRouter to shards another process supervises."""

    def __init__(
        self,
        addresses: Sequence[str],
        default_cache: str | None,
        *,
        startup_timeout: float = 15.0,
        handshake_timeout: float = 5.0,
        max_backoff: float = 2.0,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if not addresses:
            raise ValueError("no shard addresses")
        self.addresses = list(addresses)
        self.startup_timeout = startup_timeout
        self.handshake_timeout = handshake_timeout
        self.max_backoff = max_backoff
        self.router = ShardRouter(
            (), default_cache, len(self.addresses), max_pending=max_pending, primary=False
        )
        self.reconnects = [0] * len(self.addresses)
        self._ready = [trio.Event() for _ in self.addresses]
        self._started = [False] * len(self.addresses)

    def statistics(self) -> dict[str, object]:
        return {"reconnects": list(self.reconnects), **self.router.statistics()}

    async def wait_shard_ready(self, index: int) -> None:
        """Wait until the connection to shard ``index`` is (again) serving."""
        await self._ready[index].wait()

    async def run(self, *, task_status: trio.TaskStatus[ShardRouter] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled. ``task_status.started(router)`` once every shard is connected."""

        def ready() -> None:
            log.info("connected to %d shared shard processes", len(self.addresses))
            task_status.started(self.router)

        await start_all_then_supervise(len(self.addresses), self._supervise, ready, start_errors=(GridError,))

    async def _supervise(
        self, index: int, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        address = self.addresses[index]
        deadline = trio.current_time() + self.startup_timeout
        backoff = MIN_BACKOFF
        outage_logged = False
        while True:
            attached: list[ShardLink] = []
            lost: BaseException | None = None
            served_since: float | None = None
            sock: socket.socket | None = None
            try:
                try:
                    sock = await connect_to_shard(address)
                    served_since = trio.current_time()
                    await self._serve_once(index, sock, task_status, attached)
                    lost = attached[0].lost
                except (GridError, OSError, trio.TooSlowError) as e:
                    lost = e
            finally:
                self._ready[index] = trio.Event()
                if attached:
                    error: GridError
                    if lost is None:
                        error = ServerStoppingError("this process is stopping")
                    else:
                        error = ShardUnavailableError(
                            f"shard {index} was lost while the request was in flight"
                        )
                    self.router.detach(attached[0], error)
                if sock is not None:
                    sock.close()
            if not self._started[index] and trio.current_time() >= deadline:
                raise ShardUnavailableError(f"shard {index}: cannot connect to {address!r}: {lost}")
            if attached:  # it was serving: a new outage begins
                self.reconnects[index] += 1
                log.warning("shard %d: connection lost (%s); reconnecting", index, lost)
                outage_logged = True
            elif not outage_logged:  # once per outage, not once per attempt
                log.warning("shard %d: not reachable (%s); retrying", index, lost)
                outage_logged = True
            if served_since is not None and trio.current_time() - served_since > 1.0:
                backoff = MIN_BACKOFF  # it served a while: this is a new outage
            await trio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _serve_once(
        self, index: int, sock: socket.socket, task_status: trio.TaskStatus[None], attached: list[ShardLink]
    ) -> None:
        with trio.fail_after(self.handshake_timeout):
            handshake = await receive_handshake(sock, with_definitions=index == 0)
        hello = handshake.hello
        if (hello.shard_index, hello.shard_count) != (index, len(self.addresses)):
            raise ShardLostError(f"shard {index} introduced itself as {hello}")
        link, ready = self.router.attach(
            index, sock, hello.pid, decoder=handshake.decoder, early_frames=handshake.early_frames,
            definitions=handshake.definitions,
        )
        attached.append(link)
        async with trio.open_nursery() as nursery:
            for fn in (link.run_reader, link.run_writer):
                nursery.start_soon(until_lost, fn, link, nursery.cancel_scope)
            assert ready.event is not None
            await ready.event.wait()
            self._ready[index].set()
            if not self._started[index]:
                self._started[index] = True
                task_status.started()
            else:
                log.info("shard %d: reconnected (pid %d)", index, hello.pid)
