"""SegmentTable, byte by byte: slab records, index slots, tombstones, growth, compaction,
and a stateful model test against a plain dict (including the iteration order)."""

from __future__ import annotations

import platform
import struct
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gridactor.cache import segment_table
from gridactor.cache.api import CacheSettings
from gridactor.cache.segment_table import SegmentTable
from gridactor.cache.store import ShardStore

NOW = 1_700_000_000_000
HEADER = struct.Struct("<II")
DEAD = 1 << 31


class Colliding(bytes):
    """A key whose hash is always 5: every such key has the same fingerprint and the same
    probe path, so lookups must tell them apart by comparing the key bytes."""

    def __hash__(self) -> int:
        return 5


def slab_records(table: SegmentTable) -> Iterator[tuple[int, bool, bytes, bytes]]:
    """(offset, dead, key, record) of every record in the slab, read from the raw bytes."""
    slab = bytes(table._slab)
    offset = 0
    while offset < len(slab):
        key_length, record_length = HEADER.unpack_from(slab, offset)
        dead = bool(key_length & DEAD)
        key_length &= ~DEAD
        start = offset + HEADER.size
        middle = start + key_length
        yield offset, dead, slab[start:middle], slab[middle : middle + record_length]
        offset = middle + record_length
    assert offset == len(slab), "the slab ends inside a record"


def check_invariants(table: SegmentTable, hash_of: dict[bytes, int] | None = None) -> None:
    """Every internal count agrees with the bytes; every live record is indexed exactly once
    with its key's fingerprint; the load stays under 2/3."""
    records = list(slab_records(table))
    live = {offset: key for offset, dead, key, _ in records if not dead}
    dead_bytes = sum(HEADER.size + len(k) + len(r) for _, dead, k, r in records if dead)
    assert len(set(live.values())) == len(live), "a key is live twice"
    index = list(table._index)
    slots = len(index)
    assert slots & (slots - 1) == 0
    assert table._mask == slots - 1
    entries = [v for v in index if v >= 0]
    assert sorted(v >> 23 for v in entries) == sorted(live)
    for v in entries:
        key = live[v >> 23]
        expected = (hash_of or {}).get(key, hash(key)) & ((1 << 22) - 1)
        assert v & ((1 << 23) - 1) == expected
    assert all(v in (-1, -2) for v in index if v < 0)
    assert table._live == len(live) == len(table)
    assert table._used == sum(1 for v in index if v != -1)
    assert table._dead == dead_bytes
    if live:
        assert table._used * 3 <= slots * 2
    else:
        assert table._slab is segment_table._NO_SLAB
        assert table._index is segment_table._NO_INDEX
    assert list(segment_table._NO_INDEX) == [-1]
    assert len(segment_table._NO_SLAB) == 0
    memo_key = table._memo_key
    if memo_key is not None:  # what get() remembered still holds
        slot = table._memo_slot
        if slot >= 0:
            assert live[index[slot] >> 23] == memo_key
        else:
            assert index[~slot] == -1
            assert table._used == table._live
            assert memo_key not in live.values()


# ------------------------------------------------------------------ basics


def test_an_empty_table_allocates_nothing_and_answers_everything() -> None:
    t = SegmentTable()
    assert t._slab is segment_table._NO_SLAB
    assert t._index is segment_table._NO_INDEX
    assert len(t) == 0
    assert not t
    assert t.get(b"k") is None
    assert b"k" not in t
    assert t.items() == []
    assert t.keys() == []
    assert list(t) == []
    assert t.pop(b"k", None) is None
    with pytest.raises(KeyError):
        t.pop(b"k")
    with pytest.raises(KeyError):
        del t[b"k"]
    with pytest.raises(KeyError):
        t[b"k"]
    check_invariants(t)


def test_a_record_is_laid_out_as_header_key_record() -> None:
    t = SegmentTable()
    t[b"key"] = b"record"
    assert bytes(t._slab) == HEADER.pack(3, 6) + b"key" + b"record"
    got = t.get(b"key")
    assert got == b"record"
    assert type(got) is bytes
    assert t[b"key"] == b"record"
    assert b"key" in t
    assert t
    assert t.items() == [(b"key", b"record")]
    assert all(type(x) is bytes for x in t.items()[0])
    check_invariants(t)


def test_overwrite_with_the_same_length_is_done_in_place() -> None:
    t = SegmentTable()
    t[b"a"] = b"1111"
    t[b"b"] = b"2222"
    before = len(t._slab)
    t[b"a"] = b"9999"
    assert len(t._slab) == before
    assert t._dead == 0
    assert t.items() == [(b"a", b"9999"), (b"b", b"2222")]  # kept its place
    check_invariants(t)


def test_overwrite_with_another_length_appends_and_marks_the_old_record_dead() -> None:
    t = SegmentTable()
    t[b"a"] = b"1111"
    t[b"b"] = b"2222"
    t[b"a"] = b"333"
    raw = bytes(t._slab)
    assert HEADER.unpack_from(raw, 0) == (1 | DEAD, 4)  # the old record: marked in place
    assert raw[8:13] == b"a1111"  # its bytes untouched until compaction
    assert raw[-12:] == HEADER.pack(1, 3) + b"a333"
    assert t._dead == 8 + 1 + 4
    assert t[b"a"] == b"333"
    assert t.items() == [(b"b", b"2222"), (b"a", b"333")]  # moved to the end
    assert t.keys() == [b"b", b"a"]
    check_invariants(t)


def test_delete_marks_dead_and_leaves_a_tombstone_that_a_later_insert_reuses() -> None:
    t = SegmentTable()
    for k in (b"a", b"b", b"c"):
        t[k] = b"v" + k
    slot = t._find(b"b")
    del t[b"b"]
    assert t._index[slot] == -2
    assert HEADER.unpack_from(t._slab, 8 + 3)[0] == 1 | DEAD
    assert b"b" not in t
    assert t.get(b"b") is None
    assert len(t) == 2
    used = t._used
    t[b"b"] = b"again"  # same probe path: the tombstone is the first free slot on it
    assert t._find(b"b") == slot
    assert t._used == used
    assert t.items() == [(b"a", b"va"), (b"c", b"vc"), (b"b", b"again")]
    check_invariants(t)


def test_pop_returns_the_record_and_removing_the_last_entry_frees_the_buffers() -> None:
    t = SegmentTable()
    t[b"a"] = b"1"
    t[b"b"] = b"2"
    assert t.pop(b"a") == b"1"
    assert t.pop(b"a", b"default") == b"default"
    check_invariants(t)
    assert t.pop(b"b") == b"2"
    assert t._slab is segment_table._NO_SLAB
    assert t._index is segment_table._NO_INDEX
    t[b"c"] = b"3"  # and the table works again
    assert t.items() == [(b"c", b"3")]
    t.clear()
    assert not t
    assert t.get(b"c") is None
    check_invariants(t)


def test_empty_key_and_empty_record() -> None:
    t = SegmentTable()
    t[b""] = b""
    assert t.get(b"") == b""
    assert b"" in t
    t[b"x"] = b""
    t[b""] = b"now something"
    assert t.items() == [(b"x", b""), (b"", b"now something")]
    del t[b""]
    assert t.get(b"") is None
    assert t.items() == [(b"x", b"")]
    check_invariants(t)


def test_large_keys_and_records() -> None:
    t = SegmentTable()
    big_key = bytes(range(256)) * 400
    big_record = b"\xff" * (2 << 20)
    t[big_key] = big_record
    t[big_key[:-1]] = b"shorter key"
    assert t[big_key] == big_record
    assert t[big_key[:-1]] == b"shorter key"
    t[big_key] = b"small now"  # 2 MiB dead: compacted away at once
    assert t._dead == 0
    assert len(t._slab) < 2 * (8 + len(big_key)) + 100
    assert t.items() == [(big_key[:-1], b"shorter key"), (big_key, b"small now")]
    check_invariants(t)


def test_keys_that_are_prefixes_of_one_another() -> None:
    t = SegmentTable()
    keys = [b"", b"a", b"ab", b"abc", b"abcd", b"b"]
    for k in keys:
        t[k] = b"<" + k + b">"
    for k in keys:
        assert t[k] == b"<" + k + b">"
    del t[b"ab"]
    assert t.get(b"ab") is None
    assert t[b"abc"] == b"<abc>"
    assert t[b"a"] == b"<a>"
    check_invariants(t)


def test_full_hash_collisions_are_told_apart_by_the_key_bytes() -> None:
    t = SegmentTable()
    keys = [Colliding(k) for k in (b"c", b"cc", b"ccc", b"cd", b"", b"c\x00")]
    for k in keys:
        t[k] = b"v" + bytes(k)
    fingerprint = 5
    assert {v & ((1 << 23) - 1) for v in t._index if v >= 0} == {fingerprint}
    for k in keys:
        assert t[k] == b"v" + bytes(k)
    assert t.get(Colliding(b"cccc")) is None
    assert Colliding(b"x") not in t
    # Delete one in the middle of the shared probe path: the others stay reachable past it.
    del t[keys[2]]
    assert t.get(keys[2]) is None
    for k in keys[:2] + keys[3:]:
        assert t[k] == b"v" + bytes(k)
    t[keys[2]] = b"back"
    assert t[keys[2]] == b"back"
    check_invariants(t, {bytes(k): 5 for k in keys})


def test_prefix_keys_with_the_same_fingerprint() -> None:
    t = SegmentTable()
    t[Colliding(b"abc")] = b"3"
    assert t.get(Colliding(b"ab")) is None  # the stored key starts with it: the length tells
    assert t.get(Colliding(b"abcd")) is None
    t[Colliding(b"ab")] = b"2"
    assert (t[Colliding(b"ab")], t[Colliding(b"abc")]) == (b"2", b"3")


def test_a_write_after_a_read_of_the_same_key_skips_the_probe_and_stays_right() -> None:
    t = SegmentTable()
    keys = [Colliding(b"c%d" % i) for i in range(4)]  # one probe path for all
    hashes = {bytes(k): 5 for k in keys}
    t[keys[0]] = b"zero"
    assert t.get(keys[1]) is None  # remembers the empty slot where keys[1] would go ...
    t[keys[2]] = b"two"  # ... which keys[2] takes: the table forgets what get() saw
    t[keys[1]] = b"one"
    assert (t[keys[0]], t[keys[1]], t[keys[2]]) == (b"zero", b"one", b"two")
    check_invariants(t, hashes)
    assert t.get(keys[0]) == b"zero"
    t[keys[0]] = b"ZERO"  # remembered hit, same length: in place
    assert t.get(keys[0]) == b"ZERO"
    t[keys[0]] = b"zero again"  # remembered hit, other length: appended
    assert t.get(keys[3]) is None
    t[keys[3]] = b"three"  # remembered miss
    assert t.items() == [(b"c2", b"two"), (b"c1", b"one"), (b"c0", b"zero again"), (b"c3", b"three")]
    check_invariants(t, hashes)
    assert t.get(keys[1]) == b"one"
    slot = t._memo_slot
    del t[keys[1]]  # remembered hit: no probe either
    assert keys[1] not in t
    assert t.get(keys[1]) is None  # a tombstone on the path now: nothing remembered for a miss
    assert t._memo_key is None
    t[keys[1]] = b"back"
    assert t._find(keys[1]) == slot  # the write probed and took the tombstone
    check_invariants(t, hashes)
    assert t.get(keys[2]) == b"two"
    t.clear()  # forgets too
    t[keys[2]] = b"new"
    assert t.items() == [(b"c2", b"new")]
    check_invariants(t, hashes)


def test_growth_keeps_every_entry_and_a_bounded_load() -> None:
    t = SegmentTable()
    sizes = set()
    for i in range(5000):
        t[b"k%d" % i] = b"r%d" % i
        sizes.add(t._mask + 1)
        if i in (0, 4, 5, 6, 11, 12, 100, 4999):
            check_invariants(t)
    assert sizes == {8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192}  # 5000 <= 2/3 of 8192
    assert all(t[b"k%d" % i] == b"r%d" % i for i in range(5000))
    assert t.get(b"k5000") is None
    assert t.keys() == [b"k%d" % i for i in range(5000)]


def test_churn_through_tombstones_does_not_grow_the_index() -> None:
    t = SegmentTable()
    for i in range(100_000):
        t[b"k%d" % i] = b"v"
        if i >= 3:
            del t[b"k%d" % (i - 3)]
    assert len(t) == 3
    assert t._mask + 1 == 8
    assert len(t._slab) < segment_table._COMPACT_MIN + 3 * 20
    check_invariants(t)


def test_compaction_keeps_every_live_entry_in_order_and_bounds_the_slab(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = SegmentTable()
    for i in range(300):
        t[b"k%03d" % i] = b"x" * 50
    order = t.keys()
    compactions = 0
    for round_ in range(1, 40):
        for i in range(0, 300, 3):  # a third of the keys: rewritten with another length each round
            before = len(t._slab)
            t[b"k%03d" % i] = b"%d" % round_ * (10 + round_ % 2)
            if len(t._slab) < before:
                compactions += 1
                assert t._dead == 0
        live_bytes = sum(8 + 4 + len(r) for _, r in t.items())
        assert t._dead <= max(live_bytes, segment_table._COMPACT_MIN)
        check_invariants(t)
    assert compactions >= 3
    for i in range(300):
        if i % 3:
            assert t[b"k%03d" % i] == b"x" * 50
        else:
            assert t[b"k%03d" % i] == b"39" * 11
    assert sorted(t.keys()) == sorted(order)
    # Deleting most entries compacts the slab and shrinks the index with it.
    monkeypatch.setattr(segment_table, "_COMPACT_MIN", 0)
    order = t.keys()
    for i in range(290):
        del t[b"k%03d" % i]
    assert len(t) == 10
    assert t._mask + 1 <= 64
    assert t._dead <= len(t._slab) - t._dead
    assert t.keys() == [k for k in order if k in t]  # compaction keeps slab order
    check_invariants(t)


def test_a_too_large_key_is_refused_without_changing_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segment_table, "MAX_KEY_LENGTH", 4)
    t = SegmentTable()
    t[b"ok"] = b"1"
    with pytest.raises(ValueError, match="too large"):
        t[b"12345"] = b"2"
    assert t.items() == [(b"ok", b"1")]
    check_invariants(t)


def test_the_repr_shows_sizes_never_contents() -> None:
    t = SegmentTable()
    t[b"secret-key"] = b"secret-value"
    text = repr(t)
    assert "secret" not in text
    assert "entries=1" in text


def test_items_is_a_snapshot_the_caller_may_mutate_under() -> None:
    t = SegmentTable()
    for i in range(50):
        t[b"%d" % i] = b"v"
    for k, _ in t.items():
        del t[k]
    assert not t


# ------------------------------------------------------------------ model test

PLAIN_KEYS = [b"", b"a", b"ab", b"abc", b"b", b"ba", b"k1", b"k2", b"k3", b"k4", b"k5", b"\x00", b"\x00\x00"]
COLLIDING_KEYS = [Colliding(b"c" + k) for k in (b"", b"x", b"xy", b"y", b"z")]
KEYS: list[bytes] = [*PLAIN_KEYS, *COLLIDING_KEYS]
RECORDS = st.binary(max_size=12) | st.sampled_from([b"", b"1234", b"abcd"])


class SegmentTableModel(RuleBasedStateMachine):
    """Every operation against a dict that models the documented order: a key rewritten
    with a record of another length moves to the end."""

    def __init__(self) -> None:
        super().__init__()
        self.saved_compact_min = segment_table._COMPACT_MIN
        segment_table._COMPACT_MIN = 32  # compact often, on small tables
        self.table = SegmentTable()
        self.model: dict[bytes, bytes] = {}

    def teardown(self) -> None:
        segment_table._COMPACT_MIN = self.saved_compact_min

    @rule(key=st.sampled_from(KEYS), record=RECORDS)
    def put(self, key: bytes, record: bytes) -> None:
        old = self.model.get(key)
        if old is not None and len(old) != len(record):
            del self.model[key]
        self.model[key] = record
        self.table[key] = record

    @rule(key=st.sampled_from(KEYS))
    def delete(self, key: bytes) -> None:
        if key in self.model:
            del self.model[key]
            del self.table[key]
        else:
            with pytest.raises(KeyError):
                del self.table[key]

    @rule(key=st.sampled_from(KEYS))
    def pop(self, key: bytes) -> None:
        assert self.table.pop(key, None) == self.model.pop(key, None)

    @rule(key=st.sampled_from(KEYS))
    def read(self, key: bytes) -> None:
        assert self.table.get(key) == self.model.get(key)
        assert (key in self.table) == (key in self.model)

    @precondition(lambda self: len(self.model) > 8)
    @rule()
    def clear(self) -> None:
        self.table.clear()
        self.model.clear()

    @invariant()
    def same_contents_in_the_same_order(self) -> None:
        assert self.table.items() == list(self.model.items())
        assert len(self.table) == len(self.model)
        check_invariants(self.table, {bytes(k): 5 for k in COLLIDING_KEYS})


SegmentTableModel.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
test_segment_table_model = SegmentTableModel.TestCase


# ------------------------------------------------------------------ in the store


def test_a_store_keeps_an_immortal_100_byte_entry_in_129_slab_bytes() -> None:
    # Issue 7's budget: header 8 + key 10 + value 100 + trailer 11, and no Python object.
    store = ShardStore([CacheSettings("c")], clock=lambda: NOW)
    for i in range(2000):
        store.put("c", b"k%09d" % i, b"x" * 100, None, None, "", NOW)
    tables = store._caches["c"].segments
    assert all(type(t) is SegmentTable for t in tables)
    assert sum(len(t._slab) for t in tables) == 2000 * 129
    assert sum(len(t) for t in tables) == 2000
    assert sum(len(t._index) for t in tables) <= 3 * 2000  # load above 1/3, even in tables this small
    for t in tables:
        check_invariants(t)


def test_pin_mmap_threshold_applies_under_glibc() -> None:
    # In a child: the setting is process-wide.
    code = "from gridactor.cache.segment_table import pin_mmap_threshold; print(pin_mmap_threshold())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    glibc = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"
    assert out.stdout.strip() == str(glibc)
