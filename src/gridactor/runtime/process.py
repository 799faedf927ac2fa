"""Child processes connected by a socket pair, and their staged, bounded shutdown."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Sequence

import trio

log = logging.getLogger("gridactor.runtime.process")


async def spawn_with_socket(
    module: str, args: Sequence[str], *, fd_flag: str = "--fd"
) -> tuple[trio.Process, socket.socket]:
    """Start ``python -m module --fd N *args`` with one end of a fresh socket pair.

    Returns the process and the parent's end, non-blocking (for trio's wait_readable).
    """
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ok = False
    try:
        fd = child.fileno()
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", module, fd_flag, str(fd), *args], pass_fds=(fd,)
        )
        ok = True
    finally:
        child.close()  # the child has its own copy; ours would keep EOF from ever arriving
        if not ok:
            parent.close()
    parent.setblocking(False)
    return proc, parent


async def stop_process(
    proc: trio.Process, *, grace: float = 2.0, term_grace: float = 1.0, name: str = "child"
) -> int:
    """Wait up to ``grace`` s for ``proc`` to exit, then SIGTERM, then SIGKILL. Returns its status.

    Callers ask it to exit first (a Shutdown message). Shielded: this is bounded cleanup that
    must finish even while the caller is being cancelled.
    """
    with trio.CancelScope(shield=True):
        if proc.returncode is None:
            with trio.move_on_after(grace):
                await proc.wait()
        if proc.returncode is None:
            log.warning("%s (pid %d) did not stop within %.1f s; terminating", name, proc.pid, grace)
            proc.terminate()
            with trio.move_on_after(term_grace):
                await proc.wait()
        if proc.returncode is None:
            log.error("%s (pid %d) ignored SIGTERM; killing", name, proc.pid)
            proc.kill()
        status = await proc.wait()
    return status
