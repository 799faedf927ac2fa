"""ShardPool: the actor that owns the shard processes and supervises them.

Usage::

    pool = ShardPool(cache_settings, default_cache="default", shard_count=4)
    service: CacheService = await nursery.start(pool.run)

``run`` spawns every shard process in parallel and hands back the :class:`ShardRouter`
once every shard has said Hello and defined the caches. Then, per shard, a supervisor
task keeps it alive:

* a shard that dies (crash, ``kill -9``, broken IPC) fails its in-flight requests at once
  with ``ShardUnavailableError``, is logged at ERROR level -- its segments' entries are
  gone, there is no persistence -- and is restarted with every current cache defined;
  repeated quick crashes back off exponentially (up to 5 s);
* a shard that cannot start the *first* time makes ``run`` fail: that is a configuration
  or installation problem, not something to retry silently.

Cancelling ``run`` stops all shards concurrently: in-flight requests fail with
``ServerStoppingError``, each shard gets a Shutdown message and ``grace`` seconds, then
SIGTERM, then SIGKILL (only this bounded cleanup is shielded).

Sharing the shards with other processes: ``pool.addresses[i]`` is the listen address of
shard ``i`` (a Linux abstract Unix socket name, without its leading NUL byte, unique to
this pool, kept across restarts of the shard). Worker listener processes connect to them
with :class:`gridactor.cache.shared.SharedShardClient`. A shard accepts them only once
the pool has defined every cache on it, and only from processes of the same user.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence

import trio

from gridactor.cache.api import CacheSettings
from gridactor.cache.messages import Hello, Shutdown, parse_message
from gridactor.cache.router import DEFAULT_MAX_PENDING, ShardLink, ShardLostError, ShardRouter, until_lost
from gridactor.errors import GridError, ServerStoppingError, ShardUnavailableError
from gridactor.runtime.framing import FrameDecoder, encode
from gridactor.runtime.process import spawn_with_socket, stop_process
from gridactor.runtime.supervision import start_all_then_supervise

log = logging.getLogger("gridactor.cache.pool")

SHARD_MODULE = "gridactor.cache.shard_process"


def default_shard_count() -> int:
    return max(2, os.cpu_count() or 2)


class ShardPool:
    """Spawns and supervises ``shard_count`` shard processes behind one ShardRouter."""

    def __init__(
        self,
        settings: Sequence[CacheSettings],
        default_cache: str | None = None,
        shard_count: int | None = None,
        *,
        purge_interval: float = 1.0,
        startup_timeout: float = 15.0,
        grace: float = 2.0,
        max_pending: int = DEFAULT_MAX_PENDING,
        listen: bool = True,
    ) -> None:
        self.shard_count = default_shard_count() if shard_count is None else shard_count
        if self.shard_count < 1:
            raise ValueError("shard_count must be at least 1")
        self.router = ShardRouter(settings, default_cache, self.shard_count, max_pending=max_pending)
        self.purge_interval = purge_interval
        self.startup_timeout = startup_timeout
        self.grace = grace
        self.pids: list[int | None] = [None] * self.shard_count
        self.restarts = [0] * self.shard_count
        self._ready = [trio.Event() for _ in range(self.shard_count)]
        self._started = [False] * self.shard_count
        # Unique per pool (a stale name from an earlier run never matches). Not a secret:
        # it is on the shards' command lines; both ends check the peer's user id instead.
        token = secrets.token_hex(8)
        self.addresses: list[str] = (
            [f"gridactor-{os.getpid()}-{token}-shard-{i}" for i in range(self.shard_count)] if listen else []
        )

    def statistics(self) -> dict[str, object]:
        return {"pids": list(self.pids), "restarts": list(self.restarts), **self.router.statistics()}

    async def wait_shard_ready(self, index: int) -> None:
        """Wait until shard ``index`` is (again) serving. Mostly for tests and health checks."""
        await self._ready[index].wait()

    async def run(self, *, task_status: trio.TaskStatus[ShardRouter] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the shards until cancelled. ``task_status.started(router)`` once all are ready."""

        def ready() -> None:
            log.info("%d shard processes ready: pids %s", self.shard_count, self.pids)
            task_status.started(self.router)

        await start_all_then_supervise(
            self.shard_count, self._supervise, ready, start_errors=(GridError, OSError)
        )

    async def _supervise(
        self, index: int, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        backoff = 0.05
        while True:
            born = trio.current_time()
            listen = ["--listen", self.addresses[index]] if self.addresses else []
            proc, sock = await spawn_with_socket(
                SHARD_MODULE,
                ["--index", str(index), "--count", str(self.shard_count), "--purge-interval",
                 str(self.purge_interval), *listen],
            )
            self.pids[index] = proc.pid
            attached: list[ShardLink] = []  # filled as soon as the link exists, for the finally
            lost: BaseException | None = None
            try:
                try:
                    await self._serve_once(index, proc, sock, task_status, attached)
                    lost = attached[0].lost
                except (GridError, OSError, trio.TooSlowError) as e:
                    if not self._started[index]:
                        raise ShardUnavailableError(f"shard {index} failed to start: {e}") from e
                    lost = e
            finally:
                error: GridError
                if lost is None:
                    error = ServerStoppingError("the cache shards are stopping")
                else:
                    error = ShardUnavailableError(
                        f"shard {index} (pid {proc.pid}) was lost while the request was in flight"
                    )
                self._ready[index] = trio.Event()
                link = attached[0] if attached else None
                if link is not None:
                    self.router.detach(link, error)
                await self._stop(proc, sock, link, index)
            rc = proc.returncode
            self.restarts[index] += 1
            log.error(
                "SHARD %d (pid %d) DIED (%s, exit status %s): the entries of its %d segments are LOST "
                "(no persistence); restarting it",
                index, proc.pid, lost, rc, len(range(index, 256, self.shard_count)),
            )
            backoff = backoff * 2 if trio.current_time() - born < 1.0 else 0.05
            backoff = min(backoff, 5.0)
            await trio.sleep(backoff)

    async def _serve_once(
        self,
        index: int,
        proc: trio.Process,
        sock: socket.socket,
        task_status: trio.TaskStatus[None],
        attached: list[ShardLink],
    ) -> None:
        """Handshake, attach, serve until the link is lost (``link.lost`` says why)."""
        with trio.fail_after(self.startup_timeout):
            hello = await _receive_hello(sock)
        if (hello.shard_index, hello.shard_count) != (index, self.shard_count):
            raise ShardLostError(f"shard {index} introduced itself as {hello}")
        link, ready = self.router.attach(index, sock, proc.pid)
        attached.append(link)
        setup_error: ShardLostError | None = None
        async with trio.open_nursery() as nursery:
            # Each task reports why the link ended and cancels its siblings, so the cause
            # arrives here as one plain exception rather than an exception group. (For the
            # same reason nothing is raised in this body: it would come out wrapped.)
            for fn in (link.run_reader, link.run_writer, _wait_exit(proc, index)):
                nursery.start_soon(until_lost, fn, link, nursery.cancel_scope)
            assert ready.event is not None
            with trio.move_on_after(self.startup_timeout):
                await ready.event.wait()
            # a cache definition, or opening its listen address (OpenToParents), failed
            failed = [r for r in ready.results if isinstance(r, GridError)]
            if failed:
                setup_error = ShardLostError(f"shard {index} failed to set up: {failed[0]}")
            elif not ready.event.is_set():
                setup_error = ShardLostError(f"shard {index} did not set up within {self.startup_timeout} s")
            if setup_error is not None:
                nursery.cancel_scope.cancel()
            else:
                self._ready[index].set()
                if not self._started[index]:
                    self._started[index] = True
                    task_status.started()
                else:
                    log.warning("shard %d restarted as pid %d; its segments start empty", index, proc.pid)
        if setup_error is not None and link.lost is None:
            raise setup_error

    async def _stop(
        self, proc: trio.Process, sock: socket.socket, link: ShardLink | None, index: int
    ) -> None:
        with trio.CancelScope(shield=True):
            if proc.returncode is None:
                try:
                    if link is None or not link.mid_frame:
                        sock.send(encode(Shutdown().to_wire()))
                    sock.shutdown(socket.SHUT_WR)  # EOF also stops it, even mid-frame
                except OSError:
                    pass
            await stop_process(proc, grace=self.grace, term_grace=min(1.0, self.grace), name=f"shard {index}")
            sock.close()


def _wait_exit(proc: trio.Process, index: int) -> Callable[[], Awaitable[None]]:
    async def wait() -> None:
        rc = await proc.wait()
        raise ShardLostError(f"shard {index} (pid {proc.pid}) exited with status {rc}")

    return wait


async def _receive_hello(sock: socket.socket) -> Hello:
    decoder = FrameDecoder()
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)
            continue
        if not data:
            raise ShardLostError("shard process exited before saying hello")
        decoder.receive_data(data)
        frames = decoder.next_frames()
        if frames:
            msg = parse_message(frames[0])
            if not isinstance(msg, Hello) or len(frames) > 1 or decoder.buffered:
                raise ShardLostError(f"expected a lone Hello from the shard, got {type(msg).__name__}")
            return msg
