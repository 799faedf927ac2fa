"""A compact key -> record table for one segment of one cache (issue 7: memory per entry).

Why not a dict
--------------
A ``dict[bytes, bytes]`` costs three things per entry besides the payload: the key's
``bytes`` object (~33 B header + the allocator's rounding), the record's ``bytes`` object
(same) and the dict slot (~40 B with the dict's own slack): about 120 B of overhead on a
10-byte key and a 111-byte record. :class:`SegmentTable` keeps the same mapping in two
flat buffers and no per-entry Python object at all.

Layout
------
*The slab* is one ``bytearray`` of records appended one after the other::

    header (struct "<II": key length | DEAD bit 31, record length) | key | record

A record is never moved while it is live, except by compaction. Writing a key that
exists overwrites its record in place when the new record has the same length (the
common case: same value size, same metadata), and otherwise appends the new record and
marks the old one dead by setting bit 31 of its key length in place. Deleting marks the
record dead. Dead bytes are reclaimed by *compaction*: once they exceed both the live
bytes and :data:`_COMPACT_MIN`, the slab is rewritten with the live records only (in slab
order) and the index rebuilt -- each compaction copies at most as many bytes as were
freed since the last one, so its cost is amortised O(1) per write.

*The index* is an open-addressing hash table: an ``array('q')`` of 2**k slots, each
``-1`` (empty), ``-2`` (tombstone: a deleted entry that probes must walk past) or
``offset << 23 | fingerprint`` where ``fingerprint`` is the low 22 bits of ``hash(key)``.
A lookup probes from ``fingerprint & mask`` with CPython's dict recurrence
(``i = 5*i + 1 + perturb``, ``perturb >>= 5``), which reaches every slot, and stops at the
first empty slot. The fingerprint rejects almost every foreign slot with one integer
comparison -- and because bit 22 of a fingerprint is always 0 while the low 23 bits of -1
and -2 have it set, the same comparison also rejects empty slots and tombstones. Only a
matching fingerprint reads the header and compares the key in place
(``slab.startswith(key, offset + 8)``: no slice per probe). The index grows (or is rebuilt
to drop tombstones) when live entries plus tombstones would exceed 2/3 of the slots,
and is then sized for a load of at most 1/2, so the next rebuild is again O(n) writes
away. Rebuilding reuses the stored fingerprints: no key is hashed again. The fingerprint
holds 22 bits, so tables beyond 2**22 slots (millions of entries in ONE segment) probe
a little longer; offsets hold 40 bits (a 1 TiB slab).

An empty table shares one read-only, all-empty index and one empty slab (it costs the
object alone); the first write allocates both, and a table whose last entry goes away
returns to that state and frees its buffers.

*Read, then write.* The store always reads a key before it writes or removes it. The
table remembers the last key object :meth:`SegmentTable.get` probed for and the slot the
probe ended on, so that write needs no second probe; any change to the table forgets it.

*Where the slabs live.* A slab grows by ``realloc`` in steps of 1/8. Inside glibc's heap
each step usually moves the slab and leaves a hole, and freed heap memory stays
resident: with 128 slabs per shard growing in turn, the holes added a third to the
resident size of a 1M-entry load. Blocks above glibc's mmap threshold get a mapping of
their own instead, which ``realloc`` grows with ``mremap`` (no copy, no hole) and
``free`` returns to the system. But glibc raises that threshold (default 128 KiB) to
the size of any mapped block that is freed -- the shard's 1 MiB receive buffers raise it
to 1 MiB at once -- which puts the slabs back in the heap. :func:`pin_mmap_threshold`
(called once by the shard process) fixes it at 32 KiB, which also turns the raising
off: a slab leaves the heap early, and the holes it left behind stay small. Measured
resident bytes per entry of a store loaded with 500k entries of a 10-byte key and a
100-byte value behind a 1 MiB buffer: ~235 unpinned, ~172 at 128 KiB, ~154 at 32 KiB
(~150 at 16 KiB), against ~244 for the dict of ``bytes`` this table replaced.

Values read out are fresh ``bytes`` copies: callers may keep them across later writes.
Iteration (:meth:`SegmentTable.items`, :meth:`SegmentTable.keys`) follows slab order:
insertion order, except that a key rewritten with a record of another length moves to
the end. It returns lists, so the table may be changed while walking the result.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from array import array
from collections.abc import Iterator
from typing import Final, TypeVar, overload

_HEADER: Final = struct.Struct("<II")
_HEADER_SIZE: Final = _HEADER.size
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack
_pack_header_into = _HEADER.pack_into

_DEAD: Final = 1 << 31
MAX_KEY_LENGTH: Final = _DEAD - 1
MAX_RECORD_LENGTH: Final = (1 << 32) - 1

_EMPTY: Final = -1
_TOMBSTONE: Final = -2
_FINGERPRINT_MASK: Final = (1 << 22) - 1
_SLOT_LOW_MASK: Final = (1 << 23) - 1  # fingerprint bits plus bit 22, set only in -1 and -2
_OFFSET_SHIFT: Final = 23
_MAX_OFFSET: Final = (1 << (63 - _OFFSET_SHIFT)) - 1
_MIN_SLOTS: Final = 8
# Dead bytes below this are never worth a compaction (small tables rewritten in place
# over and over would otherwise recopy themselves on every second write).
_COMPACT_MIN = 4096

# Shared by every empty table. Never written: its single slot makes the first insert
# rebuild the index, and a lookup in it stops at once.
_NO_INDEX: Final = array("q", [_EMPTY])
_NO_SLAB: Final = bytearray()

_Default = TypeVar("_Default")
_MISSING: Final = object()


_M_MMAP_THRESHOLD: Final = -3  # glibc's malloc.h
MMAP_THRESHOLD: Final = 32 * 1024


def pin_mmap_threshold() -> bool:
    """Keep blocks of 32 KiB and more (large slabs and indexes) in mappings of their own
    for the rest of the process (module docstring: *Where the slabs live*). True when applied;
    False where the C library is not glibc (nothing to do or nothing known to do)."""
    if sys.platform != "linux":
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):  # None or ValueError: not glibc
            return False
        mallopt = ctypes.CDLL(None).mallopt
    except (ValueError, OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def _slots_for(entries: int) -> int:
    """Index size for ``entries``: a power of two with a load of at most 1/2."""
    slots = _MIN_SLOTS
    while slots < 2 * entries:
        slots *= 2
    return slots


class SegmentTable:
    """The ``dict[bytes, bytes]`` subset the shard store uses, in one slab and one index."""

    __slots__ = ("_dead", "_index", "_limit", "_live", "_mask", "_memo_key", "_memo_slot", "_slab", "_used")

    def __init__(self) -> None:
        self._slab = _NO_SLAB
        self._index = _NO_INDEX
        self._mask = 0
        self._limit = 0  # _used may not exceed 2/3 of the slots: a new slot past this grows the index
        self._live = 0  # entries
        self._used = 0  # index slots that are not empty: entries + tombstones
        self._dead = 0  # bytes of dead records in the slab
        # The last key get() probed for, and where it stopped: the slot holding it, or ~slot
        # of the empty slot a new entry for it would take (only while there is no tombstone
        # it should take instead). The store writes or removes the key it has just read, and
        # this spares that write a second probe. Any change to the table forgets it (the key
        # is compared by identity, never by value).
        self._memo_key: bytes | None = None
        self._memo_slot = 0

    # ------------------------------------------------------------ reads

    def get(self, key: bytes) -> bytes | None:
        """The record stored under ``key`` (a copy), or None."""
        fingerprint = hash(key) & _FINGERPRINT_MASK
        index = self._index
        mask = self._mask
        i = fingerprint & mask
        v = index[i]
        if v != _EMPTY:
            slab = self._slab
            perturb = fingerprint
            while True:
                if v & _SLOT_LOW_MASK == fingerprint:
                    offset = v >> _OFFSET_SHIFT
                    key_length, record_length = _unpack_header(slab, offset)
                    if key_length == len(key) and slab.startswith(key, offset + _HEADER_SIZE):
                        self._memo_key = key
                        self._memo_slot = i
                        start = offset + _HEADER_SIZE + key_length
                        return bytes(slab[start : start + record_length])
                perturb >>= 5
                i = (i * 5 + perturb + 1) & mask
                v = index[i]
                if v == _EMPTY:
                    break
        if self._used == self._live:  # no tombstone to reuse: the new entry would go in slot i
            self._memo_key = key
            self._memo_slot = ~i
        else:
            self._memo_key = None
        return None

    def __getitem__(self, key: bytes) -> bytes:
        record = self.get(key)
        if record is None:
            raise KeyError(key)
        return record

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self._find(key) >= 0

    def __len__(self) -> int:
        return self._live

    def __bool__(self) -> bool:
        return self._live > 0

    def __repr__(self) -> str:
        # Sizes only: keys and values may be secrets.
        return (
            f"SegmentTable(entries={self._live}, slab={len(self._slab)}B, dead={self._dead}B, "
            f"slots={self._mask + 1})"
        )

    def _live_spans(self) -> Iterator[tuple[int, int, int]]:
        """(key start, record start, record end) of every live record, in slab order."""
        slab = self._slab
        offset, end = 0, len(slab)
        while offset < end:
            key_length, record_length = _unpack_header(slab, offset)
            start = offset + _HEADER_SIZE
            if key_length & _DEAD:
                offset = start + (key_length ^ _DEAD) + record_length
                continue
            middle = start + key_length
            offset = middle + record_length
            yield start, middle, offset

    def items(self) -> list[tuple[bytes, bytes]]:
        """Every (key, record) pair, in slab order."""
        slab = self._slab
        spans = self._live_spans()
        return [(bytes(slab[start:middle]), bytes(slab[middle:end])) for start, middle, end in spans]

    def keys(self) -> list[bytes]:
        """Every key, in slab order."""
        slab = self._slab
        return [bytes(slab[start:middle]) for start, middle, _ in self._live_spans()]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.keys())

    # ------------------------------------------------------------ writes

    def __setitem__(self, key: bytes, record: bytes) -> None:
        key_length = len(key)
        record_length = len(record)
        if key_length > MAX_KEY_LENGTH or record_length > MAX_RECORD_LENGTH:
            raise ValueError(f"key of {key_length} bytes or record of {record_length} bytes is too large")
        fingerprint = hash(key) & _FINGERPRINT_MASK
        index = self._index
        mask = self._mask
        slab = self._slab
        free = -1  # first tombstone met: where a new key goes
        offset = old_length = 0  # of the record found for key
        if key is self._memo_key:
            i = self._memo_slot
            found = i >= 0
            if found:
                offset = index[i] >> _OFFSET_SHIFT
                old_length = _unpack_header(slab, offset)[1]
            else:
                i = ~i  # the empty slot that ended get()'s probe
        else:
            found = False
            i = fingerprint & mask
            perturb = fingerprint
            v = index[i]
            while v != _EMPTY:
                if v & _SLOT_LOW_MASK == fingerprint:
                    offset = v >> _OFFSET_SHIFT
                    old_key_length, old_length = _unpack_header(slab, offset)
                    if old_key_length == key_length and slab.startswith(key, offset + _HEADER_SIZE):
                        found = True
                        break
                elif v == _TOMBSTONE and free < 0:
                    free = i
                perturb >>= 5
                i = (i * 5 + perturb + 1) & mask
                v = index[i]
        self._memo_key = None
        if found:
            if old_length == record_length:  # same size: in place, no garbage
                start = offset + _HEADER_SIZE + key_length
                slab[start : start + record_length] = record
                return
            index[i] = self._append(key, record) << _OFFSET_SHIFT | fingerprint
            _pack_header_into(slab, offset, key_length | _DEAD, old_length)
            self._dead += _HEADER_SIZE + key_length + old_length
            self._compact_if_worth_it()
            return
        offset = len(slab)
        if offset > _MAX_OFFSET:
            raise OverflowError("segment slab larger than 1 TiB")
        if free < 0:
            if self._used >= self._limit:
                self._reindex(_slots_for(self._live + 1))
                index = self._index
                free = self._empty_slot(fingerprint)
            else:
                free = i
            self._used += 1
        if slab is _NO_SLAB:
            slab = self._slab = bytearray()
        slab += _pack_header(key_length, record_length)
        slab += key
        slab += record
        index[free] = offset << _OFFSET_SHIFT | fingerprint
        self._live += 1

    def __delitem__(self, key: bytes) -> None:
        slot = self._find(key)
        if slot < 0:
            raise KeyError(key)
        self._remove(slot)

    @overload
    def pop(self, key: bytes) -> bytes: ...

    @overload
    def pop(self, key: bytes, default: _Default) -> bytes | _Default: ...

    def pop(self, key: bytes, default: object = _MISSING) -> object:
        """Remove ``key`` and return its record; ``default`` (or KeyError) when absent."""
        slot = self._find(key)
        if slot < 0:
            if default is _MISSING:
                raise KeyError(key)
            return default
        offset = self._index[slot] >> _OFFSET_SHIFT
        key_length, record_length = _unpack_header(self._slab, offset)
        start = offset + _HEADER_SIZE + key_length
        record = bytes(self._slab[start : start + record_length])
        self._remove(slot)
        return record

    def clear(self) -> None:
        """Drop every entry and free both buffers."""
        self._slab = _NO_SLAB
        self._index = _NO_INDEX
        self._mask = self._limit = self._live = self._used = self._dead = 0
        self._memo_key = None

    # ------------------------------------------------------------ internals

    def _find(self, key: bytes) -> int:
        """The index slot holding ``key``, or -1."""
        if key is self._memo_key:
            return max(self._memo_slot, -1)
        fingerprint = hash(key) & _FINGERPRINT_MASK
        index = self._index
        mask = self._mask
        slab = self._slab
        i = fingerprint & mask
        perturb = fingerprint
        v = index[i]
        while v != _EMPTY:
            if v & _SLOT_LOW_MASK == fingerprint:
                offset = v >> _OFFSET_SHIFT
                key_length = _unpack_header(slab, offset)[0]
                if key_length == len(key) and slab.startswith(key, offset + _HEADER_SIZE):
                    return i
            perturb >>= 5
            i = (i * 5 + perturb + 1) & mask
            v = index[i]
        return -1

    def _empty_slot(self, fingerprint: int) -> int:
        """The first empty slot on ``fingerprint``'s probe path (an index without tombstones)."""
        return self._empty_slot_in(self._index, self._mask, fingerprint)

    @staticmethod
    def _empty_slot_in(index: array[int], mask: int, fingerprint: int) -> int:
        i = fingerprint & mask
        perturb = fingerprint
        while index[i] != _EMPTY:
            perturb >>= 5
            i = (i * 5 + perturb + 1) & mask
        return i

    def _append(self, key: bytes, record: bytes) -> int:
        """Append a live record to the slab; returns its offset."""
        slab = self._slab
        if slab is _NO_SLAB:
            slab = self._slab = bytearray()
        offset = len(slab)
        if offset > _MAX_OFFSET:
            raise OverflowError("segment slab larger than 1 TiB")
        slab += _pack_header(len(key), len(record))
        slab += key
        slab += record
        return offset

    def _remove(self, slot: int) -> None:
        self._memo_key = None
        index = self._index
        offset = index[slot] >> _OFFSET_SHIFT
        slab = self._slab
        key_length, record_length = _unpack_header(slab, offset)
        if self._live == 1:
            self.clear()
            return
        _pack_header_into(slab, offset, key_length | _DEAD, record_length)
        index[slot] = _TOMBSTONE
        self._live -= 1
        self._dead += _HEADER_SIZE + key_length + record_length
        self._compact_if_worth_it()

    def _compact_if_worth_it(self) -> None:
        dead = self._dead
        if dead >= _COMPACT_MIN and 2 * dead > len(self._slab):
            self._compact()

    def _reindex(self, slots: int) -> None:
        """A fresh index of ``slots`` slots holding the same entries (no tombstones).
        Entries carry their fingerprint, so no key is read or hashed again."""
        index = array("q", [_EMPTY]) * slots
        mask = slots - 1
        first_probe_mask = mask & _FINGERPRINT_MASK  # v & this == fingerprint & mask
        for v in self._index:
            if v >= 0:
                i = v & first_probe_mask
                if index[i] != _EMPTY:
                    i = self._empty_slot_in(index, mask, v & _FINGERPRINT_MASK)
                index[i] = v
        self._index = index
        self._mask = mask
        self._limit = slots * 2 // 3
        self._used = self._live

    def _compact(self) -> None:
        """Rewrite the slab with the live records only, in slab order, and rebuild the index.
        Sorting the index entries sorts them by offset (it is their high bits), which gives
        slab order without walking dead records or hashing any key."""
        entries = sorted(v for v in self._index if v >= 0)
        old = self._slab
        slab = bytearray()
        moved = array("q", bytes(8 * len(entries)))
        with memoryview(old) as view:
            for n, v in enumerate(entries):
                offset = v >> _OFFSET_SHIFT
                key_length, record_length = _unpack_header(old, offset)
                moved[n] = len(slab) << _OFFSET_SHIFT | (v & _FINGERPRINT_MASK)
                slab += view[offset : offset + _HEADER_SIZE + key_length + record_length]
        self._slab = slab
        self._dead = 0
        self._index = moved  # _reindex reads the entries from here
        self._reindex(_slots_for(self._live))
