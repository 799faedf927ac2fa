from __future__ import annotations

import trio

from gridactor.cache.api import CacheSettings, Put, PutAll, PutIfAbsent, Remove, Replace
from gridactor.cache.events import CacheEvent, EventHub, EventKind, NotifyingCacheService
from gridactor.cache.local import InProcessCacheService


def service(hub: EventHub) -> NotifyingCacheService:
    inner = InProcessCacheService([CacheSettings("c"), CacheSettings("quiet")], default_cache="c")
    return NotifyingCacheService(inner, hub)


def drain(hub_receive: trio.MemoryReceiveChannel[CacheEvent]) -> list[tuple[EventKind, bytes, bool]]:
    out = []
    while True:
        try:
            event = hub_receive.receive_nowait()
        except trio.WouldBlock:
            return out
        out.append((event.kind, event.key, event.version != 0))


async def test_successful_writes_become_events_with_versions() -> None:
    hub = EventHub()
    caches = service(hub)
    sub = hub.subscribe("c")
    await caches.execute(
        "", [Put(b"a", b"1"), Put(b"a", b"2"), PutIfAbsent(b"a", b"3"), Replace(b"zz", b"x")]
    )
    await caches.execute("c", [Remove(b"a"), Remove(b"a")])
    assert drain(sub.receive) == [
        (EventKind.CREATED, b"a", True),
        (EventKind.MODIFIED, b"a", True),
        (EventKind.REMOVED, b"a", False),
    ]  # the refused put-if-absent, replace and second remove changed nothing: no events


async def test_put_all_tells_created_from_modified() -> None:
    hub = EventHub()
    caches = service(hub)
    await caches.execute("c", [Put(b"old", b"1")])
    sub = hub.subscribe("c")
    await caches.execute("c", [PutAll(((b"old", b"2"), (b"new", b"3")))])
    assert [(k, key) for k, key, _ in drain(sub.receive)] == [
        (EventKind.MODIFIED, b"old"),
        (EventKind.CREATED, b"new"),
    ]


async def test_other_caches_and_unsubscribed_listeners_get_nothing() -> None:
    hub = EventHub()
    caches = service(hub)
    sub = hub.subscribe("c")
    await caches.execute("quiet", [Put(b"k", b"v")])
    assert drain(sub.receive) == []
    sub.close()
    assert not hub.listened("c")
    await caches.execute("c", [Put(b"k", b"v")])  # no subscriber: nothing published, no error


async def test_a_listener_that_falls_behind_is_dropped_not_the_writers() -> None:
    hub = EventHub(queue_size=3)
    caches = service(hub)
    sub = hub.subscribe("c")
    for i in range(10):
        await caches.execute("c", [Put(b"k%d" % i, b"v")])
    assert not hub.listened("c")
    received = []
    async for event in sub.receive:  # the closed channel ends after what was queued
        received.append(event.key)
    assert received == [b"k0", b"k1", b"k2"]


def test_interest_bits() -> None:
    assert [k.interest for k in EventKind] == [1, 2, 4, 8]
