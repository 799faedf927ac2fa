"""Decoded Hot Rod requests and the codec's other events.

Every request carries the header fields a response needs (``message_id``, ``version``)
and those an operation needs (``cache``, ``flags``, the value media type). Expirations
are already converted to the cache API's terms: milliseconds, ``None`` = cache default,
``-1`` = never. Fields are positional in header order so the codec can build them fast.
They are slotted dataclasses, deliberately not frozen: a frozen dataclass's ``__init__``
costs ~4x (one ``object.__setattr__`` per field), once per request. Treat them as immutable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from gridactor.cache.api import CounterConfig
from gridactor.protocols.hotrod import operations as op


class Sentinel(enum.Enum):
    NEED_DATA = "need-data"
    CLOSED = "closed"


NEED_DATA = Sentinel.NEED_DATA
"""More bytes are needed before the next event."""
CLOSED = Sentinel.CLOSED
"""The peer closed its side and every complete request has been returned."""


@dataclass(slots=True)
class RequestError:
    """A request the codec rejected; answer with an error response (opcode 0x50).

    ``close``: the stream cannot be resynchronised, close after answering.
    ``message_id`` is 0 when it could not be read (bad magic).
    """

    message_id: int
    version: int
    status: int
    text: str
    close: bool = False
    opcode: int = 0


@dataclass(slots=True)
class Request:
    message_id: int
    version: int
    cache: str
    flags: int
    key_type: str  # "" = none given
    value_type: str  # "" = none given; stored as the entry's media type on writes

    OPCODE: ClassVar[int] = 0

    @property
    def opcode(self) -> int:
        return self.OPCODE

    @property
    def force_return_value(self) -> bool:
        return bool(self.flags & op.FORCE_RETURN_VALUE)


@dataclass(slots=True)
class PingRequest(Request):
    OPCODE: ClassVar[int] = op.PING


@dataclass(slots=True)
class GetRequest(Request):
    key: bytes
    OPCODE: ClassVar[int] = op.GET


@dataclass(slots=True)
class GetWithVersionRequest(Request):
    key: bytes
    OPCODE: ClassVar[int] = op.GET_WITH_VERSION


@dataclass(slots=True)
class GetWithMetadataRequest(Request):
    key: bytes
    OPCODE: ClassVar[int] = op.GET_WITH_METADATA


@dataclass(slots=True)
class ContainsKeyRequest(Request):
    key: bytes
    OPCODE: ClassVar[int] = op.CONTAINS_KEY


@dataclass(slots=True)
class PutRequest(Request):
    key: bytes
    value: bytes
    lifespan_ms: int | None
    max_idle_ms: int | None
    OPCODE: ClassVar[int] = op.PUT


@dataclass(slots=True)
class PutIfAbsentRequest(Request):
    key: bytes
    value: bytes
    lifespan_ms: int | None
    max_idle_ms: int | None
    OPCODE: ClassVar[int] = op.PUT_IF_ABSENT


@dataclass(slots=True)
class ReplaceRequest(Request):
    key: bytes
    value: bytes
    lifespan_ms: int | None
    max_idle_ms: int | None
    OPCODE: ClassVar[int] = op.REPLACE


@dataclass(slots=True)
class ReplaceIfUnmodifiedRequest(Request):
    key: bytes
    value: bytes
    lifespan_ms: int | None
    max_idle_ms: int | None
    entry_version: int
    OPCODE: ClassVar[int] = op.REPLACE_IF_UNMODIFIED


@dataclass(slots=True)
class RemoveRequest(Request):
    key: bytes
    OPCODE: ClassVar[int] = op.REMOVE


@dataclass(slots=True)
class RemoveIfUnmodifiedRequest(Request):
    key: bytes
    entry_version: int
    OPCODE: ClassVar[int] = op.REMOVE_IF_UNMODIFIED


@dataclass(slots=True)
class ClearRequest(Request):
    OPCODE: ClassVar[int] = op.CLEAR


@dataclass(slots=True)
class SizeRequest(Request):
    OPCODE: ClassVar[int] = op.SIZE


@dataclass(slots=True)
class StatsRequest(Request):
    OPCODE: ClassVar[int] = op.STATS


@dataclass(slots=True)
class PutAllRequest(Request):
    entries: tuple[tuple[bytes, bytes], ...]
    lifespan_ms: int | None
    max_idle_ms: int | None
    OPCODE: ClassVar[int] = op.PUT_ALL


@dataclass(slots=True)
class GetAllRequest(Request):
    keys: tuple[bytes, ...]
    OPCODE: ClassVar[int] = op.GET_ALL


@dataclass(slots=True)
class BulkGetRequest(Request):
    max_entries: int  # 0 = all
    OPCODE: ClassVar[int] = op.BULK_GET


@dataclass(slots=True)
class BulkGetKeysRequest(Request):
    scope: int
    OPCODE: ClassVar[int] = op.BULK_GET_KEYS


@dataclass(slots=True)
class IterationStartRequest(Request):
    segments: tuple[int, ...] | None  # None = every segment
    filter_factory: str | None
    filter_params: tuple[bytes, ...]
    batch_size: int
    with_metadata: bool
    OPCODE: ClassVar[int] = op.ITERATION_START


@dataclass(slots=True)
class IterationNextRequest(Request):
    iteration_id: str
    OPCODE: ClassVar[int] = op.ITERATION_NEXT


@dataclass(slots=True)
class IterationEndRequest(Request):
    iteration_id: str
    OPCODE: ClassVar[int] = op.ITERATION_END


@dataclass(slots=True)
class AuthMechListRequest(Request):
    OPCODE: ClassVar[int] = op.AUTH_MECH_LIST


@dataclass(slots=True)
class AuthRequest(Request):
    mech: str
    response: bytes
    OPCODE: ClassVar[int] = op.AUTH


@dataclass(slots=True)
class AddListenerRequest(Request):
    """ADD_CLIENT_LISTENER: events of this cache go to this connection until removed."""

    listener_id: bytes
    include_state: bool
    filter_factory: str | None
    converter_factory: str | None
    use_raw_data: bool
    interests: int  # bit mask: 1 created, 2 modified, 4 removed, 8 expired (0 = all)
    OPCODE: ClassVar[int] = op.ADD_CLIENT_LISTENER


@dataclass(slots=True)
class RemoveListenerRequest(Request):
    listener_id: bytes
    OPCODE: ClassVar[int] = op.REMOVE_CLIENT_LISTENER


@dataclass(slots=True)
class ExecRequest(Request):
    """EXEC: a server task by name (the admin tasks ``@@cache@create`` …) with parameters."""

    task: str
    params: tuple[tuple[str, bytes], ...]
    OPCODE: ClassVar[int] = op.EXEC


# ---------------------------------------------------------------- counters (3.1+; the cache field is unused)


@dataclass(slots=True)
class CounterCreateRequest(Request):
    name: str
    config: CounterConfig
    OPCODE: ClassVar[int] = op.COUNTER_CREATE


@dataclass(slots=True)
class CounterGetConfigurationRequest(Request):
    name: str
    OPCODE: ClassVar[int] = op.COUNTER_GET_CONFIGURATION


@dataclass(slots=True)
class CounterIsDefinedRequest(Request):
    name: str
    OPCODE: ClassVar[int] = op.COUNTER_IS_DEFINED


@dataclass(slots=True)
class CounterGetRequest(Request):
    name: str
    OPCODE: ClassVar[int] = op.COUNTER_GET


@dataclass(slots=True)
class CounterAddAndGetRequest(Request):
    name: str
    delta: int
    OPCODE: ClassVar[int] = op.COUNTER_ADD_AND_GET


@dataclass(slots=True)
class CounterResetRequest(Request):
    name: str
    OPCODE: ClassVar[int] = op.COUNTER_RESET


@dataclass(slots=True)
class CounterCompareAndSwapRequest(Request):
    name: str
    expect: int
    update: int
    OPCODE: ClassVar[int] = op.COUNTER_CAS


@dataclass(slots=True)
class CounterGetAndSetRequest(Request):
    name: str
    new_value: int
    OPCODE: ClassVar[int] = op.COUNTER_GET_AND_SET


@dataclass(slots=True)
class CounterRemoveRequest(Request):
    name: str
    OPCODE: ClassVar[int] = op.COUNTER_REMOVE


@dataclass(slots=True)
class CounterGetNamesRequest(Request):
    OPCODE: ClassVar[int] = op.COUNTER_GET_NAMES


# ---------------------------------------------------------------- multimap (3.1+)
# ``duplicates``: the supportsDuplicates byte (read from 4.0; False for 3.x, as Infinispan does).
# The expiration some of these carry is parsed and ignored, as Infinispan ignores it.


@dataclass(slots=True)
class MultimapGetRequest(Request):
    key: bytes
    duplicates: bool
    OPCODE: ClassVar[int] = op.MULTIMAP_GET


@dataclass(slots=True)
class MultimapGetWithMetadataRequest(Request):
    key: bytes
    duplicates: bool
    OPCODE: ClassVar[int] = op.MULTIMAP_GET_WITH_METADATA


@dataclass(slots=True)
class MultimapPutRequest(Request):
    key: bytes
    value: bytes
    duplicates: bool
    OPCODE: ClassVar[int] = op.MULTIMAP_PUT


@dataclass(slots=True)
class MultimapRemoveKeyRequest(Request):
    key: bytes
    duplicates: bool
    OPCODE: ClassVar[int] = op.MULTIMAP_REMOVE_KEY


@dataclass(slots=True)
class MultimapRemoveEntryRequest(Request):
    key: bytes
    value: bytes
    duplicates: bool
    OPCODE: ClassVar[int] = op.MULTIMAP_REMOVE_ENTRY


@dataclass(slots=True)
class MultimapSizeRequest(Request):
    duplicates: bool
    OPCODE: ClassVar[int] = op.MULTIMAP_SIZE


@dataclass(slots=True)
class MultimapContainsEntryRequest(Request):
    key: bytes
    value: bytes
    duplicates: bool
    OPCODE: ClassVar[int] = op.MULTIMAP_CONTAINS_ENTRY


@dataclass(slots=True)
class MultimapContainsKeyRequest(Request):
    key: bytes
    duplicates: bool
    OPCODE: ClassVar[int] = op.MULTIMAP_CONTAINS_KEY


@dataclass(slots=True)
class MultimapContainsValueRequest(Request):
    value: bytes
    duplicates: bool
    OPCODE: ClassVar[int] = op.MULTIMAP_CONTAINS_VALUE


@dataclass(slots=True)
class UnsupportedRequest(Request):
    """A known operation (body fully read) that gridactor does not implement."""

    request_opcode: int

    @property
    def opcode(self) -> int:
        return self.request_opcode

    @property
    def name(self) -> str:
        return op.OPERATION_NAMES.get(self.request_opcode, f"0x{self.request_opcode:02X}")


Event = Request | RequestError | Sentinel
