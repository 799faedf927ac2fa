from __future__ import annotations

import pytest

from gridactor.cache.api import CacheSettings
from gridactor.cache.local import InProcessCacheService
from gridactor.errors import AuthenticationError
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod.codec import HotRodServerCodec
from gridactor.protocols.hotrod.connection import drain
from gridactor.protocols.hotrod.handler import AuthStep, HotRodSession, operation_allowed
from gridactor.protocols.hotrod.primitives import Reader, write_bytes, write_long, write_string
from gridactor.server.context import EndpointContext
from tests.unit.hotrod.hotrod_helpers import Response, error_of, frame, kv, next_response, one

NOW = 1_700_000_000_000
FRV = op.FORCE_RETURN_VALUE


def make_session(*, default: str | None = "default", realm: str | None = None) -> HotRodSession:
    caches = InProcessCacheService(
        [CacheSettings(name="default", key_media_type="text/plain"), CacheSettings(name="other")],
        default_cache=default,
        clock=lambda: NOW,
    )
    return HotRodSession(EndpointContext(caches=caches, security_realm=realm))


async def send(session: HotRodSession, *frames: bytes) -> bytes:
    codec = HotRodServerCodec()
    codec.receive_data(b"".join(frames))
    batch, _closed = drain(codec)
    assert len(batch) == len(frames)
    return await session.handle_batch(batch)


async def ask(session: HotRodSession, data: bytes) -> Response:
    out = await send(session, data)
    return one(out)


def put(
    key: bytes, value: bytes, *, version: int = 41, flags: int = 0, opcode: int = op.PUT, mid: int = 1
) -> bytes:
    return frame(opcode, kv(key, 0x77, value), version=version, flags=flags, mid=mid)


def keyed(opcode: int, key: bytes, extra: bytes = b"", **kw: object) -> bytes:
    return frame(opcode, write_bytes(key) + extra, **kw)  # type: ignore[arg-type]


def read_prev(r: Reader, version: int) -> tuple[int | None, bytes]:
    """(entry version or None, value) of a previous-value block."""
    if version < 40:
        return None, r.array(1 << 20)
    flags = r.byte()
    if not flags & 1:
        r.long()
        r.vint()
    if not flags & 2:
        r.long()
        r.vint()
    entry_version = r.long()
    return entry_version, r.array(1 << 20)


async def entry_version(session: HotRodSession, key: bytes) -> int:
    r = await ask(session, keyed(op.GET_WITH_VERSION, key))
    assert r.status == 0
    return r.body.long()


# ---------------------------------------------------------------- basics


async def test_ping_known_unknown_and_default() -> None:
    session = make_session()
    r = await ask(session, frame(op.PING, mid=4))
    assert (r.message_id, r.opcode, r.status) == (4, 0x18, 0)
    assert r.body.media_type(100) == "text/plain"
    _mid, status, text = error_of(await send(session, frame(op.PING, cache="nope")))
    assert status == 0x84
    assert "CacheNotFoundException" in text
    assert "'nope'" in text


async def test_ping_without_default_cache_succeeds_but_ops_fail() -> None:
    session = make_session(default=None)
    assert (await ask(session, frame(op.PING))).status == 0
    _, status, text = error_of(await send(session, keyed(op.GET, b"k")))
    assert status == 0x84
    assert "Default cache requested but not configured" in text


async def test_put_get_remove_round_trip_and_media_type() -> None:
    session = make_session()
    assert (await ask(session, put(b"k", b"v"))).status == 0
    r = await ask(session, keyed(op.GET, b"k"))
    assert (r.opcode, r.status, r.body.array(100)) == (0x04, 0, b"v")
    entry = session.caches.store.get("default", b"k", NOW)  # type: ignore[attr-defined]
    assert entry.media_type == "text/plain"
    assert (await ask(session, keyed(op.CONTAINS_KEY, b"k"))).status == 0
    assert (await ask(session, keyed(op.REMOVE, b"k"))).status == 0
    assert (await ask(session, keyed(op.GET, b"k"))).status == 2
    assert (await ask(session, keyed(op.CONTAINS_KEY, b"k"))).status == 2
    assert (await ask(session, keyed(op.REMOVE, b"k"))).status == 2


async def test_named_cache_and_unknown_cache_op() -> None:
    session = make_session()
    await send(session, frame(op.PUT, kv(b"k", 0x77, b"o"), cache="other"))
    assert (await ask(session, keyed(op.GET, b"k"))).status == 2
    assert (await ask(session, keyed(op.GET, b"k", cache="other"))).body.array(10) == b"o"
    _, status, text = error_of(await send(session, keyed(op.GET, b"k", cache="missing")))
    assert status == 0x84
    assert "CacheNotFoundException" in text


async def test_get_with_metadata_and_expiration() -> None:
    session = make_session()
    await send(session, frame(op.PUT, kv(b"k", 0x01, b"v", b"\x0a\xf4\x03")))  # 10 s, 500 ms
    r = await ask(session, keyed(op.GET_WITH_METADATA, b"k"))
    body = r.body
    assert body.byte() == 0
    assert (body.long(), body.vint()) == (NOW, 10)
    assert (body.long(), body.vint()) == (NOW, 0)
    body.long()
    assert body.array(10) == b"v"
    assert (await ask(session, keyed(op.GET_WITH_METADATA, b"zz"))).status == 2


async def test_size_clear_stats() -> None:
    session = make_session()
    await send(session, put(b"a", b"1"), put(b"b", b"2"))
    r = await ask(session, frame(op.SIZE))
    assert r.body.vlong() == 2
    r = await ask(session, frame(op.STATS))
    stats = {r.body.string(100): r.body.string(100) for _ in range(r.body.vint())}
    assert stats["currentNumberOfEntries"] == "2"
    assert int(stats["stores"]) >= 2
    assert (await ask(session, frame(op.CLEAR))).status == 0
    assert (await ask(session, frame(op.SIZE))).body.vlong() == 0


async def test_put_all_get_all_bulk() -> None:
    session = make_session()
    body = b"\x77\x02" + write_bytes(b"a") + write_bytes(b"1") + write_bytes(b"b") + write_bytes(b"2")
    assert (await ask(session, frame(op.PUT_ALL, body))).opcode == 0x2E
    r = await ask(
        session, frame(op.GET_ALL, b"\x03" + write_bytes(b"a") + write_bytes(b"b") + write_bytes(b"c"))
    )
    got = {r.body.array(10): r.body.array(10) for _ in range(r.body.vint())}
    assert got == {b"a": b"1", b"b": b"2"}
    r = await ask(session, frame(op.BULK_GET, b"\x00"))
    pairs = {}
    while r.body.byte() == 1:
        key = r.body.array(10)
        pairs[key] = r.body.array(10)
    assert pairs == {b"a": b"1", b"b": b"2"}
    r = await ask(session, frame(op.BULK_GET_KEYS, b"\x00"))
    keys = set()
    while r.body.byte() == 1:
        keys.add(r.body.array(10))
    assert keys == {b"a", b"b"}


async def test_pipelined_batch_keeps_order_and_message_ids() -> None:
    session = make_session()
    out = await send(
        session,
        put(b"k", b"1", mid=10),
        keyed(op.GET, b"k", mid=11),
        frame(op.PING, mid=12),
        put(b"k", b"2", mid=13, flags=FRV),
        keyed(op.GET, b"k", mid=14),
        frame(op.QUERY, write_bytes(b"q"), mid=15),
        keyed(op.GET, b"k", mid=16),
    )
    r = Reader(out)
    first = next_response(r)
    assert (first.message_id, first.status) == (10, 0)
    second = next_response(r)
    assert (second.message_id, r.array(10)) == (11, b"1")
    ping = next_response(r)
    assert ping.message_id == 12
    r.media_type(10), r.media_type(10), r.byte()
    [r.fixed(2) for _ in range(r.vint())]
    forced = next_response(r)
    assert (forced.message_id, forced.status) == (13, 3)
    assert read_prev(r, 41)[1] == b"1"
    assert (next_response(r).message_id, r.array(10)) == (14, b"2")
    unsupported = next_response(r)
    assert (unsupported.message_id, unsupported.opcode, unsupported.status) == (15, 0x50, 0x82)
    assert "QUERY" in r.string(1000)
    assert (next_response(r).message_id, r.array(10)) == (16, b"2")
    assert r.pos == len(out)


async def test_a_batch_of_gets_and_puts_answers_like_among_other_requests() -> None:
    """Batches of GETs and plain PUTs skip the general planning (handler._plain_batch): same bytes."""
    session = make_session()
    await send(session, put(b"a", b"1"), put(b"b", b"22"), frame(op.PUT, kv(b"o", 0x77, b"3"), cache="other"))
    requests = [
        keyed(op.GET, b"a", mid=20),
        keyed(op.GET, b"missing", mid=21),
        keyed(op.GET, b"o", mid=22, cache="other"),
        keyed(op.GET, b"b", mid=23, cache="no-such-cache"),
        keyed(op.GET, b"b", mid=24, version=30),
        put(b"p", b"v", mid=25),
        frame(op.PUT, kv(b"p", 0x77, b"v"), mid=26, cache="no-such-cache"),
    ]
    fast = await send(session, *requests)
    # The same requests behind a PING go the general way; their answers must be identical.
    general = await send(session, frame(op.PING, mid=1), *requests)
    assert general.endswith(fast)
    r = Reader(fast)
    assert (next_response(r).message_id, r.array(10)) == (20, b"1")
    missing = next_response(r)
    assert (missing.message_id, missing.status) == (21, 2)
    assert (next_response(r).message_id, r.array(10)) == (22, b"3")
    unknown = next_response(r)
    assert (unknown.message_id, unknown.opcode, unknown.status) == (23, 0x50, 0x84)
    assert "no-such-cache" in r.string(1000)
    assert (next_response(r).message_id, r.array(10)) == (24, b"22")
    stored = next_response(r)
    assert (stored.message_id, stored.opcode, stored.status) == (25, op.PUT + 1, 0)
    refused = next_response(r)
    assert (refused.message_id, refused.opcode, refused.status) == (26, 0x50, 0x84)
    r.string(1000)
    assert r.pos == len(fast)
    # A PUT asking for the previous value goes the general way and gets it.
    forced = await ask(session, put(b"p", b"w", mid=27, flags=FRV))
    assert (forced.message_id, forced.status) == (27, 3)
    assert read_prev(forced.body, 41)[1] == b"v"


async def test_a_batch_of_gets_before_authentication_is_refused() -> None:
    session = make_session(realm="default")
    _, status, text = error_of(await send(session, keyed(op.GET, b"k")))
    assert status == 0x85
    assert text == "java.lang.SecurityException: ISPN006017: Operation 'GET' requires authentication"


# ---------------------------------------------------------------- §5.2 status and previous-value rules


@pytest.mark.parametrize("version", [30, 31, 40, 41])
async def test_put_rules(version: int) -> None:
    session = make_session()
    r = await ask(session, put(b"k", b"1", version=version, flags=FRV))
    assert r.status == 3
    assert read_prev(r.body, version) == ((-1 if version >= 40 else None), b"")
    assert r.body.pos == len(r.body.data)
    stored_version = await entry_version(session, b"k")
    r = await ask(session, put(b"k", b"2", version=version, flags=FRV))
    assert r.status == 3
    assert read_prev(r.body, version) == ((stored_version if version >= 40 else None), b"1")
    assert r.body.pos == len(r.body.data)
    r = await ask(session, put(b"k", b"3", version=version))
    assert r.status == 0
    assert r.body.pos == len(r.body.data)


@pytest.mark.parametrize("version", [31, 41])
async def test_put_if_absent_rules(version: int) -> None:
    session = make_session()
    r = await ask(session, put(b"k", b"1", version=version, flags=FRV, opcode=op.PUT_IF_ABSENT))
    assert (r.status, r.body.pos == len(r.body.data)) == (0, True)
    r = await ask(session, put(b"k", b"2", version=version, opcode=op.PUT_IF_ABSENT))
    assert (r.status, r.body.pos == len(r.body.data)) == (1, True)
    r = await ask(session, put(b"k", b"2", version=version, flags=FRV, opcode=op.PUT_IF_ABSENT))
    assert r.status == 4
    assert read_prev(r.body, version)[1] == b"1"
    assert r.body.pos == len(r.body.data)


@pytest.mark.parametrize("version", [31, 41])
async def test_replace_rules(version: int) -> None:
    session = make_session()
    for flags in (0, FRV):
        r = await ask(session, put(b"k", b"x", version=version, flags=flags, opcode=op.REPLACE))
        assert (r.status, r.body.pos == len(r.body.data)) == (1, True)
    await send(session, put(b"k", b"1"))
    r = await ask(session, put(b"k", b"2", version=version, opcode=op.REPLACE))
    assert (r.status, r.body.pos == len(r.body.data)) == (0, True)
    r = await ask(session, put(b"k", b"3", version=version, flags=FRV, opcode=op.REPLACE))
    assert r.status == 3
    assert read_prev(r.body, version)[1] == b"2"
    assert r.body.pos == len(r.body.data)


@pytest.mark.parametrize("version", [31, 41])
async def test_remove_rules(version: int) -> None:
    session = make_session()
    await send(session, put(b"k", b"1"), put(b"j", b"2"))
    r = await ask(session, keyed(op.REMOVE, b"k", version=version, flags=FRV))
    assert r.status == 3
    assert read_prev(r.body, version)[1] == b"1"
    assert r.body.pos == len(r.body.data)
    r = await ask(session, keyed(op.REMOVE, b"j", version=version))
    assert (r.status, r.body.pos == len(r.body.data)) == (0, True)
    for flags in (0, FRV):
        r = await ask(session, keyed(op.REMOVE, b"k", version=version, flags=flags))
        assert (r.status, r.body.pos == len(r.body.data)) == (2, True)


@pytest.mark.parametrize("version", [31, 41])
@pytest.mark.parametrize("force", [False, True])
async def test_if_unmodified_rules(version: int, force: bool) -> None:
    session = make_session()
    flags = FRV if force else 0
    # Absent: 02 either way.
    body = kv(b"k", 0x77, b"x", write_long(1))
    r = await ask(session, frame(op.REPLACE_IF_UNMODIFIED, body, version=version, flags=flags))
    assert (r.status, r.body.pos == len(r.body.data)) == (2, True)
    r = await ask(session, keyed(op.REMOVE_IF_UNMODIFIED, b"k", write_long(1), version=version, flags=flags))
    assert (r.status, r.body.pos == len(r.body.data)) == (2, True)

    await send(session, put(b"k", b"1"))
    current = await entry_version(session, b"k")
    # Version mismatch: 01, or 04 + prev when forced.
    body = kv(b"k", 0x77, b"x", write_long(current + 12345))
    r = await ask(session, frame(op.REPLACE_IF_UNMODIFIED, body, version=version, flags=flags))
    assert r.status == (4 if force else 1)
    if force:
        assert read_prev(r.body, version)[1] == b"1"
    assert r.body.pos == len(r.body.data)
    # Match: 00, or 03 + prev when forced.
    body = kv(b"k", 0x77, b"2", write_long(current))
    r = await ask(session, frame(op.REPLACE_IF_UNMODIFIED, body, version=version, flags=flags))
    assert r.status == (3 if force else 0)
    if force:
        assert read_prev(r.body, version)[1] == b"1"
    assert r.body.pos == len(r.body.data)
    current = await entry_version(session, b"k")
    r = await ask(
        session, keyed(op.REMOVE_IF_UNMODIFIED, b"k", write_long(current - 1), version=version, flags=flags)
    )
    assert r.status == (4 if force else 1)
    if force:
        read_prev(r.body, version)
    assert r.body.pos == len(r.body.data)
    r = await ask(
        session, keyed(op.REMOVE_IF_UNMODIFIED, b"k", write_long(current), version=version, flags=flags)
    )
    assert r.status == (3 if force else 0)
    if force:
        assert read_prev(r.body, version)[1] == b"2"
    assert r.body.pos == len(r.body.data)
    assert (await ask(session, keyed(op.GET, b"k"))).status == 2


# ---------------------------------------------------------------- iteration


async def iterate(
    session: HotRodSession, start_body: bytes, version: int = 41
) -> tuple[dict[bytes, bytes], set[int]]:
    r = await ask(session, frame(op.ITERATION_START, start_body, version=version))
    assert r.status == 0
    iteration_id = r.string()
    found: dict[bytes, bytes] = {}
    finished: set[int] = set()
    for _ in range(1000):
        r = await ask(session, frame(op.ITERATION_NEXT, write_string(iteration_id), version=version))
        assert r.status == 0
        body = r.body
        mask = body.array(100)
        finished |= {i * 8 + b for i, byte in enumerate(mask) for b in range(8) if byte >> b & 1}
        count = body.vint()
        if count == 0:
            assert body.pos == len(body.data)
            break
        assert body.vint() == 1
        for _ in range(count):
            if body.byte():
                read_prev(body, 41)  # metadata block + value has the same shape; re-read below
                raise AssertionError("unexpected metadata")
            key = body.array(100)
            assert key not in found
            found[key] = body.array(100)
        assert body.pos == len(body.data)
    r = await ask(session, frame(op.ITERATION_END, write_string(iteration_id)))
    assert r.status == 0
    assert (await ask(session, frame(op.ITERATION_END, write_string(iteration_id)))).status == 5
    assert (await ask(session, frame(op.ITERATION_NEXT, write_string(iteration_id)))).status == 5
    return found, finished


async def test_iteration_over_everything() -> None:
    session = make_session()
    data = {f"key{i}".encode(): f"v{i}".encode() for i in range(250)}
    await send(session, *(put(k, v, mid=i) for i, (k, v) in enumerate(data.items())))
    found, finished = await iterate(session, b"\x01\x01\x07\x00")  # no mask, no filter, batch 7
    assert found == data
    assert finished == set(range(256))


async def test_iteration_empty_cache_finishes() -> None:
    session = make_session()
    found, finished = await iterate(session, b"\x01\x01\x0a\x00")
    assert found == {}
    assert finished == set(range(256))


async def test_iteration_segment_filter() -> None:
    from gridactor.cache.api import segment_of

    session = make_session()
    data = {f"key{i}".encode(): b"v" for i in range(100)}
    await send(session, *(put(k, v) for k, v in data.items()))
    wanted = {0, 5, 200}
    mask = bytearray(32)
    for s in wanted:
        mask[s // 8] |= 1 << (s % 8)
    found, finished = await iterate(session, b"\x40" + bytes(mask) + b"\x01\x64\x00")
    assert set(found) == {k for k in data if segment_of(k) in wanted}
    assert finished == wanted


async def test_iteration_with_metadata() -> None:
    session = make_session()
    await send(session, put(b"k", b"v"))
    r = await ask(session, frame(op.ITERATION_START, b"\x01\x01\x0a\x01"))
    iteration_id = r.string()
    r = await ask(session, frame(op.ITERATION_NEXT, write_string(iteration_id)))
    body = r.body
    body.array(100)
    assert (body.vint(), body.vint(), body.byte()) == (1, 1, 1)
    assert body.byte() == 3  # immortal
    body.long()
    assert (body.array(10), body.array(10)) == (b"k", b"v")
    assert body.pos == len(body.data)


async def test_iteration_filter_is_refused() -> None:
    session = make_session()
    start = b"\x01\x02f\x00\x0a\x00"
    _, status, text = error_of(await send(session, frame(op.ITERATION_START, start)))
    assert status == 0x82
    assert "not supported" in text


# ---------------------------------------------------------------- authentication gate


async def test_auth_disabled_mech_list_empty_and_auth_invalid() -> None:
    session = make_session()
    r = await ask(session, frame(op.AUTH_MECH_LIST))
    assert (r.opcode, r.body.vint()) == (0x22, 0)
    _, status, text = error_of(await send(session, frame(op.AUTH, write_string("PLAIN") + write_bytes(b"x"))))
    assert status == 0x85
    assert "ISPN006025: Invalid mech 'PLAIN'" in text


async def test_realm_without_engine_refuses_cache_ops() -> None:
    session = make_session(realm="default")
    assert (await ask(session, frame(op.PING))).status == 0
    assert (await ask(session, frame(op.AUTH_MECH_LIST))).status == 0
    _, status, text = error_of(await send(session, put(b"k", b"v")))
    assert status == 0x85
    assert text == "java.lang.SecurityException: ISPN006017: Operation 'PUT' requires authentication"
    _, status, text = error_of(await send(session, frame(op.QUERY, write_bytes(b"q"))))
    assert "Operation 'QUERY' requires authentication" in text


def test_gate_function() -> None:
    assert operation_allowed(op.PUT, False, None)
    assert not operation_allowed(op.PUT, True, None)
    assert operation_allowed(op.PUT, True, object())
    assert all(operation_allowed(code, True, None) for code in (op.PING, op.AUTH, op.AUTH_MECH_LIST))


class PlainOnly:
    def mechanisms(self) -> list[str]:
        return ["PLAIN"]

    async def step(self, mech: str, response: bytes) -> AuthStep:
        if response == b"\x00bob\x00secret":
            return AuthStep(None, subject="bob")
        raise AuthenticationError("ISPN006024: Invalid credentials")


async def test_authenticator_plug_opens_the_gate_mid_batch() -> None:
    session = make_session(realm="default")
    session.authenticator = PlainOnly()
    bad = frame(op.AUTH, write_string("PLAIN") + write_bytes(b"\x00bob\x00wrong"), mid=1)
    good = frame(op.AUTH, write_string("PLAIN") + write_bytes(b"\x00bob\x00secret"), mid=3)
    out = await send(
        session, frame(op.AUTH_MECH_LIST, mid=0), bad, put(b"k", b"v", mid=2), good, put(b"k", b"v", mid=4)
    )
    r = Reader(out)
    next_response(r)
    assert (r.vint(), r.string(10)) == (1, "PLAIN")
    failed = next_response(r)
    assert (failed.opcode, failed.status) == (0x50, 0x85)
    assert "Invalid credentials" in r.string(1000)
    refused = next_response(r)
    assert (refused.message_id, refused.opcode) == (2, 0x50)
    r.string(1000)
    ok = next_response(r)
    assert (ok.message_id, ok.opcode, r.byte(), r.byte()) == (3, 0x24, 1, 0)
    stored = next_response(r)
    assert (stored.message_id, stored.opcode, stored.status) == (4, 0x02, 0)
    assert r.pos == len(out)
    assert session.subject == "bob"
