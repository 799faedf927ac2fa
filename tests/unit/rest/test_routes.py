"""Every REST v2 route and status code, through serve_http with an h11 client."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator

import pytest
import trio

from gridactor.cache.api import CacheSettings, Get, Put
from gridactor.protocols.rest.events import Headers, Request, Response
from gridactor.protocols.rest.resources import decode_key, etag_of
from gridactor.protocols.rest.routes import Dispatcher, Router
from gridactor.server.context import EndpointContext
from tests.unit.rest.helpers import H11Client, Reply, make_ctx, open_server

BASE = "/rest/v2/caches/default"


class Api:
    def __init__(self, client: H11Client, ctx: EndpointContext) -> None:
        self.client = client
        self.ctx = ctx

    async def __call__(
        self, method: str, target: str, body: bytes = b"", **headers: str
    ) -> Reply:
        hdrs = [(k.replace("_", "-"), v) for k, v in headers.items()]
        return await self.client.request(method, target, hdrs, body)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    ctx = make_ctx()
    async with open_server(ctx) as (stream, _):
        yield Api(H11Client(stream), ctx)


# ------------------------------------------------------------------------------ entries


async def test_put_get_head_delete(api: Api) -> None:
    put = await api("PUT", f"{BASE}/k1", b"hello", content_type="text/plain")
    assert put.status == 204
    assert put.header("etag") == etag_of(b"hello")
    got = await api("GET", f"{BASE}/k1")
    assert got.status == 200
    assert got.body == b"hello"
    assert got.header("content-type") == "text/plain"
    assert got.header("etag") == etag_of(b"hello")
    assert got.header("cache-control") == "no-cache"
    assert got.header("last-modified")
    assert got.header("expires") is None
    assert got.header("timetoliveseconds") is None
    assert int(got.header("created") or 0) > 0
    assert int(got.header("lastused") or 0) > 0
    head = await api("HEAD", f"{BASE}/k1")
    assert head.status == 200
    assert head.body == b""
    assert head.header("content-length") == "5"
    assert (await api("DELETE", f"{BASE}/k1")).status == 204
    assert (await api("GET", f"{BASE}/k1")).status == 404
    assert (await api("HEAD", f"{BASE}/k1")).status == 404
    assert (await api("DELETE", f"{BASE}/k1")).status == 404


async def test_default_content_type_is_text_plain(api: Api) -> None:
    await api("PUT", f"{BASE}/plain", b"v")
    assert (await api("GET", f"{BASE}/plain")).header("content-type") == "text/plain"


async def test_post_conflict(api: Api) -> None:
    assert (await api("POST", f"{BASE}/p", b"one")).status == 204
    conflict = await api("POST", f"{BASE}/p", b"two")
    assert conflict.status == 409
    assert conflict.body == b"An entry already exists"
    assert (await api("GET", f"{BASE}/p")).body == b"one"


async def test_text_key_is_exact_utf8_of_decoded_segment(api: Api) -> None:
    await api("PUT", f"{BASE}/caf%C3%A9%2Fslash%20space", b"v")
    entry = await api.ctx.caches.execute("default", [Get("café/slash space".encode())])
    assert entry[0] is not None
    # And a key written by another protocol is found by REST.
    await api.ctx.caches.execute("default", [Put("ключ".encode(), b"from-hotrod", media_type="text/plain")])
    got = await api("GET", f"{BASE}/%D0%BA%D0%BB%D1%8E%D1%87")
    assert got.body == b"from-hotrod"


async def test_octet_stream_keys(api: Api) -> None:
    await api("PUT", f"{BASE}/0x01ff", b"hex", key_content_type="application/octet-stream; encoding=hex")
    assert (await api.ctx.caches.execute("default", [Get(b"\x01\xff")]))[0] is not None
    await api("PUT", f"{BASE}/AQI=", b"b64", key_content_type="application/octet-stream; encoding=base64")
    assert (await api.ctx.caches.execute("default", [Get(b"\x01\x02")]))[0] is not None
    bad = await api("GET", f"{BASE}/zz", key_content_type="application/octet-stream; encoding=hex")
    assert bad.status == 400


def test_decode_key_limits() -> None:
    assert decode_key(b"abc", None, 10) == b"abc"
    assert decode_key(b"abc", "text/plain; charset=UTF-8", 10) == b"abc"
    with pytest.raises(Exception, match="exceeds the limit"):
        decode_key(b"a" * 11, None, 10)


async def test_expiration_headers(api: Api) -> None:
    put = await api("PUT", f"{BASE}/ttl", b"v", timeToLiveSeconds="100", maxIdleTimeSeconds="50")
    assert put.status == 204
    got = await api("GET", f"{BASE}/ttl")
    assert got.header("timetoliveseconds") == "100"
    assert got.header("maxidletimeseconds") == "50"
    expires = got.header("expires")
    assert expires is not None
    assert email.utils.parsedate_to_datetime(expires).timestamp() > time.time() + 40
    # Negative = never expires, 0 = cache default (never for "default").
    await api("PUT", f"{BASE}/forever", b"v", timeToLiveSeconds="-1", maxIdleTimeSeconds="0")
    got = await api("GET", f"{BASE}/forever")
    assert got.header("expires") is None
    assert got.header("timetoliveseconds") is None
    bad = await api("PUT", f"{BASE}/bad", b"v", timeToLiveSeconds="soon")
    assert bad.status == 400


async def test_conditional_get(api: Api) -> None:
    put = await api("PUT", f"{BASE}/c", b"v1")
    etag = put.header("etag") or ""
    assert (await api("GET", f"{BASE}/c", if_none_match=etag)).status == 304
    assert (await api("GET", f"{BASE}/c", if_none_match=f'"{etag}"')).status == 304
    assert (await api("GET", f"{BASE}/c", if_none_match="123")).status == 200
    assert (await api("GET", f"{BASE}/c", if_match=etag)).status == 200
    assert (await api("GET", f"{BASE}/c", if_match="123")).status == 412
    future = email.utils.formatdate(time.time() + 3600, usegmt=True)
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    assert (await api("GET", f"{BASE}/c", if_modified_since=future)).status == 304
    assert (await api("GET", f"{BASE}/c", if_modified_since=past)).status == 200
    assert (await api("GET", f"{BASE}/c", if_unmodified_since=past)).status == 412
    assert (await api("GET", f"{BASE}/c", if_unmodified_since=future)).status == 200
    assert (await api("GET", f"{BASE}/c", if_modified_since="not a date")).status == 200


async def test_conditional_put_and_delete(api: Api) -> None:
    etag = (await api("PUT", f"{BASE}/d", b"v1")).header("etag") or ""
    assert (await api("PUT", f"{BASE}/d", b"v1", if_none_match=etag)).status == 304
    assert (await api("PUT", f"{BASE}/d", b"v2", if_match="999")).status == 412
    assert (await api("PUT", f"{BASE}/missing", b"v2", if_match=etag)).status == 412
    replaced = await api("PUT", f"{BASE}/d", b"v2", if_match=etag)
    assert replaced.status == 204
    etag2 = replaced.header("etag") or ""
    assert etag2 == etag_of(b"v2")
    assert (await api("DELETE", f"{BASE}/d", if_match=etag)).status == 412
    assert (await api("DELETE", f"{BASE}/d", if_none_match=etag)).status == 412
    assert (await api("DELETE", f"{BASE}/missing", if_match=etag)).status == 404
    assert (await api("DELETE", f"{BASE}/d", if_match=etag2)).status == 204


async def test_unknown_cache_is_404_with_ispn_text(api: Api) -> None:
    for method in ("GET", "PUT", "DELETE", "HEAD"):
        reply = await api(method, "/rest/v2/caches/nope/k", b"v" if method == "PUT" else b"")
        assert reply.status == 404
        if method != "HEAD":
            assert reply.body == (
                b"ISPN012010: Cache with name 'nope' not found amongst the configured caches"
            )


# ------------------------------------------------------------------------------ caches


async def test_list_caches(api: Api) -> None:
    reply = await api("GET", "/rest/v2/caches")
    assert reply.status == 200
    assert reply.header("content-type") == "application/json"
    assert json.loads(reply.body) == ["default", "json"]


async def test_cache_details_head_and_missing(api: Api) -> None:
    reply = await api("GET", BASE)
    assert reply.status == 200
    details = json.loads(reply.body)
    assert details["size"] == 0
    assert details["mode"] == "LOCAL"
    assert "local-cache" in details["configuration"]
    assert (await api("HEAD", BASE)).status == 204
    assert (await api("HEAD", "/rest/v2/caches/nope")).status == 404
    assert (await api("GET", "/rest/v2/caches/nope")).status == 404


async def test_create_cache_variants(api: Api) -> None:
    assert (await api("POST", "/rest/v2/caches/empty")).status == 200
    assert api.ctx.caches.settings("empty") == CacheSettings(name="empty")
    exists = await api("POST", "/rest/v2/caches/empty")
    assert exists.status == 400
    assert b"ISPN000507" in exists.body
    body = json.dumps({"local-cache": {"expiration": {"lifespan": 60000}}}).encode()
    assert (await api("POST", "/rest/v2/caches/j", body, content_type="application/json")).status == 200
    assert api.ctx.caches.settings("j").lifespan_ms == 60000
    xml = b'<local-cache><expiration max-idle="5000"/></local-cache>'
    assert (await api("POST", "/rest/v2/caches/x", xml, content_type="application/xml")).status == 200
    assert api.ctx.caches.settings("x").max_idle_ms == 5000
    untyped = await api("POST", "/rest/v2/caches/u", body, content_type="text/plain")
    assert untyped.status == 200
    bad = await api("POST", "/rest/v2/caches/b", b"{nope", content_type="application/json")
    assert bad.status == 400
    yaml = await api("POST", "/rest/v2/caches/y", b"localCache: {}", content_type="application/yaml")
    assert yaml.status == 415
    assert (await api("POST", "/rest/v2/caches/t", b"", content_type="image/png")).status == 200


async def test_create_from_template(api: Api) -> None:
    api.ctx.cache_templates["short"] = CacheSettings(name="short", lifespan_ms=1000)
    assert (await api("POST", "/rest/v2/caches/fromtpl?template=short")).status == 200
    assert api.ctx.caches.settings("fromtpl") == CacheSettings(name="fromtpl", lifespan_ms=1000)
    missing = await api("POST", "/rest/v2/caches/other?template=none")
    assert missing.status == 400


async def test_put_cache_create_or_update(api: Api) -> None:
    body = json.dumps({"local-cache": {"statistics": True}}).encode()
    assert (await api("PUT", "/rest/v2/caches/pc", body, content_type="application/json")).status == 200
    assert (await api("PUT", "/rest/v2/caches/pc", body, content_type="application/json")).status == 200
    changed = json.dumps({"local-cache": {"expiration": {"lifespan": 5}}}).encode()
    assert (await api("PUT", "/rest/v2/caches/pc", changed, content_type="application/json")).status == 400


async def test_delete_cache(api: Api) -> None:
    await api("POST", "/rest/v2/caches/gone")
    assert (await api("DELETE", "/rest/v2/caches/gone")).status == 200
    missing = await api("DELETE", "/rest/v2/caches/gone")
    assert missing.status == 404
    assert b"ISPN012010" in missing.body


async def test_keys_entries_size_clear(api: Api) -> None:
    for i in range(5):
        await api("PUT", f"{BASE}/k{i}", f"v{i}".encode(), content_type="text/plain")
    await api.ctx.caches.execute("default", [Put(b"\xff\xfe", b"\x00\x01")])
    keys = json.loads((await api("GET", f"{BASE}?action=keys")).body)
    assert sorted(keys) == sorted([f"k{i}" for i in range(5)] + ["//4="])
    assert len(json.loads((await api("GET", f"{BASE}?action=keys&limit=2")).body)) == 2
    entries = json.loads((await api("GET", f"{BASE}?action=entries")).body)
    assert {"key": "k1", "value": "v1"} in entries
    meta = json.loads((await api("GET", f"{BASE}?action=entries&metadata=true&limit=1")).body)
    assert len(meta) == 1
    assert {"timeToLiveSeconds", "maxIdleTimeSeconds", "created", "lastUsed", "expireTime"} <= set(meta[0])
    assert json.loads((await api("GET", f"{BASE}?action=size")).body) == 6
    assert (await api("POST", f"{BASE}?action=clear")).status == 204
    assert json.loads((await api("GET", f"{BASE}?action=size")).body) == 0
    assert (await api("GET", f"{BASE}?action=keys&limit=x")).status == 400


async def test_json_values_embedded(api: Api) -> None:
    await api("PUT", "/rest/v2/caches/json/a", b'{"x": 1}', content_type="application/json")
    await api("PUT", "/rest/v2/caches/json/b", b"not json", content_type="application/json")
    entries = json.loads((await api("GET", "/rest/v2/caches/json?action=entries")).body)
    assert {"key": "a", "value": {"x": 1}} in entries
    assert {"key": "b", "value": "not json"} in entries


async def test_stats_and_config(api: Api) -> None:
    await api("PUT", f"{BASE}/s", b"v")
    await api("GET", f"{BASE}/s")
    stats = json.loads((await api("GET", f"{BASE}?action=stats")).body)
    assert stats["stores"] >= 1
    assert stats["hits"] >= 1
    config = await api("GET", f"{BASE}?action=config")
    assert config.header("content-type") == "application/json"
    assert "local-cache" in json.loads(config.body)
    xml = await api("GET", f"{BASE}?action=config", accept="application/xml")
    assert xml.header("content-type") == "application/xml"
    assert xml.body.startswith(b"<local-cache")


async def test_action_errors(api: Api) -> None:
    empty = await api("GET", f"{BASE}?action=")
    assert empty.status == 400
    assert empty.body == b"Invalid action"
    assert (await api("GET", f"{BASE}?action=bogus")).status == 400
    assert (await api("POST", f"{BASE}?action=keys")).status == 405
    assert (await api("GET", f"{BASE}?action=clear")).status == 405
    assert (await api("GET", f"{BASE}/k?action=distribution")).status == 400
    assert (await api("GET", "/rest/v2/caches/nope?action=size")).status == 404


async def test_unknown_paths_and_methods(api: Api) -> None:
    assert (await api("GET", "/rest/v2/nothing")).status == 404
    assert (await api("GET", "/other/v2/caches")).status == 404
    assert (await api("GET", "/rest/v2/caches/a/b/c")).status == 404
    wrong = await api("DELETE", "/rest/v2/server")
    assert wrong.status == 405
    assert wrong.header("allow") == "GET"
    assert (await api("PATCH", f"{BASE}/k")).status == 405
    assert (await api("GET", "/rest/v2/caches/")).status == 200  # trailing slash tolerated


# ------------------------------------------------------------------------------ server & health


async def test_server_info(api: Api) -> None:
    reply = await api("GET", "/rest/v2/server")
    assert json.loads(reply.body) == {"version": api.ctx.server_version, "cache-manager-name": "default"}


@pytest.mark.parametrize(
    "path", ["/rest/v2/cache-managers/default/health/status", "/rest/v2/container/health/status"]
)
async def test_health_status(api: Api, path: str) -> None:
    reply = await api("GET", path)
    assert reply.status == 200
    assert reply.body == b"HEALTHY"
    assert reply.header("content-type") == "text/plain"
    assert (await api("HEAD", path)).status == 200


@pytest.mark.parametrize("path", ["/rest/v2/cache-managers/default/health", "/rest/v2/container/health"])
async def test_health(api: Api, path: str) -> None:
    body = json.loads((await api("GET", path)).body)
    assert body["cluster_health"]["health_status"] == "HEALTHY"
    assert {"status": "HEALTHY", "cache_name": "default"} in body["cache_health"]


async def test_custom_context_path() -> None:
    ctx = make_ctx(rest_context_path="api")
    async with open_server(ctx) as (stream, _):
        client = H11Client(stream)
        assert (await client.request("GET", "/api/v2/server")).status == 200
        assert (await client.request("GET", "/rest/v2/server")).status == 404


# ------------------------------------------------------------------------------ auth seam & errors


async def test_realm_without_mechanism_challenges_protected_routes() -> None:
    ctx = make_ctx(security_realm="default")
    async with open_server(ctx) as (stream, _):
        client = H11Client(stream)
        denied = await client.request("GET", "/rest/v2/caches")
        assert denied.status == 401
        assert denied.header("www-authenticate") == 'Basic realm="default"'
        assert (await client.request("GET", "/rest/v2/server")).status == 200
        assert (await client.request("GET", "/rest/v2/container/health/status")).status == 200
        # Unmatched paths are answered without a challenge, as Infinispan does.
        assert (await client.request("GET", "/rest/v2/nothing")).status == 404


class _AllowAll:
    def __init__(self) -> None:
        self.seen: list[bytes] = []

    async def authenticate(self, request: Request) -> Response | Headers:
        self.seen.append(request.target)
        return [(b"authentication-info", b'nextnonce="n"')]


async def test_plugged_authenticator_runs_for_protected_only() -> None:
    ctx = make_ctx(security_realm="default")
    auth = _AllowAll()
    dispatcher = Dispatcher(ctx, authenticator=auth)
    ok = await dispatcher.handle(Request(1, "GET", b"/rest/v2/caches", {}))
    assert ok.status == 200
    assert (b"authentication-info", b'nextnonce="n"') in ok.headers
    await dispatcher.handle(Request(2, "GET", b"/rest/v2/server", {}))
    assert auth.seen == [b"/rest/v2/caches"]


async def test_unexpected_exception_is_500_without_details(caplog: pytest.LogCaptureFixture) -> None:
    ctx = make_ctx()

    async def boom(*_: object) -> Response:
        raise RuntimeError("secret detail")

    from gridactor.protocols.rest.routes import Invocation
    from gridactor.security.access import LOGGED_IN

    router = Router([Invocation(frozenset({"GET"}), ("boom",), boom, None, LOGGED_IN)])
    dispatcher = Dispatcher(ctx, router=router)
    reply = await dispatcher.handle(Request(1, "GET", b"/rest/v2/boom", {}))
    assert reply.status == 500
    assert reply.body == b"internal error"
    assert "secret detail" in caplog.text  # in the log, not in the response


async def test_same_routes_over_h2() -> None:
    from tests.unit.rest.helpers import H2Client

    ctx = make_ctx()
    async with open_server(ctx, http2=True) as (stream, _), trio.open_nursery() as nursery:
        client = H2Client(stream)
        await client.start(nursery)
        assert (await client.request("POST", f"{BASE}/h", body=b"1")).status == 204
        assert (await client.request("POST", f"{BASE}/h", body=b"2")).status == 409
        assert (await client.request("GET", f"{BASE}?action=")).status == 400
        assert (await client.request("DELETE", "/rest/v2/server")).status == 405
        head = await client.request("HEAD", f"{BASE}/h")
        assert head.status == 200
        assert head.body == b""
        assert (await client.request("GET", "/rest/v2/caches/nope/x")).status == 404
        nursery.cancel_scope.cancel()
