"""InProcessCacheService: the CacheService contract without processes."""

from __future__ import annotations

import pytest

from gridactor.cache.api import CacheService, CacheSettings, Entry, Get, Put, Size, WriteResult
from gridactor.cache.local import InProcessCacheService
from gridactor.errors import CacheExistsError, CacheNotFoundError


async def test_local_service() -> None:
    svc: CacheService = InProcessCacheService([CacheSettings("a"), CacheSettings("b")], "a")
    assert svc.cache_names() == ["a", "b"]
    assert svc.default_cache() == "a"
    assert svc.settings("").name == "a"
    res = await svc.execute("", [Put(b"k", b"v"), Get(b"k"), Size()])
    assert res[0] == WriteResult(True, None)
    assert isinstance(res[1], Entry)
    assert res[1].value == b"v"
    assert res[2] == 1
    many = await svc.execute_many([("b", Get(b"k")), ("zzz", Get(b"k")), ("a", Get(b"k"))])
    assert many[0] is None
    assert isinstance(many[1], CacheNotFoundError)
    assert isinstance(many[2], Entry)
    with pytest.raises(CacheNotFoundError):
        await svc.execute("zzz", [Get(b"k")])
    await svc.create_cache(CacheSettings("c"))
    with pytest.raises(CacheExistsError):
        await svc.create_cache(CacheSettings("c"))
    await svc.remove_cache("c")
    with pytest.raises(CacheNotFoundError):
        await svc.remove_cache("c")
    with pytest.raises(CacheNotFoundError):
        InProcessCacheService([]).settings("")
