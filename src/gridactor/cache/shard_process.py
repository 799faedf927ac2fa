"""The shard process: one :class:`ShardStore` served over one inherited socket.

Launched by :class:`gridactor.cache.pool.ShardPool` as::

    python -m gridactor.cache.shard_process --fd N --index I --count C [--purge-interval S]

where ``N`` is the child end of a ``socket.socketpair()`` passed with ``pass_fds``.

Theory of operation: the shard has exactly one peer and nothing to do between requests
except the expiration sweep, so it runs a plain blocking loop (no trio, no selector):
``recv`` everything available, decode *all* complete frames, apply every request item of
every frame in order, and answer with *one* reply frame per receive. Under load one
receive carries many frames, so the per-wake-up cost is paid once for many operations.
The receive timeout doubles as the sweep timer; a busy shard sweeps between batches.

The process exits with status 0 on a Shutdown message or on EOF (the parent is gone;
there is nobody left to serve, and the data is not persistent).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence

from gridactor.cache.messages import (
    Hello,
    ReplyBatch,
    RequestBatch,
    Shutdown,
    execute_items,
    parse_message,
)
from gridactor.cache.store import ShardStore
from gridactor.errors import GridError
from gridactor.runtime.collector import settle_after_start_up
from gridactor.runtime.framing import FrameDecoder, encode

log = logging.getLogger("gridactor.cache.shard")

RECV_SIZE = 1 << 20


def serve(sock: socket.socket, store: ShardStore, *, purge_interval: float = 1.0) -> None:
    """Serve ``sock`` until Shutdown or EOF. Raises FrameError/ProtocolViolation on garbage."""
    sock.settimeout(purge_interval)
    sock.sendall(encode(Hello(store.shard_index, store.shard_count, os.getpid(), store.epoch).to_wire()))
    decoder = FrameDecoder()
    recv = sock.recv
    clock = store.clock
    next_purge = time.monotonic() + purge_interval
    while True:
        try:
            data = recv(RECV_SIZE)
        except TimeoutError:
            data = None
        if data is not None:
            if not data:
                return  # the parent is gone (or stopping us mid-frame): nobody to answer
            decoder.receive_data(data)
            out: list[object] = []
            stop = False
            now = clock()
            for obj in decoder.next_frames():
                msg = parse_message(obj)
                if isinstance(msg, RequestBatch):
                    execute_items(store, msg.items, now, out)
                elif isinstance(msg, Shutdown):
                    stop = True
                    break
                else:
                    log.warning("shard %d: ignoring unexpected %s", store.shard_index, type(msg).__name__)
            if out:
                sock.sendall(encode(ReplyBatch(out).to_wire()))
            if stop:
                return
        if time.monotonic() >= next_purge:
            store.purge_expired()
            next_purge = time.monotonic() + purge_interval


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gridactor.cache.shard_process")
    parser.add_argument("--fd", type=int, required=True, help="inherited socket file descriptor")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--purge-interval", type=float, default=1.0, help="seconds between expiry sweeps")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format=f"%(asctime)s shard[{args.index}] %(levelname)s %(message)s",
    )
    # Ctrl-C reaches the whole process group; the parent decides when shards stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=args.fd)
    store = ShardStore(shard_index=args.index, shard_count=args.count)
    settle_after_start_up()
    try:
        serve(sock, store, purge_interval=args.purge_interval)
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the parent went away while we answered
    except GridError as e:  # FrameError, ProtocolViolation
        log.error("shard %d: broken IPC stream: %s", args.index, e)
        return 2
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
