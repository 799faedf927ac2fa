from __future__ import annotations

from gridactor.cache.api import INFINITE, CacheStatistics, Entry
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod import responses as resp
from gridactor.protocols.hotrod.primitives import Reader
from tests.unit.hotrod.hotrod_helpers import error_of, one

IMMORTAL = Entry(b"k", b"old", "text/plain", 7, 1000, 2000, INFINITE, INFINITE)
MORTAL = Entry(b"k", b"old", "text/plain", 7, 1000, 2000, 10_000, 3_000)


def test_header_and_status_only() -> None:
    assert resp.status_only(6, op.PUT, op.SUCCESS) == bytes.fromhex("a1 06 02 00 00")
    assert resp.status_only(300, op.REMOVE, op.KEY_DOES_NOT_EXIST) == bytes.fromhex("a1 ac02 0c 02 00")


def test_error_response() -> None:
    data = resp.error(3, op.UNKNOWN_VERSION, "boom")
    assert data == bytes.fromhex("a1 03 50 83 00 04") + b"boom"
    assert error_of(data) == (3, 0x83, "boom")


def test_ping_by_version() -> None:
    assert resp.ping(1, 25, "text/plain", "text/plain") == bytes.fromhex("a1 01 18 00 00")
    assert resp.ping(1, 29, "text/plain", "application/x-custom") == bytes.fromhex("a1 01 18 00 00 010d00 00")
    data = resp.ping(1, 41, "text/plain", "text/plain")
    r = one(data)
    assert (r.opcode, r.status) == (0x18, 0)
    body = r.body
    assert body.media_type(100) == "text/plain"
    assert body.media_type(100) == "text/plain"
    assert body.byte() == 41
    count = body.vint()
    ops = [int.from_bytes(body.fixed(2), "big") for _ in range(count)]
    assert body.pos == len(data)
    assert ops == list(op.SUPPORTED_OPERATIONS)
    assert {op.PUT, op.GET, op.PING, op.AUTH, op.SIZE} <= set(ops)


def test_previous_blocks() -> None:
    assert resp.previous_block(31, None) == b"\x00"
    assert resp.previous_block(31, IMMORTAL) == b"\x03old"
    assert resp.previous_block(40, None) == bytes.fromhex("03 ffffffffffffffff 00")
    assert resp.previous_block(41, IMMORTAL) == b"\x03" + (7).to_bytes(8, "big") + b"\x03old"


def test_metadata_block_mortal() -> None:
    block = resp.metadata_block(MORTAL)
    r = Reader(block)
    assert r.byte() == 0
    assert (r.long(), r.vint()) == (1000, 10)
    assert (r.long(), r.vint()) == (2000, 3)
    assert r.long() == 7
    assert r.pos == len(block)


def test_get_variants() -> None:
    assert resp.get(2, None) == bytes.fromhex("a1 02 04 02 00")
    assert resp.get(2, IMMORTAL.value) == bytes.fromhex("a1 02 04 00 00 03") + b"old"
    assert (
        resp.get_with_version(2, IMMORTAL)
        == bytes.fromhex("a1 02 12 00 00") + (7).to_bytes(8, "big") + b"\x03old"
    )
    assert resp.get_with_metadata(2, None) == bytes.fromhex("a1 02 1c 02 00")
    assert resp.get_with_metadata(2, IMMORTAL) == (
        bytes.fromhex("a1 02 1c 00 00 03") + (7).to_bytes(8, "big") + b"\x03old"
    )


def test_collections() -> None:
    assert resp.size(1, 300) == bytes.fromhex("a1 01 2a 00 00 ac02")
    assert resp.get_all(1, [(b"a", b"1")]) == bytes.fromhex("a1 01 30 00 00 01 01") + b"a\x011"
    assert resp.bulk_get(1, [(b"a", b"1")]) == bytes.fromhex("a1 01 1a 00 00 01 01") + b"a\x011\x00"
    assert resp.bulk_get_keys(1, [b"a", b"b"]) == bytes.fromhex("a1 01 1e 00 00") + b"\x01\x01a\x01\x01b\x00"


def test_stats_are_decimal_strings() -> None:
    data = resp.stats(1, CacheStatistics(time_since_start_s=5, current_entries=2, hits=1, extra={"x": 9}))
    r = one(data).body
    stats = {r.string(100): r.string(100) for _ in range(r.vint())}
    assert r.pos == len(data)
    assert stats["timeSinceStart"] == "5"
    assert stats["currentNumberOfEntries"] == "2"
    assert stats["approximateEntries"] == "2"
    assert stats["hits"] == "1"
    assert stats["x"] == "9"


def test_auth_responses() -> None:
    assert resp.auth_mech_list(1, []) == bytes.fromhex("a1 01 22 00 00 00")
    assert resp.auth_mech_list(1, ["PLAIN"]) == bytes.fromhex("a1 01 22 00 00 01 05") + b"PLAIN"
    assert resp.auth(1, None) == bytes.fromhex("a1 01 24 00 00 01 00")
    assert resp.auth(1, b"r=abc") == bytes.fromhex("a1 01 24 00 00 00 05") + b"r=abc"


def test_iteration_responses() -> None:
    assert resp.segments_mask([]) == b""
    assert resp.segments_mask([0, 9]) == b"\x01\x02"
    assert resp.iteration_start(1, "id") == bytes.fromhex("a1 01 32 00 00 02") + b"id"
    assert resp.iteration_next(1, 41, [1], [], False) == bytes.fromhex("a1 01 34 00 00 01 02 00")
    data = resp.iteration_next(1, 41, [], [IMMORTAL], False)
    assert data == bytes.fromhex("a1 01 34 00 00 00 01 01 00 01") + b"k\x03old"
    data = resp.iteration_next(1, 41, [], [IMMORTAL], True)
    assert data == bytes.fromhex("a1 01 34 00 00 00 01 01 01 03") + (7).to_bytes(8, "big") + b"\x01k\x03old"
    assert resp.invalid_iteration(1, op.ITERATION_END) == bytes.fromhex("a1 01 36 05 00")
