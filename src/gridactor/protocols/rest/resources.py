"""REST v2 handlers: one coroutine per (route, method, action), written once for both HTTP versions.

A handler gets the neutral :class:`Request`, the endpoint context and the decoded path
parameters, and returns a :class:`Response`. GridErrors propagate to the dispatcher,
which turns them into their ``http_status``; anything a handler can tell is the client's
fault is an :class:`InvalidRequestError` (400).

Choices where Infinispan leaves room (see infinispan-security.md §3):

* ETag: unsigned decimal of a 64-bit BLAKE2b of the stored value. Like Infinispan's
  MurmurHash3 it depends on the value only (same bytes, same tag) and is unquoted; unlike
  it, it is computed in C, so a 64 MiB value costs milliseconds. Precondition headers
  match it exactly, quoted (``"123"``), weak (``W/"123"``) or ``*``; Infinispan accepts only
  the exact form, which makes standard clients that quote never match.
* ``Last-Modified`` is the time of the entry's last write (``Entry.created_ms``).
* Keys: text keys are the exact bytes of the percent-decoded path segment. With
  ``Key-Content-Type: application/octet-stream; encoding=hex`` (or ``base64``) the segment
  is decoded first; plain ``application/octet-stream`` also means the raw segment bytes.
* Keys/values in JSON listings: UTF-8 text as a string; JSON values (stored with a JSON
  media type) embedded as JSON; anything else base64.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.utils
import hashlib
import json
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from gridactor.cache.api import (
    INFINITE,
    CacheOp,
    CacheResult,
    CacheSettings,
    CacheStatistics,
    Clear,
    Entry,
    Get,
    Put,
    PutIfAbsent,
    Remove,
    RemoveIfUnmodified,
    ReplaceIfUnmodified,
    ScanSegments,
    SegmentEntries,
    Size,
    Stats,
    WriteResult,
)
from gridactor.errors import CacheExistsError, CacheNotFoundError, ConfigError, GridError, InvalidRequestError
from gridactor.protocols.rest.events import Headers, Request, Response
from gridactor.security.identity import Identity
from gridactor.security.permissions import Permission, implies, permission_names
from gridactor.server.context import ACL_FLUSH_NOTICE, EndpointContext


@dataclass(frozen=True, slots=True)
class PathParams:
    cache: str = ""
    key: bytes = b""


Handler = Callable[[Request, EndpointContext, PathParams], Awaitable[Response]]
# A request that needs exactly one cache operation: (cache, op, how to answer from its
# result). The connection gathers the ops of every request that arrived together into one
# ``CacheService.execute_many`` call, as the Hot Rod path does.
Planned = tuple[str, CacheOp, Callable[[CacheResult], Response]]
# Plans a request without awaiting anything: a Planned op, an immediate Response, or None
# when the request needs the full (async) handler, e.g. a conditional write.
Planner = Callable[[Request, EndpointContext, PathParams], "Planned | Response | None"]

JSON_TYPE = b"application/json"
TEXT_TYPE = b"text/plain; charset=utf-8"
NO_CACHE: tuple[bytes, bytes] = (b"cache-control", b"no-cache")


def json_response(status: int, payload: object) -> Response:
    return Response(status, [(b"content-type", JSON_TYPE)], json.dumps(payload).encode("utf-8"))


# ---------------------------------------------------------------------------------- helpers


async def run_one(ctx: EndpointContext, cache: str, op: CacheOp) -> CacheResult:
    results = await ctx.caches.execute(cache, [op])
    result = results[0]
    if isinstance(result, GridError):
        raise result
    return result


async def run_planned(ctx: EndpointContext, planned: Planned | Response) -> Response:
    """Execute one plan on its own (the path of requests that are not batched)."""
    if isinstance(planned, Response):
        return planned
    cache, op, finish = planned
    return finish(await run_one(ctx, cache, op))


def media_type_of(value: str | None) -> tuple[str, dict[str, str]]:
    """``"text/plain; charset=UTF-8"`` -> ``("text/plain", {"charset": "UTF-8"})``."""
    if not value:
        return "", {}
    parts = value.split(";")
    params: dict[str, str] = {}
    for part in parts[1:]:
        name, _, val = part.partition("=")
        params[name.strip().lower()] = val.strip().strip('"')
    return parts[0].strip().lower(), params


def decode_key(raw: bytes, key_content_type: str | None, max_bytes: int) -> bytes:
    mt, params = media_type_of(key_content_type)
    key = raw
    if mt == "application/octet-stream":
        encoding = params.get("encoding", "").lower()
        if encoding == "hex":
            text = raw.decode("ascii", "replace")
            if text[:2] in ("0x", "0X"):
                text = text[2:]
            try:
                key = bytes.fromhex(text)
            except ValueError:
                raise InvalidRequestError(f"Invalid hex key '{text}'") from None
        elif encoding == "base64":
            try:
                key = base64.b64decode(raw.replace(b"-", b"+").replace(b"_", b"/"), validate=True)
            except (binascii.Error, ValueError):
                raise InvalidRequestError("Invalid base64 key") from None
    if not key:
        raise InvalidRequestError("Empty key")
    if len(key) > max_bytes:
        raise InvalidRequestError(f"Key of {len(key)} bytes exceeds the limit of {max_bytes} bytes")
    return key


def etag_of(value: bytes) -> str:
    return str(int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "big"))


def _etag_matches(header: str, etag: str) -> bool:
    for item in header.split(","):
        tag = item.strip()
        if tag == "*" or tag == etag:
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == etag:
            return True
    return False


_dates: dict[int, bytes] = {}


def http_date(ms: int) -> bytes:
    # Entries written in the same second share their Last-Modified: format it once.
    seconds = ms // 1000
    cached = _dates.get(seconds)
    if cached is None:
        if len(_dates) >= 4096:
            _dates.clear()
        cached = _dates[seconds] = email.utils.formatdate(seconds, usegmt=True).encode("ascii")
    return cached


def _parse_http_date(value: str) -> int | None:
    """Epoch seconds, or None when the header is not a date (then it is ignored, RFC 9110)."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    return int(parsed.timestamp())


def _duration_header(request: Request, name: bytes) -> int | None:
    """``timeToLiveSeconds``/``maxIdleTimeSeconds``: absent or 0 -> cache default (None),
    negative -> never (INFINITE), positive seconds -> milliseconds."""
    raw = request.header_str(name)
    if raw is None or raw == "":
        return None
    try:
        seconds = int(raw)
    except ValueError:
        raise InvalidRequestError(f"Invalid {name.decode()} header '{raw}'") from None
    if seconds == 0:
        return None
    if seconds < 0:
        return INFINITE
    return seconds * 1000


def _text_or_base64(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii")


def _is_json_type(media_type: str) -> bool:
    mt, _ = media_type_of(media_type)
    return mt == "application/json" or mt.endswith("+json")


def _json_value(entry: Entry, settings: CacheSettings) -> object:
    if _is_json_type(entry.media_type or settings.value_media_type):
        try:
            return json.loads(entry.value)
        except (ValueError, UnicodeDecodeError):
            pass
    return _text_or_base64(entry.value)


def _limit_param(request: Request) -> int:
    raw = request.query_param("limit")
    if raw is None or raw == "":
        return -1
    try:
        return int(raw)
    except ValueError:
        raise InvalidRequestError(f"Invalid limit '{raw}'") from None


def _cache_name(params: PathParams) -> str:
    # The REST API always names its cache; "" would mean "default cache" to CacheService.
    if not params.cache:
        raise CacheNotFoundError("")
    return params.cache


# ---------------------------------------------------------------------------------- entries


def _entry_headers(entry: Entry, etag: str) -> Headers:
    headers: Headers = [
        (b"content-type", (entry.media_type or "text/plain").encode("latin-1", "replace")),
        (b"etag", etag.encode()),
        (b"last-modified", http_date(entry.created_ms)),
        NO_CACHE,
        (b"created", str(entry.created_ms).encode()),
        (b"lastused", str(entry.last_used_ms).encode()),
    ]
    expires = entry.expires_at_ms()
    if expires != INFINITE:
        headers.append((b"expires", http_date(expires)))
    if entry.lifespan_ms >= 0:
        headers.append((b"timetoliveseconds", str(entry.lifespan_ms // 1000).encode()))
    if entry.max_idle_ms >= 0:
        headers.append((b"maxidletimeseconds", str(entry.max_idle_ms // 1000).encode()))
    return headers


def _read_preconditions(request: Request, entry: Entry, etag: str) -> int | None:
    """RFC 9110 §13.2.2 order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since."""
    headers = request.headers
    if (
        b"if-match" not in headers
        and b"if-none-match" not in headers
        and b"if-modified-since" not in headers
        and b"if-unmodified-since" not in headers
    ):
        return None
    last_modified_s = entry.created_ms // 1000
    if_match = request.header_str(b"if-match")
    if if_match is not None:
        if not _etag_matches(if_match, etag):
            return 412
    else:
        since = request.header_str(b"if-unmodified-since")
        if since is not None:
            limit = _parse_http_date(since)
            if limit is not None and last_modified_s > limit:
                return 412
    if_none_match = request.header_str(b"if-none-match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            return 304
    else:
        since = request.header_str(b"if-modified-since")
        if since is not None:
            limit = _parse_http_date(since)
            if limit is not None and last_modified_s <= limit:
                return 304
    return None


def _key(request: Request, ctx: EndpointContext, params: PathParams) -> bytes:
    key_content_type = request.headers.get(b"key-content-type")
    if key_content_type is None and params.key and len(params.key) <= ctx.limits.max_key_bytes:
        return params.key  # the common case: a text key, nothing to decode
    return decode_key(params.key, request.header_str(b"key-content-type"), ctx.limits.max_key_bytes)


def plan_get_entry(request: Request, ctx: EndpointContext, params: PathParams) -> Planned:
    cache = _cache_name(params)
    key = _key(request, ctx, params)

    def finish(entry: CacheResult) -> Response:
        if entry is None:
            return Response.empty(404)
        assert isinstance(entry, Entry)
        etag = etag_of(entry.value)
        status = _read_preconditions(request, entry, etag)
        if status is not None:
            return Response.empty(status, [(b"etag", etag.encode())] if status == 304 else None)
        return Response(200, _entry_headers(entry, etag), entry.value)

    return cache, Get(key), finish


async def get_entry(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    return await run_planned(ctx, plan_get_entry(request, ctx, params))


def _write_args(request: Request, ctx: EndpointContext) -> tuple[int | None, int | None, str]:
    if len(request.body) > ctx.limits.max_value_bytes:
        raise _TooLarge(len(request.body), ctx.limits.max_value_bytes)
    lifespan = _duration_header(request, b"timetoliveseconds")
    max_idle = _duration_header(request, b"maxidletimeseconds")
    media_type = request.header_str(b"content-type") or ""
    return lifespan, max_idle, media_type


class _TooLarge(GridError):
    http_status = 413

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"Value of {size} bytes exceeds the limit of {limit} bytes")


def _written(value: bytes) -> Callable[[CacheResult], Response]:
    def finish(result: CacheResult) -> Response:
        return Response.empty(204, [(b"etag", etag_of(value).encode())])

    return finish


def plan_put_entry(request: Request, ctx: EndpointContext, params: PathParams) -> Planned | None:
    """An unconditional PUT is one Put; a conditional one needs put_entry (None)."""
    if b"if-match" in request.headers or b"if-none-match" in request.headers:
        return None
    cache = _cache_name(params)
    key = _key(request, ctx, params)
    lifespan, max_idle, media_type = _write_args(request, ctx)
    put = Put(key, request.body, lifespan, max_idle, media_type, previous=False)
    return cache, put, _written(request.body)


async def put_entry(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    planned = plan_put_entry(request, ctx, params)
    if planned is not None:
        return await run_planned(ctx, planned)
    cache = _cache_name(params)
    key = _key(request, ctx, params)
    lifespan, max_idle, media_type = _write_args(request, ctx)
    value = request.body
    if_match = request.header_str(b"if-match")
    if_none_match = request.header_str(b"if-none-match")
    if if_match is not None or if_none_match is not None:
        current = await run_one(ctx, cache, Get(key))
        assert current is None or isinstance(current, Entry)
        if current is None:
            if if_match is not None:
                return Response.empty(412)
        else:
            current_etag = etag_of(current.value)
            if if_none_match is not None and _etag_matches(if_none_match, current_etag):
                # Infinispan: the entry already holds this representation.
                return Response.empty(304, [(b"etag", current_etag.encode())])
            if if_match is not None:
                if not _etag_matches(if_match, current_etag):
                    return Response.empty(412)
                # Write only if nobody wrote in between the check and now.
                result = await run_one(
                    ctx,
                    cache,
                    ReplaceIfUnmodified(key, value, current.version, lifespan, max_idle, media_type),
                )
                assert isinstance(result, WriteResult)
                if not result.done:
                    return Response.empty(412)
                return Response.empty(204, [(b"etag", etag_of(value).encode())])
    await run_one(ctx, cache, Put(key, value, lifespan, max_idle, media_type, previous=False))
    return Response.empty(204, [(b"etag", etag_of(value).encode())])


def plan_post_entry(request: Request, ctx: EndpointContext, params: PathParams) -> Planned:
    cache = _cache_name(params)
    key = _key(request, ctx, params)
    lifespan, max_idle, media_type = _write_args(request, ctx)
    value = request.body

    def finish(result: CacheResult) -> Response:
        assert isinstance(result, WriteResult)
        if not result.done:
            return Response.text(409, "An entry already exists")
        return Response.empty(204, [(b"etag", etag_of(value).encode())])

    return cache, PutIfAbsent(key, value, lifespan, max_idle, media_type), finish


async def post_entry(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    return await run_planned(ctx, plan_post_entry(request, ctx, params))


def _removed(result: CacheResult) -> Response:
    assert isinstance(result, WriteResult)
    return Response.empty(204 if result.done else 404)


def plan_delete_entry(request: Request, ctx: EndpointContext, params: PathParams) -> Planned | None:
    """An unconditional DELETE is one Remove; a conditional one needs delete_entry (None)."""
    if b"if-match" in request.headers or b"if-none-match" in request.headers:
        return None
    return _cache_name(params), Remove(_key(request, ctx, params)), _removed


async def delete_entry(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    planned = plan_delete_entry(request, ctx, params)
    if planned is not None:
        return await run_planned(ctx, planned)
    cache = _cache_name(params)
    key = _key(request, ctx, params)
    if_match = request.header_str(b"if-match")
    if_none_match = request.header_str(b"if-none-match")
    current = await run_one(ctx, cache, Get(key))
    if current is None:
        return Response.empty(404)
    assert isinstance(current, Entry)
    current_etag = etag_of(current.value)
    if if_match is not None and not _etag_matches(if_match, current_etag):
        return Response.empty(412)
    # Infinispan uses If-None-Match as "remove only this version" on DELETE (sic); kept
    # for client compatibility: a different tag is a failed precondition.
    if if_none_match is not None and not _etag_matches(if_none_match, current_etag):
        return Response.empty(412)
    result = await run_one(ctx, cache, RemoveIfUnmodified(key, current.version))
    assert isinstance(result, WriteResult)
    if not result.done:
        return Response.empty(412 if result.previous is not None else 404)
    return Response.empty(204)


# ---------------------------------------------------------------------------------- caches


async def list_caches(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    names = ctx.caches.cache_names()
    if ctx.authorizer is not None and isinstance(request.identity, Identity):
        identity = request.identity
        names = [name for name in names if ctx.authorizer.visible(identity, name)]
    return json_response(200, sorted(names))


def _may(request: Request, ctx: EndpointContext, cache: str | None, permission: Permission) -> bool:
    """Whether the caller holds ``permission`` (always, when nothing is checked)."""
    if ctx.authorizer is None or not ctx.authorizer.enabled:
        return True
    if not isinstance(request.identity, Identity):
        return False
    return implies(ctx.authorizer.mask(request.identity, cache), permission)


async def user_acl(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    identity = request.identity
    if not isinstance(identity, Identity):
        # Authentication disabled: there is no subject to report.
        return json_response(200, {"subject": [], "global": ["ALL"], "caches": {}})
    if ctx.authorizer is None:
        everything = permission_names(int(Permission.ALL))
        return json_response(200, {
            "subject": [{"name": identity.name, "type": "NamePrincipal"}],
            "global": everything,
            "caches": {name: everything for name in sorted(ctx.caches.cache_names())},
        })
    return json_response(200, ctx.authorizer.acl(identity, ctx.caches.cache_names()))


async def flush_acl_cache(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    if ctx.authorizer is not None:
        ctx.authorizer.invalidate()
        if ctx.announce is not None:
            # Every other listener process (--listeners) flushes its own cache too; if
            # they cannot be told, the error (503) says to try again.
            await ctx.announce(ACL_FLUSH_NOTICE)
    return Response.empty(204)


def _settings_json(settings: CacheSettings) -> object:
    from gridactor.config import cache_definition

    return cache_definition.cache_settings_to_json(settings)


async def cache_details(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    cache = _cache_name(params)
    settings = ctx.caches.settings(cache)
    if request.method == "HEAD":
        return Response.empty(204)
    results = await ctx.caches.execute(cache, [Stats(), Size()])
    stats, size = results
    if isinstance(stats, GridError):
        raise stats
    if isinstance(size, GridError):
        raise size
    assert isinstance(stats, CacheStatistics)
    assert isinstance(size, int)
    details = {
        "stats": _stats_json(stats),
        "size": size,
        "configuration": _settings_json(settings),
        "rehash_in_progress": False,
        "indexing_in_progress": False,
        "bounded": settings.max_count >= 0,
        "indexed": False,
        "persistent": False,
        "transactional": False,
        "secured": ctx.security_realm is not None,
        "has_remote_backup": False,
        "statistics": settings.statistics,
        "queryable": False,
        "rebalancing_enabled": False,
        "mode": _MODES.get(settings.mode, settings.mode.upper()),
        "storage_type": "HEAP",
        "max_size": "",
        "max_size_bytes": -1,
        "key_storage": settings.key_media_type,
        "value_storage": settings.value_media_type,
    }
    if not _may(request, ctx, cache, Permission.ADMIN):
        # Only administrators see a cache's configuration (CVE-2023-3629 class).
        del details["configuration"]
    return json_response(200, details)


_MODES = {
    "local": "LOCAL",
    "distributed": "DIST_SYNC",
    "replicated": "REPL_SYNC",
    "invalidation": "INVALIDATION_SYNC",
}
_XML_TYPES = frozenset({"application/xml", "text/xml"})
_JSON_TYPES = frozenset({"application/json", "text/json"})


def _definition_from_request(request: Request, ctx: EndpointContext, name: str) -> CacheSettings:
    template = request.query_param("template")
    if template is not None:
        settings = ctx.cache_templates.get(template)
        if settings is None:
            raise InvalidRequestError(f"ISPN000436: Cache '{name}' has been requested, but no matching "
                                      f"cache configuration exists")
        return dataclasses.replace(settings, name=name)
    body = request.body
    if not body.strip():
        return CacheSettings(name=name)
    mt, _ = media_type_of(request.header_str(b"content-type"))
    if mt in ("", "text/plain", "application/octet-stream"):
        # Infinispan sniffs untyped bodies; so do we, for the two formats we read.
        lead = body.lstrip()[:1]
        mt = "application/xml" if lead == b"<" else "application/json" if lead in (b"{", b"[") else mt
    # YAML (which Infinispan also reads) is not supported yet: 415 like any other type.
    if mt not in _XML_TYPES and mt not in _JSON_TYPES:
        raise _Unsupported(mt or "(none)")
    from gridactor.config import cache_definition

    try:
        return cache_definition.parse_cache_definition(body, mt, name)
    except ConfigError as exc:
        raise InvalidRequestError(str(exc)) from None


class _Unsupported(GridError):
    http_status = 415

    def __init__(self, media_type: str) -> None:
        super().__init__(f"Unsupported content type '{media_type}' for a cache definition")


async def create_cache(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    name = _cache_name(params)
    if name in ctx.caches.cache_names():
        # Checked before parsing so a duplicate never costs a parse (and says so clearly).
        raise CacheExistsError(name)
    settings = _definition_from_request(request, ctx, name)
    await ctx.caches.create_cache(settings)
    return Response.empty(200)


async def create_or_update_cache(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    name = _cache_name(params)
    settings = _definition_from_request(request, ctx, name)
    if name not in ctx.caches.cache_names():
        await ctx.caches.create_cache(settings)
        return Response.empty(200)
    if ctx.caches.settings(name) == settings:
        return Response.empty(200)
    # CacheService has no "update" yet; recreating would drop the data, so refuse.
    raise InvalidRequestError(
        f"ISPN000961: Incompatible attribute changes for cache '{name}': updating the configuration of "
        f"an existing cache is not supported"
    )


async def delete_cache(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    await ctx.caches.remove_cache(_cache_name(params))
    return Response.empty(200)


async def _scan(ctx: EndpointContext, cache: str, limit: int) -> list[Entry]:
    """Every live entry, at most ``limit`` (< 0: all). With a limit, segments are read in
    slices so a small page of a big cache does not pull the whole cache over IPC."""
    entries: list[Entry] = []
    if limit < 0:
        result = await run_one(ctx, cache, ScanSegments(()))
        assert isinstance(result, list)
        for part in result:
            assert isinstance(part, SegmentEntries)
            entries.extend(part.entries)
        return entries
    step = 32
    for start in range(0, 256, step):
        if len(entries) >= limit:
            break
        result = await run_one(ctx, cache, ScanSegments(tuple(range(start, start + step))))
        assert isinstance(result, list)
        for part in result:
            assert isinstance(part, SegmentEntries)
            entries.extend(part.entries)
    return entries[:limit]


async def cache_keys(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    cache = _cache_name(params)
    ctx.caches.settings(cache)
    entries = await _scan(ctx, cache, _limit_param(request))
    return json_response(200, [_text_or_base64(e.key) for e in entries])


async def cache_entries(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    cache = _cache_name(params)
    settings = ctx.caches.settings(cache)
    metadata = (request.query_param("metadata") or "").lower() == "true"
    entries = await _scan(ctx, cache, _limit_param(request))
    out: list[dict[str, object]] = []
    for entry in entries:
        item: dict[str, object] = {"key": _text_or_base64(entry.key), "value": _json_value(entry, settings)}
        if metadata:
            item["timeToLiveSeconds"] = entry.lifespan_ms // 1000 if entry.lifespan_ms >= 0 else -1
            item["maxIdleTimeSeconds"] = entry.max_idle_ms // 1000 if entry.max_idle_ms >= 0 else -1
            item["created"] = entry.created_ms
            item["lastUsed"] = entry.last_used_ms
            item["expireTime"] = entry.expires_at_ms()
            item["version"] = entry.version
        out.append(item)
    return json_response(200, out)


async def cache_size(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    size = await run_one(ctx, _cache_name(params), Size())
    return json_response(200, size)


async def cache_clear(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    await run_one(ctx, _cache_name(params), Clear())
    return Response.empty(204)


def _stats_json(stats: CacheStatistics) -> dict[str, object]:
    reads = stats.hits + stats.misses
    out: dict[str, object] = {
        "time_since_start": stats.time_since_start_s,
        "time_since_reset": stats.time_since_start_s,
        "current_number_of_entries": stats.current_entries,
        "current_number_of_entries_in_memory": stats.current_entries,
        "total_number_of_entries": stats.stores,
        "stores": stats.stores,
        "retrievals": stats.retrievals,
        "hits": stats.hits,
        "misses": stats.misses,
        "remove_hits": stats.remove_hits,
        "remove_misses": stats.remove_misses,
        "evictions": stats.evictions,
        "hit_ratio": (stats.hits / reads) if reads else 0.0,
        "read_write_ratio": (reads / stats.stores) if stats.stores else 0.0,
    }
    out.update(stats.extra)
    return out


async def cache_stats(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    stats = await run_one(ctx, _cache_name(params), Stats())
    assert isinstance(stats, CacheStatistics)
    return json_response(200, _stats_json(stats))


async def cache_config(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    settings = ctx.caches.settings(_cache_name(params))
    from gridactor.config import cache_definition

    accept = (request.header_str(b"accept") or "").lower()
    if "xml" in accept and "json" not in accept:
        xml = cache_definition.cache_settings_to_xml(settings)
        return Response(200, [(b"content-type", b"application/xml")], xml.encode("utf-8"))
    return json_response(200, cache_definition.cache_settings_to_json(settings))


# ---------------------------------------------------------------------------------- server


async def server_info(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    return json_response(200, {"version": ctx.server_version, "cache-manager-name": "default"})


async def health_status(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    # Infinispan answers 200 HEALTHY even while stopping; load balancers use /health/ready.
    return Response(200, [(b"content-type", b"text/plain")], b"HEALTHY")


async def health(request: Request, ctx: EndpointContext, params: PathParams) -> Response:
    names: Sequence[str] = sorted(ctx.caches.cache_names())
    return json_response(
        200,
        {
            "cluster_health": {
                "cluster_name": "cluster",
                "health_status": "HEALTHY",
                "number_of_nodes": 1,
                "node_names": [socket.gethostname()],
            },
            "cache_health": [{"status": "HEALTHY", "cache_name": name} for name in names],
        },
    )
