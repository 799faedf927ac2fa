"""Listener worker processes: ``gridactor run --listeners N`` serves one port from N processes.

Why: one Python process tops out at about a core (performance-notes.md). DESIGN.md's answer
is several listener processes sharing the port with ``SO_REUSEPORT``; the kernel spreads
new connections over them and every one of them is a complete front-end (TLS, sniffing,
Hot Rod, REST, SASL and HTTP authentication, authorization) in front of the same shard
processes.

Theory of operation
-------------------
The main process (the supervisor of :mod:`gridactor.server.app`) starts the shards, binds
its own listeners (so port 0 is resolved), then starts N-1 workers, each with
``python -m gridactor.server.workers --fd F --index I``. ``F`` is the worker's end of a
socket pair, its *lifeline*: the main process sends a :class:`WorkerSpec` over it (which
configuration, which ports, the shard processes' addresses) and the worker answers
``ready`` once its listeners serve, or ``failed`` with the reason. The main process says
"started" only when every worker is ready.

What is shared lives in the shard processes (entries, cache definitions, counters) and
reaches every process from there (:mod:`gridactor.cache.shared`: cache definitions
created at run time, client-listener events). What is per process: realm actors (each
reads the same files, holds its own LDAP connections), the authorizer's cached masks,
the failed-authentication throttle.

Supervision: a worker that exits while the server runs is logged and started again,
with a back-off of up to 5 s; one that cannot start the first time fails the server's
start (a configuration problem shows in the main process already). Stopping: the main
process sends ``stop`` over each lifeline; a worker stops accepting, gives its
connections the same grace as the main process, and exits; ``stop_process`` bounds the
wait. A worker whose lifeline reaches EOF (the main process died) stops the same way,
so no worker outlives its server.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from gridactor.errors import GridError
from gridactor.runtime.framing import FrameDecoder, encode
from gridactor.runtime.process import spawn_with_socket, stop_process

log = logging.getLogger("gridactor.workers")

WORKER_MODULE = "gridactor.server.workers"
_READY = "ready"
_FAILED = "failed"
_STOP = "stop"
MAX_BACKOFF_S = 5.0


class WorkerStartError(GridError):
    """A listener worker could not start (its reason is in the message)."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker needs to serve the same endpoints as the main process."""

    index: int
    config_path: str
    properties: Mapping[str, str]
    bind_address: str | None
    endpoint_ports: tuple[int, ...]  # as bound by the main process, one per endpoint
    shard_addresses: tuple[str, ...]
    grace_s: float
    log_level: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "config_path": self.config_path,
            "properties": dict(self.properties),
            "bind_address": self.bind_address,
            "endpoint_ports": list(self.endpoint_ports),
            "shard_addresses": list(self.shard_addresses),
            "grace_s": self.grace_s,
            "log_level": self.log_level,
        }

    @classmethod
    def from_wire(cls, obj: object) -> WorkerSpec:
        if not isinstance(obj, dict):
            raise WorkerStartError(f"worker spec must be a map, got {type(obj).__name__}")
        try:
            return cls(
                index=int(obj["index"]),
                config_path=str(obj["config_path"]),
                properties={str(k): str(v) for k, v in obj["properties"].items()},
                bind_address=None if obj["bind_address"] is None else str(obj["bind_address"]),
                endpoint_ports=tuple(int(p) for p in obj["endpoint_ports"]),
                shard_addresses=tuple(str(a) for a in obj["shard_addresses"]),
                grace_s=float(obj["grace_s"]),
                log_level=int(obj["log_level"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WorkerStartError(f"malformed worker spec: {exc!r}") from None


class Lifeline:
    """The main process's socket-pair link to one worker (either end): framed msgpack."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        self._decoder = FrameDecoder()
        self._frames: list[object] = []

    async def send(self, obj: object) -> None:
        await self.stream.send_all(encode(obj))

    async def receive(self) -> object | None:
        """The next message (msgpack arrays come back as lists), or None at EOF."""
        while not self._frames:
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self._decoder.receive_data(data)
            self._frames.extend(self._decoder.next_frames())
        message = self._frames.pop(0)
        return list(message) if isinstance(message, tuple) else message

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


@dataclass
class ListenerWorkers:
    """The main process's actor for the N-1 worker processes (module docstring)."""

    specs: Sequence[WorkerSpec]
    stopping: trio.Event
    startup_timeout_s: float = 30.0
    restarts: dict[int, int] = field(default_factory=dict)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for spec in self.specs:
                await nursery.start(self._keep_alive, spec)
            log.info("%d more listener processes serve the same ports", len(self.specs))
            task_status.started()

    async def _start(self, spec: WorkerSpec) -> tuple[trio.Process, Lifeline]:
        proc, sock = await spawn_with_socket(WORKER_MODULE, ["--index", str(spec.index)])
        lifeline = Lifeline(sock)
        try:
            await lifeline.send(spec.to_wire())
            answer: object = None
            with trio.move_on_after(self.startup_timeout_s) as waiting:
                answer = await lifeline.receive()
            if answer == [_READY]:
                return proc, lifeline
            if isinstance(answer, list) and len(answer) == 2 and answer[0] == _FAILED:
                reason = str(answer[1])
            elif waiting.cancelled_caught:
                reason = f"not ready within {self.startup_timeout_s:.0f} s"
            elif answer is None:
                reason = f"exited with status {await _status_soon(proc)} before it was ready"
            else:
                reason = f"answered {answer!r} instead of ready"
            raise WorkerStartError(f"listener process {spec.index}: {reason}")
        except BaseException:
            await lifeline.aclose()
            await stop_process(proc, grace=0.5, name=f"listener process {spec.index}")
            raise

    async def _keep_alive(self, spec: WorkerSpec, *, task_status: trio.TaskStatus[None]) -> None:
        proc, lifeline = await self._start(spec)  # a first failure fails the server's start
        task_status.started()
        backoff = 0.25
        while True:
            async with trio.open_nursery() as watch:

                async def stop_on_request() -> None:
                    await self.stopping.wait()
                    watch.cancel_scope.cancel()

                watch.start_soon(stop_on_request)
                await proc.wait()
                watch.cancel_scope.cancel()
            if self.stopping.is_set():
                with trio.CancelScope(shield=True):
                    try:
                        await lifeline.send([_STOP])
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
                    await stop_process(proc, grace=spec.grace_s + 3.0, name=f"listener process {spec.index}")
                    await lifeline.aclose()
                return
            await lifeline.aclose()
            self.restarts[spec.index] = self.restarts.get(spec.index, 0) + 1
            log.error(
                "listener process %d (pid %d) exited with status %s: its connections are gone; restarting",
                spec.index,
                proc.pid,
                proc.returncode,
            )
            while not self.stopping.is_set():
                with trio.move_on_after(backoff):
                    await self.stopping.wait()
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                try:
                    proc, lifeline = await self._start(spec)
                    break
                except WorkerStartError as exc:
                    log.error("%s", exc)
            else:
                return


async def _status_soon(proc: trio.Process) -> int | None:
    with trio.move_on_after(1.0):
        return await proc.wait()
    return proc.returncode


# ---------------------------------------------------------------- the worker process


async def _serve(spec: WorkerSpec, lifeline: Lifeline) -> None:
    from gridactor.config.loader import load_config
    from gridactor.runtime.collector import settle_after_start_up
    from gridactor.server.app import RunOptions, Server

    try:
        config = load_config(spec.config_path, spec.properties)
        options = RunOptions(
            bind_address=spec.bind_address,
            endpoint_ports=spec.endpoint_ports,
            reuse_port=True,
            shard_addresses=spec.shard_addresses,
            grace_s=spec.grace_s,
            properties=spec.properties,
        )
        server = Server(config, options)
    except (GridError, OSError) as exc:
        await lifeline.send([_FAILED, str(exc)])
        return
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def run_server(*, task_status: trio.TaskStatus[list[int]]) -> None:
                await server.run(task_status=task_status)
                nursery.cancel_scope.cancel()

            try:
                await nursery.start(run_server)
            except (GridError, OSError) as exc:
                await lifeline.send([_FAILED, str(exc)])
                raise WorkerStartError(str(exc)) from None
            settle_after_start_up()
            await lifeline.send([_READY])

            async def stop_when_told() -> None:
                # "stop", or EOF: the main process is gone and so are the shards.
                while (message := await lifeline.receive()) not in (None, [_STOP]):
                    log.warning("ignoring an unexpected message on the lifeline: %r", message)
                server.stop()

            async def stop_on_signal() -> None:
                async for _signum in signals:
                    server.stop()  # the main process decides; a signal from a terminal also stops us

            nursery.start_soon(stop_when_told)
            nursery.start_soon(stop_on_signal)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=WORKER_MODULE)
    parser.add_argument("--fd", type=int, required=True, help="inherited lifeline socket")
    parser.add_argument("--index", type=int, required=True)
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)

    async def receive_spec() -> tuple[WorkerSpec, Lifeline]:
        lifeline = Lifeline(sock)
        obj = await lifeline.receive()
        return WorkerSpec.from_wire(obj), lifeline

    async def run() -> int:
        spec, lifeline = await receive_spec()
        logging.basicConfig(
            level=spec.log_level,
            stream=sys.stderr,
            format=f"%(asctime)s %(levelname)-5s listener[{spec.index}] [%(name)s] %(message)s",
        )
        try:
            await _serve(spec, lifeline)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return 0
        except GridError as exc:
            log.error("listener process %d: %s", spec.index, exc)
            return 1
        finally:
            await lifeline.aclose()
        return 0

    try:
        return trio.run(run)
    except WorkerStartError as exc:
        print(f"gridactor listener process {args.index}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
