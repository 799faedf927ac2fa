"""The realm actor: one per configured security realm.

Connections never touch a realm object: they send a request to its actor and await the
reply. The actor bounds how much authentication work runs at once (a login storm queues
instead of starving the event loop), runs the slow parts (PBKDF2 for PLAIN/Basic against
hashed passwords, file re-reads) in worker threads, and gives each request a deadline so
a stuck backend fails a login fast and never hangs a connection.

Cancellation: a caller that is cancelled while waiting abandons its reply slot; the work
already started in a thread finishes and its result is dropped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio

from gridactor.errors import AuthenticationError
from gridactor.security.credentials import Credential
from gridactor.security.identity import Identity
from gridactor.security.realms.base import Realm
from gridactor.security.sasl.base import RealmRequest

log = logging.getLogger("gridactor.realm")

T = TypeVar("T")


@dataclass(slots=True, eq=False)  # hashed by identity: it borrows a limiter token
class _Envelope:
    work: Callable[[], Any]
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: BaseException | None = None


@dataclass(slots=True)
class RealmStatistics:
    requests: int = 0
    failures: int = 0
    queued: int = 0


class RealmUnavailableError(AuthenticationError):
    """The realm could not answer in time (backend down or overloaded)."""


class RealmActor:
    def __init__(
        self,
        realm: Realm,
        *,
        inbox_size: int = 1024,
        concurrency: int = 4,
        timeout_s: float = 10.0,
        refresh_interval_s: float = 1.0,
    ) -> None:
        self.realm = realm
        self.name = realm.name
        self.timeout_s = timeout_s
        self.refresh_interval_s = refresh_interval_s
        self._send, self._receive = trio.open_memory_channel[_Envelope](inbox_size)
        self._limiter = trio.CapacityLimiter(concurrency)
        self._stats = RealmStatistics()
        self._next_refresh = -math.inf

    def statistics(self) -> RealmStatistics:
        self._stats.queued = self._send.statistics().current_buffer_used
        return self._stats

    async def run(self, *, task_status: trio.TaskStatus[RealmClient] = trio.TASK_STATUS_IGNORED) -> None:
        await trio.to_thread.run_sync(self.realm.refresh)
        log.info("security realm %s ready", self.name)
        async with trio.open_nursery() as workers:
            task_status.started(RealmClient(self))
            async with self._receive:
                async for envelope in self._receive:
                    # The token is taken here (so the inbox applies backpressure) and given
                    # back by the worker task, hence "on behalf of" the envelope.
                    await self._limiter.acquire_on_behalf_of(envelope)
                    workers.start_soon(self._serve, envelope)

    async def _serve(self, envelope: _Envelope) -> None:
        try:
            self._stats.requests += 1
            now = trio.current_time()
            if now >= self._next_refresh:
                self._next_refresh = now + self.refresh_interval_s
                await trio.to_thread.run_sync(self.realm.refresh)
            envelope.result = await trio.to_thread.run_sync(envelope.work)
        except Exception as exc:
            self._stats.failures += 1
            # The realm's own errors are logged here, once, without request data.
            log.error("realm %s failed a request: %s", self.name, type(exc).__name__)
            envelope.error = exc
        finally:
            self._limiter.release_on_behalf_of(envelope)
            envelope.done.set()

    async def call(self, work: Callable[[], T]) -> T:
        envelope = _Envelope(work)
        with trio.move_on_after(self.timeout_s) as scope:
            await self._send.send(envelope)
            await envelope.done.wait()
        if scope.cancelled_caught:
            raise RealmUnavailableError(f"security realm '{self.name}' did not answer in time")
        if envelope.error is not None:
            raise RealmUnavailableError(f"security realm '{self.name}' failed") from envelope.error
        result: T = envelope.result
        return result


class RealmClient:
    """What mechanisms (through their connection task) may ask a realm."""

    def __init__(self, actor: RealmActor) -> None:
        self._actor = actor
        self.name = actor.name

    def credential_kinds(self) -> frozenset[type]:
        return self._actor.realm.credential_kinds()

    async def credentials(self, username: str) -> Sequence[Credential] | None:
        realm = self._actor.realm
        return await self._actor.call(lambda: realm.credentials(username))

    async def verify_password(self, username: str, password: str) -> bool:
        realm = self._actor.realm
        return await self._actor.call(lambda: realm.verify_password(username, password))

    async def identity(self, username: str) -> Identity | None:
        realm = self._actor.realm
        return await self._actor.call(lambda: realm.identity(username))

    async def answer(self, request: RealmRequest) -> object:
        realm = self._actor.realm
        return await self._actor.call(lambda: realm.answer(request))
