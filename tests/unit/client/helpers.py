"""An in-process server for client tests: the real Hot Rod connection task over memory streams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial

import trio
import trio.testing

from gridactor.cache.api import CacheSettings
from gridactor.cache.local import InProcessCacheService
from gridactor.client.hotrod import HotRodClient, SaslClientMechanism, open_hotrod_client_on_stream
from gridactor.errors import AuthenticationError
from gridactor.protocols.hotrod.connection import serve_hotrod
from gridactor.protocols.hotrod.handler import AuthStep
from gridactor.server.context import EndpointContext


def make_ctx(*, realm: str | None = None, clock: Callable[[], int] | None = None) -> EndpointContext:
    settings = [CacheSettings("default"), CacheSettings("other")]
    caches = (
        InProcessCacheService(settings, "default")
        if clock is None
        else InProcessCacheService(settings, "default", clock=clock)
    )
    return EndpointContext(caches=caches, security_realm=realm)


class CountingStream(trio.abc.Stream):
    """Delegates to another stream, counting sends (to see coalescing)."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.sends = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sends += 1
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


Step = Callable[[str, bytes], Awaitable[AuthStep]]


class FunctionAuthenticator:
    """A SaslAuthenticator over a per-connection step function (the server side of a test)."""

    def __init__(self, mechanisms: Sequence[str], step: Step) -> None:
        self._mechanisms = list(mechanisms)
        self._step = step
        self.seen: list[tuple[str, bytes]] = []

    def mechanisms(self) -> Sequence[str]:
        return self._mechanisms

    async def step(self, mech: str, response: bytes) -> AuthStep:
        self.seen.append((mech, response))
        return await self._step(mech, response)


def plain_authenticator(username: str, password: str) -> FunctionAuthenticator:
    expected = f"\0{username}\0{password}".encode()

    async def step(mech: str, response: bytes) -> AuthStep:
        await trio.lowlevel.checkpoint()
        if response != expected:
            raise AuthenticationError("ISPN006024: Invalid credentials")
        return AuthStep(None, subject=username)

    return FunctionAuthenticator(["PLAIN", "SCRAM-SHA-256"], step)


@asynccontextmanager
async def serving(
    ctx: EndpointContext | None = None,
    *,
    version: int = 41,
    sasl: SaslClientMechanism | None = None,
    authenticator: FunctionAuthenticator | None = None,
    count: bool = False,
) -> AsyncIterator[tuple[HotRodClient, CountingStream | None]]:
    """A client connected to ``serve_hotrod`` over an in-memory stream pair."""
    ctx = ctx or make_ctx()
    client_stream, server_stream = trio.testing.memory_stream_pair()
    counter = CountingStream(client_stream) if count else None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(serve_hotrod, server_stream, b"", ctx, authenticator=authenticator))
            async with open_hotrod_client_on_stream(
                counter or client_stream, version=version, sasl=sasl
            ) as client:
                yield client, counter
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # serve_hotrod never raises: a single exception is the test's own.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
