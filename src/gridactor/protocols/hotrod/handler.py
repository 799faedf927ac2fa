"""From decoded Hot Rod requests to cache operations and back to response bytes.

One :class:`HotRodSession` per connection holds what Hot Rod keeps per connection: the
authenticated subject and the open iterations. :meth:`HotRodSession.handle_batch` turns
every request of one receive into response bytes with, normally, a single
``CacheService.execute_many`` call:

* each request is *planned*: either answered at once (PING, AUTH_MECH_LIST, errors,
  ITERATION_START/END) or turned into a :data:`Step`, the cache ops it needs plus a
  function that builds its response from their results;
* the ops of every step go out as one batch, in request order;
* a step's finisher may ask for another round (only ITERATION_NEXT does, when the
  segments fetched so far held fewer entries than its batch size).

AUTH is the only request that splits a batch: whether the requests after it are allowed
depends on its outcome, so the requests before it are executed first.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, cast

from gridactor.cache.api import (
    SEGMENTS,
    CacheOp,
    CacheResult,
    CacheSettings,
    CacheStatistics,
    Clear,
    ContainsKey,
    CounterAddAndGet,
    CounterCompareAndSwap,
    CounterConfig,
    CounterCreate,
    CounterGet,
    CounterGetAndSet,
    CounterGetConfig,
    CounterIsDefined,
    CounterNames,
    CounterRemove,
    CounterReset,
    CounterResult,
    CounterStatus,
    Entry,
    Get,
    GetAll,
    GetValue,
    MultimapContainsEntry,
    MultimapContainsKey,
    MultimapContainsValue,
    MultimapEntry,
    MultimapGet,
    MultimapPut,
    MultimapRemoveEntry,
    MultimapRemoveKey,
    MultimapSize,
    Put,
    PutAll,
    PutIfAbsent,
    Remove,
    RemoveIfUnmodified,
    Replace,
    ReplaceIfUnmodified,
    ScanSegments,
    SegmentEntries,
    Size,
    Stats,
    WriteResult,
    execute_guarded,
)
from gridactor.cache.events import CacheEvent, EventKind, Subscription
from gridactor.errors import (
    AuthenticationError,
    AuthorizationError,
    CacheExistsError,
    GridError,
    InvalidRequestError,
)
from gridactor.protocols.hotrod import messages as m
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod import responses as resp
from gridactor.security import access
from gridactor.security.identity import Identity
from gridactor.security.permissions import implies
from gridactor.server.context import EndpointContext

log = logging.getLogger(__name__)

Results: TypeAlias = "list[CacheResult | GridError]"
Finisher: TypeAlias = "Callable[[Results], bytes | Step]"
Step: TypeAlias = "tuple[list[tuple[str, CacheOp]], Finisher]"

MAX_ITERATIONS_PER_CONNECTION = 256
_FIRST_SCAN_SEGMENTS = 16
_DEFAULT_BATCH_SIZE = 100

_SERVER_ERROR = "org.infinispan.server.hotrod.HotRodException"


# ---------------------------------------------------------------- authentication plug


@dataclass(frozen=True, slots=True)
class AuthStep:
    """One SASL round's outcome.

    ``subject`` is set when the exchange completed; ``challenge`` is the server data to
    send (None with a subject = complete with no data, answered ``01 00``).
    """

    challenge: bytes | None
    subject: object | None = None


class SaslAuthenticator(Protocol):
    """Per-connection SASL server (to come). Failures raise AuthenticationError."""

    def mechanisms(self) -> Sequence[str]: ...

    def step(self, mech: str, response: bytes) -> Awaitable[AuthStep]: ...


def operation_allowed(opcode: int, security_enabled: bool, subject: object | None) -> bool:
    """The authentication gate: before auth only PING, AUTH_MECH_LIST and AUTH pass."""
    return not security_enabled or subject is not None or opcode in op.ALLOWED_BEFORE_AUTH


def requires_authentication_error(opcode: int) -> AuthenticationError:
    name = op.OPERATION_NAMES.get(opcode, f"0x{opcode:02X}")
    return AuthenticationError(f"ISPN006017: Operation '{name}' requires authentication")


class _InvalidMechanism(GridError):
    hotrod_status = op.SERVER_ERROR
    exception_class = "java.lang.IllegalArgumentException"


class _Unsupported(GridError):
    hotrod_status = op.UNKNOWN_OPERATION
    exception_class = "java.lang.UnsupportedOperationException"


class _CounterConfigurationError(GridError):
    exception_class = "org.infinispan.counter.exception.CounterConfigurationException"


class _CounterOutOfBounds(GridError):
    """A bounded counter refused a value. Infinispan answers status 0x04 with no body, but the
    Node client (0.16.3) then reads a long that is not there and loses the stream; an error
    frame is read the same way by every client, so the call fails cleanly instead."""

    exception_class = "org.infinispan.counter.exception.CounterOutOfBoundsException"


class _CounterTypeError(GridError):
    exception_class = "org.infinispan.counter.exception.CounterException"


_COUNTER_REFUSALS: dict[CounterStatus, GridError] = {
    CounterStatus.LOWER_BOUND_REACHED: _CounterOutOfBounds("ISPN029501: Lower bound reached."),
    CounterStatus.UPPER_BOUND_REACHED: _CounterOutOfBounds("ISPN029501: Upper bound reached."),
    CounterStatus.NOT_STRONG: _CounterTypeError(
        "ISPN029514: Invalid counter type. Expected=STRONG but got WEAK"
    ),
}


# ---------------------------------------------------------------- iteration state


@dataclass(slots=True)
class _Iteration:
    cache: str
    segments: tuple[int, ...]  # to scan, in order
    batch_size: int
    with_metadata: bool
    next_segment: int = 0  # index into segments of the next one to fetch
    scan_width: int = _FIRST_SCAN_SEGMENTS
    # Entries not yet sent, with an int marker after the last entry of each segment.
    buffer: deque[Entry | int] = field(default_factory=deque)
    buffered_entries: int = 0


def _error(message_id: int, err: GridError) -> bytes:
    return resp.error(message_id, err.hotrod_status, err.hotrod_text)


@dataclass(slots=True)
class ClientListener:
    listener_id: bytes
    subscription: Subscription
    interests: int  # bit per EventKind (created 1, modified 2, removed 4, expired 8)

    def wants(self, kind: EventKind) -> bool:
        return bool(self.interests & kind.interest)

    def frame(self, event: CacheEvent) -> bytes | None:
        if not self.wants(event.kind):
            return None
        return resp.event(self.listener_id, event.kind, event.key, event.version)


def _is_plain_get_or_put(event: m.Request | m.RequestError) -> bool:
    """A GET, or a PUT that wants no previous value (HotRodSession._plain_batch)."""
    if type(event) is m.GetRequest:
        return True
    return type(event) is m.PutRequest and not event.flags & op.FORCE_RETURN_VALUE


class HotRodSession:
    """Per-connection Hot Rod state and request handling (module docstring)."""

    def __init__(self, ctx: EndpointContext, authenticator: SaslAuthenticator | None = None) -> None:
        self.ctx = ctx
        self.caches = ctx.caches
        self.authenticator = authenticator
        self.subject: object | None = None
        self._authorizer = ctx.authorizer if ctx.authorizer is not None and ctx.authorizer.enabled else None
        self._masks: dict[str, int] = {}
        self._mask_generation = -1
        self._iterations: dict[str, _Iteration] = {}
        # Client listeners of this connection, by listener id; the connection starts one
        # event pump per entry of ``new_listeners`` after the batch that added it.
        self.listeners: dict[bytes, ClientListener] = {}
        self.new_listeners: list[ClientListener] = []
        self._planners: dict[type, Callable[[m.Request], bytes | Step]] = {
            m.PingRequest: self._ping,
            m.GetRequest: self._get,
            m.GetWithVersionRequest: self._get_with_version,
            m.GetWithMetadataRequest: self._get_with_metadata,
            m.ContainsKeyRequest: self._contains_key,
            m.PutRequest: self._put,
            m.PutIfAbsentRequest: self._put_if_absent,
            m.ReplaceRequest: self._replace,
            m.ReplaceIfUnmodifiedRequest: self._replace_if_unmodified,
            m.RemoveRequest: self._remove,
            m.RemoveIfUnmodifiedRequest: self._remove_if_unmodified,
            m.ClearRequest: self._clear,
            m.SizeRequest: self._size,
            m.StatsRequest: self._stats,
            m.PutAllRequest: self._put_all,
            m.GetAllRequest: self._get_all,
            m.BulkGetRequest: self._bulk_get,
            m.BulkGetKeysRequest: self._bulk_get_keys,
            m.IterationStartRequest: self._iteration_start,
            m.IterationNextRequest: self._iteration_next,
            m.IterationEndRequest: self._iteration_end,
            m.AuthMechListRequest: self._auth_mech_list,
            m.AuthRequest: self._auth_without_engine,
            m.AddListenerRequest: self._add_listener,
            m.RemoveListenerRequest: self._remove_listener,
            m.CounterCreateRequest: self._counter_create,
            m.CounterGetConfigurationRequest: self._counter_get_configuration,
            m.CounterIsDefinedRequest: self._counter_is_defined,
            m.CounterGetRequest: self._counter_value_op,
            m.CounterAddAndGetRequest: self._counter_value_op,
            m.CounterCompareAndSwapRequest: self._counter_value_op,
            m.CounterGetAndSetRequest: self._counter_value_op,
            m.CounterResetRequest: self._counter_status_op,
            m.CounterRemoveRequest: self._counter_status_op,
            m.CounterGetNamesRequest: self._counter_names,
            m.MultimapGetRequest: self._multimap_get,
            m.MultimapGetWithMetadataRequest: self._multimap_get,
            m.MultimapPutRequest: self._multimap_put,
            m.MultimapRemoveKeyRequest: self._multimap_boolean,
            m.MultimapRemoveEntryRequest: self._multimap_boolean,
            m.MultimapContainsKeyRequest: self._multimap_boolean,
            m.MultimapContainsEntryRequest: self._multimap_boolean,
            m.MultimapContainsValueRequest: self._multimap_boolean,
            m.MultimapSizeRequest: self._multimap_size,
            m.UnsupportedRequest: self._unsupported,
        }

    @property
    def security_enabled(self) -> bool:
        return self.ctx.security_realm is not None

    # ------------------------------------------------------------ batches

    async def handle_batch(self, events: Sequence[m.Request | m.RequestError]) -> bytes:
        """Response bytes for ``events``, in order (one frame per event)."""
        if self._no_checks_needed and all(map(_is_plain_get_or_put, events)):
            return await self._plain_batch(cast("Sequence[m.GetRequest | m.PutRequest]", events))
        out: list[bytes] = []
        pending: list[tuple[int, int, Step]] = []  # (slot in out, message id, step)
        for event in events:
            if type(event) is m.AuthRequest and self.authenticator is not None:
                await self._run(out, pending)
                out.append(await self._auth(event, self.authenticator))
                continue
            if type(event) is m.ExecRequest:
                # Admin tasks change the set of caches: the ops before them run first.
                await self._run(out, pending)
                out.append(await self._exec(event))
                continue
            planned = self.plan(event)
            if type(planned) is bytes:
                out.append(planned)
            else:
                pending.append((len(out), event.message_id, cast(Step, planned)))
                out.append(b"")
        await self._run(out, pending)
        return b"".join(out)

    @property
    def _no_checks_needed(self) -> bool:
        """Whether requests may skip :meth:`plan`'s gates: no authentication pending, no authorization."""
        if self.subject is None:
            return self.ctx.security_realm is None
        return self._authorizer is None

    async def _plain_batch(self, requests: Sequence[m.GetRequest | m.PutRequest]) -> bytes:
        """A batch of nothing but GETs and PUTs without FORCE_RETURN_VALUE (pipelined reads
        and writes), without the general plan/step machinery: the same answers as
        :meth:`_get` and :meth:`_put` through :meth:`plan`, about a microsecond less each."""
        ops: list[tuple[str, CacheOp]] = []
        for request in requests:
            if type(request) is m.GetRequest:
                ops.append((request.cache, GetValue(request.key)))
            else:
                put = cast(m.PutRequest, request)
                write = Put(put.key, put.value, put.lifespan_ms, put.max_idle_ms, put.value_type, False)
                ops.append((put.cache, write))
        results = await self._execute(ops)
        out = []
        for request, result in zip(requests, results, strict=True):
            if isinstance(result, GridError):
                out.append(_error(request.message_id, result))
            elif type(request) is m.GetRequest:
                out.append(resp.get(request.message_id, cast("bytes | None", result)))
            else:
                out.append(resp.status_only(request.message_id, op.PUT, op.SUCCESS))
        return b"".join(out)

    def plan(self, event: m.Request | m.RequestError) -> bytes | Step:
        """Answer ``event`` now (bytes) or say which cache ops it needs (a Step)."""
        if type(event) is m.RequestError:
            return resp.error(event.message_id, event.status, event.text)
        request = cast(m.Request, event)
        if self.subject is None and self.ctx.security_realm is not None:
            opcode = request.opcode
            if opcode not in op.ALLOWED_BEFORE_AUTH:
                return _error(request.message_id, requires_authentication_error(opcode))
        authorized = self._authorizer is not None and self.subject is not None
        if authorized and type(request) is not m.UnsupportedRequest:
            denied = self._authorize(request)
            if denied is not None:
                return _error(request.message_id, denied)
        planner = self._planners.get(type(request))
        if planner is None:  # a Request subclass this session does not know
            return _error(request.message_id, _Unsupported(f"Operation 0x{request.opcode:02X} not supported"))
        try:
            return planner(request)
        except GridError as err:
            return _error(request.message_id, err)

    async def _exec(self, request: m.ExecRequest) -> bytes:
        """The admin tasks of Infinispan's Hot Rod EXEC (what the Node client's admin API sends)."""
        mid = request.message_id
        if self.subject is None and self.ctx.security_realm is not None:
            return _error(mid, requires_authentication_error(request.opcode))
        rule = access.HOTROD_TASKS.get(request.task)
        if rule is None:
            return _error(mid, _Unsupported(f"ISPN027003: Unknown task '{request.task}'"))
        identity = cast("Identity | None", self.subject)
        authorizer = self._authorizer
        if (
            authorizer is not None
            and identity is not None
            and rule.scope is access.Scope.CONTAINER
            and not implies(authorizer.mask(identity, None), rule.permission)
        ):
            return _error(mid, AuthorizationError(authorizer.denial(identity, rule.permission)))
        params = dict(request.params)
        try:
            if request.task == "@@cache@names":
                names = self.caches.cache_names()
                if self._authorizer is not None:
                    names = [n for n in names if self._authorizer.visible(identity, n)]
                return resp.exec_result(mid, json.dumps(sorted(names)).encode())
            name = params.get("name", b"").decode("utf-8")
            if not name:
                raise InvalidRequestError(f"task {request.task} needs a 'name' parameter")
            if request.task == "@@cache@remove":
                await self.caches.remove_cache(name)
                return resp.exec_result(mid, b"")
            settings = self._task_settings(name, params)
            try:
                await self.caches.create_cache(settings)
            except CacheExistsError:
                if request.task != "@@cache@getorcreate":
                    raise
            return resp.exec_result(mid, b"")
        except GridError as err:
            return _error(mid, err)
        except UnicodeDecodeError:
            return _error(mid, InvalidRequestError("task parameters must be UTF-8 text"))

    def _task_settings(self, name: str, params: dict[str, bytes]) -> CacheSettings:
        from gridactor.config.cache_definition import parse_cache_definition

        configuration = params.get("configuration")
        if configuration:
            text = configuration.lstrip()
            media = "application/xml" if text[:1] == b"<" else "application/json"
            return parse_cache_definition(configuration, media, name)
        template = params.get("template")
        if template:
            found = self.ctx.cache_templates.get(template.decode("utf-8"))
            if found is None:
                raise InvalidRequestError(f"no cache template named '{template.decode('utf-8', 'replace')}'")
            return dataclasses.replace(found, name=name)
        return CacheSettings(name=name)

    def _authorize(self, request: m.Request) -> AuthorizationError | None:
        """The denial for ``request``, or None when the subject holds the permission.

        Masks are kept per cache on the connection and dropped when the authorizer's
        generation moves (roles or mappings changed), so the hot path is a dict lookup.
        """
        authorizer = self._authorizer
        assert authorizer is not None
        rule = access.hotrod_access(request.opcode)
        if rule is None:
            name = op.OPERATION_NAMES.get(request.opcode, f"0x{request.opcode:02X}")
            return AuthorizationError(f"no access rule for operation {name}: refused")
        if rule.scope in (access.Scope.ANONYMOUS, access.Scope.AUTHENTICATED):
            return None
        if self._mask_generation != authorizer.generation:
            self._masks.clear()
            self._mask_generation = authorizer.generation
        cache = request.cache or self.caches.default_cache() or ""
        mask = self._masks.get(cache)
        identity = cast(Identity, self.subject)
        if mask is None:
            mask = authorizer.mask(identity, cache if rule.scope is access.Scope.CACHE else None)
            self._masks[cache] = mask
        needed = int(rule.permission)
        if mask & needed == needed:
            return None
        return AuthorizationError(authorizer.denial(identity, rule.permission))

    async def _run(self, out: list[bytes], pending: list[tuple[int, int, Step]]) -> None:
        """Execute pending steps, round after round, filling their slots in ``out``."""
        while pending:
            batch = [item for _, _, (ops, _) in pending for item in ops]
            results = await self._execute(batch)
            still_pending: list[tuple[int, int, Step]] = []
            index = 0
            for slot, message_id, (ops, finish) in pending:
                count = len(ops)
                mine = results[index : index + count]
                index += count
                failure = next((r for r in mine if isinstance(r, GridError)), None)
                if failure is not None:
                    out[slot] = _error(message_id, failure)
                    continue
                try:
                    finished = finish(mine)
                except GridError as err:
                    finished = _error(message_id, err)
                except Exception:
                    log.exception("Hot Rod response for message %d failed", message_id)
                    finished = resp.error(message_id, op.SERVER_ERROR, f"{_SERVER_ERROR}: internal error")
                if type(finished) is bytes:
                    out[slot] = finished
                else:
                    still_pending.append((slot, message_id, cast(Step, finished)))
            pending[:] = still_pending

    async def _execute(self, batch: list[tuple[str, CacheOp]]) -> Results:
        return await execute_guarded(self.caches, batch)

    # ------------------------------------------------------------ local requests

    def _ping(self, request: m.Request) -> bytes:
        try:
            settings = self.caches.settings(request.cache)
        except GridError as err:
            if request.cache == "":
                # Infinispan answers PING on "" even without a default cache.
                return resp.ping(request.message_id, request.version, "", "")
            return _error(request.message_id, err)
        key_type, value_type = settings.key_media_type, settings.value_media_type
        return resp.ping(request.message_id, request.version, key_type, value_type)

    def _auth_mech_list(self, request: m.Request) -> bytes:
        mechanisms = self.authenticator.mechanisms() if self.authenticator is not None else ()
        return resp.auth_mech_list(request.message_id, mechanisms)

    def _auth_without_engine(self, request: m.Request) -> bytes:
        mech = cast(m.AuthRequest, request).mech
        return _error(request.message_id, _InvalidMechanism(f"ISPN006025: Invalid mech '{mech}'"))

    async def _auth(self, request: m.AuthRequest, authenticator: SaslAuthenticator) -> bytes:
        try:
            outcome = await authenticator.step(request.mech, request.response)
        except GridError as err:
            return _error(request.message_id, err)
        if outcome.subject is not None:
            self.subject = outcome.subject
            return resp.auth(request.message_id, outcome.challenge)
        return resp.auth(request.message_id, outcome.challenge or b"")

    def _add_listener(self, request: m.Request) -> bytes | Step:
        add = cast(m.AddListenerRequest, request)
        mid = add.message_id
        hub = self.ctx.events
        if hub is None:
            return _error(mid, _Unsupported("client listeners are not available on this endpoint"))
        if add.filter_factory or add.converter_factory:
            name = add.filter_factory or add.converter_factory
            return _error(mid, _Unsupported(f"ISPN004043: No filter or converter factory named '{name}'"))
        if add.listener_id in self.listeners:
            return _error(mid, InvalidRequestError("a listener with this id is already registered"))
        cache = self.caches.settings(add.cache).name  # raises CacheNotFoundError
        listener = ClientListener(add.listener_id, hub.subscribe(cache), add.interests or 0x0F)
        self.listeners[add.listener_id] = listener
        self.new_listeners.append(listener)
        done = resp.status_only(mid, op.ADD_CLIENT_LISTENER, op.SUCCESS)
        if not add.include_state or not listener.wants(EventKind.CREATED):
            return done

        def state(results: Results) -> bytes:
            # The current entries first, as created events under this request's message id.
            found = cast("list[SegmentEntries]", results[0])
            frames = [
                resp.event(add.listener_id, EventKind.CREATED, e.key, e.version, mid)
                for segment in found
                for e in segment.entries
            ]
            return b"".join(frames) + done

        return [(cache, ScanSegments(()))], state

    def _remove_listener(self, request: m.Request) -> bytes:
        remove = cast(m.RemoveListenerRequest, request)
        listener = self.listeners.pop(remove.listener_id, None)
        if listener is None:
            return resp.status_only(remove.message_id, op.REMOVE_CLIENT_LISTENER, op.NOT_EXECUTED)
        listener.subscription.close()
        return resp.status_only(remove.message_id, op.REMOVE_CLIENT_LISTENER, op.SUCCESS)

    def close(self) -> None:
        """The connection is over: its listeners stop receiving events."""
        for listener in self.listeners.values():
            listener.subscription.close()
        self.listeners.clear()

    def _unsupported(self, request: m.Request) -> bytes:
        unsupported = cast(m.UnsupportedRequest, request)
        text = f"Operation {unsupported.name} (0x{unsupported.opcode:02X}) is not supported by this server"
        return _error(request.message_id, _Unsupported(text))

    # ------------------------------------------------------------ reads

    def _get(self, request: m.Request) -> Step:
        mid = request.message_id
        key = cast(m.GetRequest, request).key
        return [(request.cache, GetValue(key))], lambda r: resp.get(mid, cast("bytes | None", r[0]))

    def _get_with_version(self, request: m.Request) -> Step:
        mid = request.message_id
        key = cast(m.GetWithVersionRequest, request).key
        return [(request.cache, Get(key))], lambda r: resp.get_with_version(mid, cast("Entry | None", r[0]))

    def _get_with_metadata(self, request: m.Request) -> Step:
        mid = request.message_id
        key = cast(m.GetWithMetadataRequest, request).key
        return [(request.cache, Get(key))], lambda r: resp.get_with_metadata(mid, cast("Entry | None", r[0]))

    def _contains_key(self, request: m.Request) -> Step:
        mid = request.message_id
        key = cast(m.ContainsKeyRequest, request).key

        def finish(r: Results) -> bytes:
            return resp.status_only(mid, op.CONTAINS_KEY, op.SUCCESS if r[0] else op.KEY_DOES_NOT_EXIST)

        return [(request.cache, ContainsKey(key))], finish

    def _get_all(self, request: m.Request) -> Step:
        mid = request.message_id
        keys = cast(m.GetAllRequest, request).keys

        def finish(r: Results) -> bytes:
            found = cast("dict[bytes, Entry]", r[0])
            return resp.get_all(mid, ((key, entry.value) for key, entry in found.items()))

        return [(request.cache, GetAll(keys))], finish

    def _bulk_get(self, request: m.Request) -> Step:
        mid = request.message_id
        limit = cast(m.BulkGetRequest, request).max_entries

        def finish(r: Results) -> bytes:
            pairs = [(e.key, e.value) for chunk in cast("list[SegmentEntries]", r[0]) for e in chunk.entries]
            return resp.bulk_get(mid, pairs[:limit] if limit > 0 else pairs)

        return [(request.cache, ScanSegments())], finish

    def _bulk_get_keys(self, request: m.Request) -> Step:
        mid = request.message_id

        def finish(r: Results) -> bytes:
            chunks = cast("list[SegmentEntries]", r[0])
            return resp.bulk_get_keys(mid, [e.key for chunk in chunks for e in chunk.entries])

        return [(request.cache, ScanSegments())], finish

    def _size(self, request: m.Request) -> Step:
        mid = request.message_id
        return [(request.cache, Size())], lambda r: resp.size(mid, cast(int, r[0]))

    def _stats(self, request: m.Request) -> Step:
        mid = request.message_id
        return [(request.cache, Stats())], lambda r: resp.stats(mid, cast(CacheStatistics, r[0]))

    # ------------------------------------------------------------ writes (status rules: notes §5.2)

    def _put(self, request: m.Request) -> Step:
        put = cast(m.PutRequest, request)
        mid = put.message_id
        version = put.version
        force = put.flags & op.FORCE_RETURN_VALUE
        cache_op = Put(put.key, put.value, put.lifespan_ms, put.max_idle_ms, put.value_type, bool(force))

        def finish(r: Results) -> bytes:
            if force:
                previous = cast(WriteResult, r[0]).previous
                return resp.with_previous(mid, op.PUT, op.SUCCESS_WITH_PREVIOUS, version, previous)
            return resp.status_only(mid, op.PUT, op.SUCCESS)

        return [(put.cache, cache_op)], finish

    def _put_if_absent(self, request: m.Request) -> Step:
        put = cast(m.PutIfAbsentRequest, request)
        mid = put.message_id
        version = put.version
        force = put.flags & op.FORCE_RETURN_VALUE
        cache_op = PutIfAbsent(put.key, put.value, put.lifespan_ms, put.max_idle_ms, put.value_type)

        def finish(r: Results) -> bytes:
            result = cast(WriteResult, r[0])
            if result.done:
                return resp.status_only(mid, op.PUT_IF_ABSENT, op.SUCCESS)
            if force:
                return resp.with_previous(
                    mid, op.PUT_IF_ABSENT, op.NOT_EXECUTED_WITH_PREVIOUS, version, result.previous
                )
            return resp.status_only(mid, op.PUT_IF_ABSENT, op.NOT_EXECUTED)

        return [(put.cache, cache_op)], finish

    def _replace(self, request: m.Request) -> Step:
        put = cast(m.ReplaceRequest, request)
        cache_op = Replace(put.key, put.value, put.lifespan_ms, put.max_idle_ms, put.value_type)
        return [(put.cache, cache_op)], self._done_or(put, op.REPLACE, op.NOT_EXECUTED)

    def _remove(self, request: m.Request) -> Step:
        remove = cast(m.RemoveRequest, request)
        return [(remove.cache, Remove(remove.key))], self._done_or(remove, op.REMOVE, op.KEY_DOES_NOT_EXIST)

    def _done_or(self, request: m.Request, opcode: int, missed_status: int) -> Finisher:
        """REPLACE/REMOVE: done -> 00 (03 + prev when forced); not done -> ``missed_status``."""
        mid = request.message_id
        version = request.version
        force = request.flags & op.FORCE_RETURN_VALUE

        def finish(r: Results) -> bytes:
            result = cast(WriteResult, r[0])
            if not result.done:
                return resp.status_only(mid, opcode, missed_status)
            if force:
                return resp.with_previous(mid, opcode, op.SUCCESS_WITH_PREVIOUS, version, result.previous)
            return resp.status_only(mid, opcode, op.SUCCESS)

        return finish

    def _replace_if_unmodified(self, request: m.Request) -> Step:
        put = cast(m.ReplaceIfUnmodifiedRequest, request)
        cache_op = ReplaceIfUnmodified(
            put.key, put.value, put.entry_version, put.lifespan_ms, put.max_idle_ms, put.value_type
        )
        return [(put.cache, cache_op)], self._if_unmodified(put, op.REPLACE_IF_UNMODIFIED)

    def _remove_if_unmodified(self, request: m.Request) -> Step:
        remove = cast(m.RemoveIfUnmodifiedRequest, request)
        cache_op = RemoveIfUnmodified(remove.key, remove.entry_version)
        return [(remove.cache, cache_op)], self._if_unmodified(remove, op.REMOVE_IF_UNMODIFIED)

    def _if_unmodified(self, request: m.Request, opcode: int) -> Finisher:
        """done -> 00/03+prev; version mismatch -> 01/04+prev; absent -> 02."""
        mid = request.message_id
        version = request.version
        force = request.flags & op.FORCE_RETURN_VALUE

        def finish(r: Results) -> bytes:
            result = cast(WriteResult, r[0])
            if result.done:
                if force:
                    return resp.with_previous(mid, opcode, op.SUCCESS_WITH_PREVIOUS, version, result.previous)
                return resp.status_only(mid, opcode, op.SUCCESS)
            if result.previous is None:
                return resp.status_only(mid, opcode, op.KEY_DOES_NOT_EXIST)
            if force:
                status = op.NOT_EXECUTED_WITH_PREVIOUS
                return resp.with_previous(mid, opcode, status, version, result.previous)
            return resp.status_only(mid, opcode, op.NOT_EXECUTED)

        return finish

    def _clear(self, request: m.Request) -> Step:
        mid = request.message_id
        return [(request.cache, Clear())], lambda r: resp.status_only(mid, op.CLEAR, op.SUCCESS)

    def _put_all(self, request: m.Request) -> Step:
        put = cast(m.PutAllRequest, request)
        mid = put.message_id
        cache_op = PutAll(put.entries, put.lifespan_ms, put.max_idle_ms, put.value_type)
        return [(put.cache, cache_op)], lambda r: resp.status_only(mid, op.PUT_ALL, op.SUCCESS)

    # ------------------------------------------------------------ iteration

    def _iteration_start(self, request: m.Request) -> bytes:
        start = cast(m.IterationStartRequest, request)
        if start.filter_factory is not None:
            raise _Unsupported(f"Iteration filters/converters are not supported ('{start.filter_factory}')")
        self.caches.settings(start.cache)  # CacheNotFoundError for an unknown cache
        if len(self._iterations) >= MAX_ITERATIONS_PER_CONNECTION:
            raise GridError(f"Too many open iterations on this connection ({MAX_ITERATIONS_PER_CONNECTION})")
        segments = tuple(range(SEGMENTS)) if start.segments is None else tuple(sorted(set(start.segments)))
        batch_size = start.batch_size if start.batch_size > 0 else _DEFAULT_BATCH_SIZE
        iteration_id = str(uuid.uuid4())
        self._iterations[iteration_id] = _Iteration(start.cache, segments, batch_size, start.with_metadata)
        return resp.iteration_start(start.message_id, iteration_id)

    def _iteration_next(self, request: m.Request) -> bytes | Step:
        next_request = cast(m.IterationNextRequest, request)
        iteration = self._iterations.get(next_request.iteration_id)
        if iteration is None:
            return resp.invalid_iteration(request.message_id, op.ITERATION_NEXT)
        return self._iteration_step(next_request, iteration)

    def _iteration_step(self, request: m.Request, it: _Iteration) -> bytes | Step:
        if it.buffered_entries >= it.batch_size or it.next_segment >= len(it.segments):
            return self._iteration_reply(request, it)
        # Fetch segments lazily, a few at a time; widen the window while they come back sparse.
        chunk = it.segments[it.next_segment : it.next_segment + it.scan_width]
        it.next_segment += len(chunk)

        def finish(r: Results) -> bytes | Step:
            by_segment = {found.segment: found.entries for found in cast("list[SegmentEntries]", r[0])}
            fetched = 0
            for segment in chunk:
                entries = by_segment.get(segment, ())
                it.buffer.extend(entries)
                it.buffer.append(segment)
                fetched += len(entries)
            it.buffered_entries += fetched
            if fetched < it.batch_size:
                it.scan_width = min(it.scan_width * 2, SEGMENTS)
            return self._iteration_step(request, it)

        return [(it.cache, ScanSegments(chunk))], finish

    def _iteration_reply(self, request: m.Request, it: _Iteration) -> bytes:
        entries: list[Entry] = []
        finished: list[int] = []
        buffer = it.buffer
        while buffer and len(entries) < it.batch_size:
            item = buffer.popleft()
            if type(item) is int:
                finished.append(item)
            else:
                entries.append(cast(Entry, item))
        # Report a segment as finished as soon as its last entry has been sent.
        while buffer and type(buffer[0]) is int:
            finished.append(cast(int, buffer.popleft()))
        it.buffered_entries -= len(entries)
        return resp.iteration_next(request.message_id, request.version, finished, entries, it.with_metadata)

    def _iteration_end(self, request: m.Request) -> bytes:
        iteration_id = cast(m.IterationEndRequest, request).iteration_id
        if self._iterations.pop(iteration_id, None) is None:
            return resp.invalid_iteration(request.message_id, op.ITERATION_END)
        return resp.status_only(request.message_id, op.ITERATION_END, op.SUCCESS)

    # ------------------------------------------------------------ counters (hotrod_protocol.adoc 2.7)
    # Status rules (Infinispan's CounterRequestProcessor): 0x02 when the counter is not
    # defined; create and is-defined answer 0x00 / 0x01; a bound refusal is an error frame
    # (see _CounterOutOfBounds). The cache a counter request names plays no part.

    def _counter_create(self, request: m.Request) -> Step:
        create = cast(m.CounterCreateRequest, request)
        mid = create.message_id
        problem = create.config.problem() if create.name else "ISPN029503: The counter name is missing."
        if problem is not None:
            raise _CounterConfigurationError(problem)

        def finish(r: Results) -> bytes:
            status = op.SUCCESS if r[0] else op.NOT_EXECUTED
            return resp.status_only(mid, op.COUNTER_CREATE, status)

        return [("", CounterCreate(create.name, create.config))], finish

    def _counter_get_configuration(self, request: m.Request) -> Step:
        mid = request.message_id
        name = cast(m.CounterGetConfigurationRequest, request).name

        def finish(r: Results) -> bytes:
            config = cast("CounterConfig | None", r[0])
            if config is None:
                return resp.status_only(mid, op.COUNTER_GET_CONFIGURATION, op.KEY_DOES_NOT_EXIST)
            return resp.counter_configuration(mid, config)

        return [("", CounterGetConfig(name))], finish

    def _counter_is_defined(self, request: m.Request) -> Step:
        mid = request.message_id
        name = cast(m.CounterIsDefinedRequest, request).name

        def finish(r: Results) -> bytes:
            status = op.SUCCESS if r[0] else op.NOT_EXECUTED
            return resp.status_only(mid, op.COUNTER_IS_DEFINED, status)  # response opcode 0x51

        return [("", CounterIsDefined(name))], finish

    def _counter_value_op(self, request: m.Request) -> Step:
        """get, add-and-get, compare-and-swap, get-and-set: ``00`` + long value."""
        counter_op: CounterGet | CounterAddAndGet | CounterCompareAndSwap | CounterGetAndSet
        if type(request) is m.CounterGetRequest:
            counter_op = CounterGet(request.name)
        elif type(request) is m.CounterAddAndGetRequest:
            counter_op = CounterAddAndGet(request.name, request.delta)
        elif type(request) is m.CounterCompareAndSwapRequest:
            counter_op = CounterCompareAndSwap(request.name, request.expect, request.update)
        else:
            set_request = cast(m.CounterGetAndSetRequest, request)
            counter_op = CounterGetAndSet(set_request.name, set_request.new_value)
        return [("", counter_op)], self._counter_finisher(request, with_value=True)

    def _counter_status_op(self, request: m.Request) -> Step:
        """reset and remove: status only."""
        name = cast("m.CounterResetRequest | m.CounterRemoveRequest", request).name
        counter_op = CounterReset(name) if type(request) is m.CounterResetRequest else CounterRemove(name)
        return [("", counter_op)], self._counter_finisher(request, with_value=False)

    def _counter_finisher(self, request: m.Request, *, with_value: bool) -> Finisher:
        mid = request.message_id
        opcode = request.opcode

        def finish(r: Results) -> bytes:
            result = cast(CounterResult, r[0])
            if result.status is CounterStatus.UNDEFINED:
                return resp.status_only(mid, opcode, op.KEY_DOES_NOT_EXIST)
            refusal = _COUNTER_REFUSALS.get(result.status)
            if refusal is not None:
                return _error(mid, refusal)
            if with_value:
                return resp.counter_value(mid, opcode, result.value)
            return resp.status_only(mid, opcode, op.SUCCESS)

        return finish

    def _counter_names(self, request: m.Request) -> Step:
        mid = request.message_id
        return [("", CounterNames())], lambda r: resp.counter_names(mid, cast("list[str]", r[0]))

    # ------------------------------------------------------------ multimap (MultimapRequestProcessor)

    def _multimap_get(self, request: m.Request) -> Step:
        """A missing or empty bucket is ``02``; a hit is the values (with metadata for 0x69)."""
        mid = request.message_id
        with_metadata = type(request) is m.MultimapGetWithMetadataRequest
        key = cast("m.MultimapGetRequest | m.MultimapGetWithMetadataRequest", request).key

        def finish(r: Results) -> bytes:
            found = cast("MultimapEntry | None", r[0])
            if found is None:
                return resp.status_only(mid, request.opcode, op.KEY_DOES_NOT_EXIST)
            if with_metadata:
                return resp.multimap_entry(mid, found)
            return resp.multimap_values(mid, found.values)

        return [(request.cache, MultimapGet(key))], finish

    def _multimap_put(self, request: m.Request) -> Step:
        put = cast(m.MultimapPutRequest, request)
        mid = put.message_id
        cache_op = MultimapPut(put.key, put.value, put.duplicates)
        return [(put.cache, cache_op)], lambda r: resp.status_only(mid, op.MULTIMAP_PUT, op.SUCCESS)

    def _multimap_boolean(self, request: m.Request) -> Step:
        """remove-key, remove-entry and the three contains: ``00`` + one byte answer."""
        cache_op: CacheOp
        if type(request) is m.MultimapRemoveKeyRequest:
            cache_op = MultimapRemoveKey(request.key)
        elif type(request) is m.MultimapRemoveEntryRequest:
            cache_op = MultimapRemoveEntry(request.key, request.value, request.duplicates)
        elif type(request) is m.MultimapContainsKeyRequest:
            cache_op = MultimapContainsKey(request.key)
        elif type(request) is m.MultimapContainsEntryRequest:
            cache_op = MultimapContainsEntry(request.key, request.value)
        else:
            cache_op = MultimapContainsValue(cast(m.MultimapContainsValueRequest, request).value)
        mid = request.message_id
        opcode = request.opcode
        return [(request.cache, cache_op)], lambda r: resp.boolean(mid, opcode, bool(r[0]))

    def _multimap_size(self, request: m.Request) -> Step:
        mid = request.message_id
        return [(request.cache, MultimapSize())], lambda r: resp.multimap_size(mid, cast(int, r[0]))
