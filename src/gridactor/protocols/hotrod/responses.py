"""Hot Rod response encoders: one function per response shape, each returning one frame.

Every response starts ``A1 <vLong message id> <opcode> <status> 00``: the topology
marker is always 0 (gridactor never sends topology, see the protocol notes §8).
The previous-value block differs by version: 3.x sends ``byte[] value``; 4.x sends a
metadata block before it, and a fixed "nothing" block when there was no entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gridactor.cache.api import CacheStatistics, CounterConfig, Entry, MultimapEntry
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod.primitives import (
    write_bytes,
    write_long,
    write_media_type,
    write_short,
    write_string,
    write_vint,
    write_vlong,
)

# 4.x previous-value block when there was no entry: infinite lifespan and max-idle,
# version -1, empty value.
NO_PREVIOUS_4X = b"\x03" + b"\xff" * 8 + b"\x00"
NO_PREVIOUS_3X = b"\x00"

_SUPPORTED_OPS = write_vint(len(op.SUPPORTED_OPERATIONS)) + b"".join(
    write_short(code) for code in op.SUPPORTED_OPERATIONS
)
_PING_TAIL_3X = bytes((op.SERVER_PROTOCOL_VERSION,)) + _SUPPORTED_OPS

# (opcode, status, marker) triples are few: build them once.
_OP_STATUS: dict[tuple[int, int], bytes] = {}


def header(message_id: int, opcode: int, status: int) -> bytes:
    """Response header with topology marker 0."""
    tail = _OP_STATUS.get((opcode, status))
    if tail is None:
        tail = _OP_STATUS[(opcode, status)] = bytes((opcode, status, 0))
    return b"\xa1" + write_vlong(message_id) + tail


def status_only(message_id: int, request_opcode: int, status: int) -> bytes:
    return header(message_id, op.response_opcode(request_opcode), status)


def error(message_id: int, status: int, text: str) -> bytes:
    """Error response: opcode 0x50, the status, then the message as a string."""
    return header(message_id, op.ERROR_RESPONSE, status) + write_string(text)


# ---------------------------------------------------------------- metadata and previous values


def metadata_block(entry: Entry) -> bytes:
    """flags, [created, lifespan s], [last used, max-idle s], version."""
    flags = 0
    parts = []
    if entry.lifespan_ms < 0:
        flags |= 0x01
    else:
        parts.append(write_long(entry.created_ms) + write_vint(entry.lifespan_ms // 1000))
    if entry.max_idle_ms < 0:
        flags |= 0x02
    else:
        parts.append(write_long(entry.last_used_ms) + write_vint(entry.max_idle_ms // 1000))
    return bytes((flags,)) + b"".join(parts) + write_long(entry.version)


def previous_block(version: int, previous: Entry | None) -> bytes:
    if version >= 40:
        if previous is None:
            return NO_PREVIOUS_4X
        return metadata_block(previous) + write_bytes(previous.value)
    if previous is None:
        return NO_PREVIOUS_3X
    return write_bytes(previous.value)


def with_previous(
    message_id: int, request_opcode: int, status: int, version: int, previous: Entry | None
) -> bytes:
    return status_only(message_id, request_opcode, status) + previous_block(version, previous)


# ---------------------------------------------------------------- reads


def get(message_id: int, value: bytes | None) -> bytes:
    if value is None:
        return header(message_id, op.GET + 1, op.KEY_DOES_NOT_EXIST)
    return header(message_id, op.GET + 1, op.SUCCESS) + write_bytes(value)


def get_with_version(message_id: int, entry: Entry | None) -> bytes:
    if entry is None:
        return header(message_id, op.GET_WITH_VERSION + 1, op.KEY_DOES_NOT_EXIST)
    return (
        header(message_id, op.GET_WITH_VERSION + 1, op.SUCCESS)
        + write_long(entry.version)
        + write_bytes(entry.value)
    )


def get_with_metadata(message_id: int, entry: Entry | None) -> bytes:
    if entry is None:
        return header(message_id, op.GET_WITH_METADATA + 1, op.KEY_DOES_NOT_EXIST)
    return (
        header(message_id, op.GET_WITH_METADATA + 1, op.SUCCESS)
        + metadata_block(entry)
        + write_bytes(entry.value)
    )


def size(message_id: int, count: int) -> bytes:
    return header(message_id, op.SIZE + 1, op.SUCCESS) + write_vlong(count)


def get_all(message_id: int, found: Iterable[tuple[bytes, bytes]]) -> bytes:
    pairs = [write_bytes(key) + write_bytes(value) for key, value in found]
    return header(message_id, op.GET_ALL + 1, op.SUCCESS) + write_vint(len(pairs)) + b"".join(pairs)


def bulk_get(message_id: int, entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(b"\x01" + write_bytes(key) + write_bytes(value) for key, value in entries)
    return header(message_id, op.BULK_GET + 1, op.SUCCESS) + body + b"\x00"


def bulk_get_keys(message_id: int, keys: Iterable[bytes]) -> bytes:
    body = b"".join(b"\x01" + write_bytes(key) for key in keys)
    return header(message_id, op.BULK_GET_KEYS + 1, op.SUCCESS) + body + b"\x00"


def stats(message_id: int, statistics: CacheStatistics, extra: Sequence[tuple[str, int]] = ()) -> bytes:
    """STATS: the names Infinispan sends, every value a decimal string."""
    items: list[tuple[str, int]] = [
        ("timeSinceStart", statistics.time_since_start_s),
        ("currentNumberOfEntries", statistics.current_entries),
        ("stores", statistics.stores),
        ("retrievals", statistics.retrievals),
        ("hits", statistics.hits),
        ("misses", statistics.misses),
        ("removeHits", statistics.remove_hits),
        ("removeMisses", statistics.remove_misses),
        ("approximateEntries", statistics.current_entries),
        ("approximateEntriesUnique", statistics.current_entries),
        ("evictions", statistics.evictions),
    ]
    known = {name for name, _ in items}
    items.extend((name, value) for name, value in statistics.extra.items() if name not in known)
    items.extend(extra)
    body = b"".join(write_string(name) + write_string(str(value)) for name, value in items)
    return header(message_id, op.STATS + 1, op.SUCCESS) + write_vint(len(items)) + body


# ---------------------------------------------------------------- ping, auth


def ping(message_id: int, version: int, key_type: str, value_type: str) -> bytes:
    """PING: media types from 2.9, server version and supported ops from 3.0."""
    out = header(message_id, op.PING + 1, op.SUCCESS)
    if version >= 29:
        out += write_media_type(key_type) + write_media_type(value_type)
    if version >= 30:
        out += _PING_TAIL_3X
    return out


def event(listener_id: bytes, kind: int, key: bytes, version: int, message_id: int = 0) -> bytes:
    """A client-listener event (opcodes 0x60 created, 0x61 modified, 0x62 removed, 0x63 expired).

    Created and modified events carry the entry's version; the others only the key. Events
    are never custom (converter) nor retried here.
    """
    body = write_bytes(listener_id) + b"\x00\x00" + write_bytes(key)
    if kind in (0x60, 0x61):
        body += write_long(version)
    return header(message_id, kind, op.SUCCESS) + body


def exec_result(message_id: int, result: bytes) -> bytes:
    """EXEC: ``00`` + byte[] result (the Node client decodes it as a string)."""
    return header(message_id, op.EXEC + 1, op.SUCCESS) + write_bytes(result)


def auth_mech_list(message_id: int, mechanisms: Sequence[str]) -> bytes:
    body = b"".join(write_string(name) for name in mechanisms)
    return header(message_id, op.AUTH_MECH_LIST + 1, op.SUCCESS) + write_vint(len(mechanisms)) + body


def auth(message_id: int, challenge: bytes | None) -> bytes:
    """AUTH round result: ``00 + challenge`` while (or when) there is data, else ``01 00``.

    The Node client reads exactly one byte after completed=1, so completion never
    carries data: final server data (SCRAM ``v=``) goes out as ``00 + data``.
    """
    if challenge is None:
        return header(message_id, op.AUTH + 1, op.SUCCESS) + b"\x01\x00"
    return header(message_id, op.AUTH + 1, op.SUCCESS) + b"\x00" + write_bytes(challenge)


# ---------------------------------------------------------------- iteration


def iteration_start(message_id: int, iteration_id: str) -> bytes:
    return header(message_id, op.ITERATION_START + 1, op.SUCCESS) + write_string(iteration_id)


def segments_mask(segments: Iterable[int]) -> bytes:
    """java.util.BitSet.toByteArray() of the segments (trailing zero bytes trimmed)."""
    mask = bytearray()
    for segment in segments:
        index = segment >> 3
        if index >= len(mask):
            mask.extend(bytes(index + 1 - len(mask)))
        mask[index] |= 1 << (segment & 7)
    return bytes(mask)


def iteration_next(
    message_id: int,
    version: int,
    finished_segments: Iterable[int],
    entries: Sequence[Entry],
    with_metadata: bool,
) -> bytes:
    out = [
        header(message_id, op.ITERATION_NEXT + 1, op.SUCCESS),
        write_bytes(segments_mask(finished_segments)),
        write_vint(len(entries)),
    ]
    if entries:
        out.append(b"\x01")  # projections: one value per entry
        has_meta_field = version >= 24
        for entry in entries:
            if has_meta_field:
                out.append(b"\x01" + metadata_block(entry) if with_metadata else b"\x00")
            out.append(write_bytes(entry.key))
            out.append(write_bytes(entry.value))
    return b"".join(out)


def invalid_iteration(message_id: int, request_opcode: int) -> bytes:
    return status_only(message_id, request_opcode, op.INVALID_ITERATION)


# ---------------------------------------------------------------- counters (hotrod_protocol.adoc, 2.7)


def counter_value(message_id: int, request_opcode: int, value: int) -> bytes:
    """``00`` + long: get, add-and-get, compare-and-swap, get-and-set."""
    return status_only(message_id, request_opcode, op.SUCCESS) + write_long(value)


def counter_configuration(message_id: int, config: CounterConfig) -> bytes:
    """``00`` + flags (1 weak, 2 bounded, 4 persistent), [vInt concurrency], [long lower, long upper],
    long initial value (Infinispan's CounterEncodeUtil.encodeConfiguration)."""
    flags = 0x01 if config.weak else 0x02 if config.bounded else 0
    if config.persistent:
        flags |= 0x04
    body = bytes((flags,))
    if config.weak:
        body += write_vint(config.concurrency_level)
    elif config.bounded:
        body += write_long(config.lower_bound) + write_long(config.upper_bound)
    body += write_long(config.initial_value)
    return header(message_id, op.COUNTER_GET_CONFIGURATION + 1, op.SUCCESS) + body


def counter_names(message_id: int, names: Sequence[str]) -> bytes:
    body = b"".join(write_string(name) for name in names)
    return header(message_id, op.COUNTER_GET_NAMES + 1, op.SUCCESS) + write_vint(len(names)) + body


# ---------------------------------------------------------------- multimap (Encoder2x)


def multimap_values(message_id: int, values: Sequence[bytes]) -> bytes:
    """GET_MULTIMAP hit: ``00`` + vInt count + count x byte[]."""
    body = write_vint(len(values)) + b"".join(write_bytes(v) for v in values)
    return header(message_id, op.MULTIMAP_GET + 1, op.SUCCESS) + body


def multimap_entry(message_id: int, entry: MultimapEntry) -> bytes:
    """GET_MULTIMAP_WITH_METADATA hit: ``00`` + metadata block + vInt count + values.

    Buckets are immortal (flags 0x03: no created/last-used times follow), then the version.
    """
    body = b"\x03" + write_long(entry.version) + write_vint(len(entry.values))
    body += b"".join(write_bytes(v) for v in entry.values)
    return header(message_id, op.MULTIMAP_GET_WITH_METADATA + 1, op.SUCCESS) + body


def boolean(message_id: int, request_opcode: int, answer: bool) -> bytes:
    """``00`` + one byte 1/0: the multimap remove and contains operations."""
    return status_only(message_id, request_opcode, op.SUCCESS) + (b"\x01" if answer else b"\x00")


def multimap_size(message_id: int, count: int) -> bytes:
    return header(message_id, op.MULTIMAP_SIZE + 1, op.SUCCESS) + write_vlong(count)
