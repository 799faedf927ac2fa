"""The REST v2 route table and dispatcher (written once for HTTP/1.1 and HTTP/2).

Lookup follows Infinispan's ``RestDispatcherImpl``: match the path, then the ``action``
query parameter, then the method. No path → 404; ``?action=`` empty → 400 "Invalid
action"; an action the path does not have → 400; a method the path/action does not
have → 405 with ``Allow``. Unmatched requests are answered without authentication, as
Infinispan does (§3.4): only a matched, non-anonymous route runs the HTTP-auth step.

Path segments are split on the raw ``/`` *before* percent-decoding, so a key may contain
``%2F``; each segment is then decoded to bytes (keys keep their exact bytes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote_to_bytes

from gridactor.cache.api import CacheResult
from gridactor.errors import CacheNotFoundError, GridError
from gridactor.protocols.rest import resources as r
from gridactor.protocols.rest.events import Headers, Request, Response
from gridactor.security import access
from gridactor.security.access import Access, Scope
from gridactor.security.identity import Identity
from gridactor.security.permissions import implies
from gridactor.server.context import EndpointContext

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Invocation:
    methods: frozenset[str]
    path: tuple[str, ...]  # literal segments, or "{cache}" / "{key}"
    handler: r.Handler
    action: str | None
    rule: Access  # from security/access.py: who may call it
    # Set for the entry routes: the request can join a batch of cache ops (see Dispatcher.plan).
    planner: r.Planner | None = None

    @property
    def anonymous(self) -> bool:
        return self.rule.scope is Scope.ANONYMOUS


def _inv(
    methods: str,
    path: str,
    handler: r.Handler,
    *,
    action: str | None = None,
    planner: r.Planner | None = None,
) -> Invocation:
    rule = access.REST.get((methods, path, action))
    if rule is None:
        # Every route must have its row in the access table: none may slip in unchecked.
        raise AssertionError(f"no access rule for REST route {methods} {path} action={action}")
    return Invocation(frozenset(methods.split()), tuple(path.split("/")), handler, action, rule, planner)


INVOCATIONS: tuple[Invocation, ...] = (
    _inv("GET", "caches", r.list_caches),
    _inv("GET HEAD", "caches/{cache}", r.cache_details),
    _inv("POST", "caches/{cache}", r.create_cache),
    _inv("PUT", "caches/{cache}", r.create_or_update_cache),
    _inv("DELETE", "caches/{cache}", r.delete_cache),
    _inv("GET", "caches/{cache}", r.cache_keys, action="keys"),
    _inv("GET", "caches/{cache}", r.cache_entries, action="entries"),
    _inv("GET", "caches/{cache}", r.cache_size, action="size"),
    _inv("POST", "caches/{cache}", r.cache_clear, action="clear"),
    _inv("GET", "caches/{cache}", r.cache_stats, action="stats"),
    _inv("GET", "caches/{cache}", r.cache_config, action="config"),
    _inv("GET HEAD", "caches/{cache}/{key}", r.get_entry, planner=r.plan_get_entry),
    _inv("PUT", "caches/{cache}/{key}", r.put_entry, planner=r.plan_put_entry),
    _inv("POST", "caches/{cache}/{key}", r.post_entry, planner=r.plan_post_entry),
    _inv("DELETE", "caches/{cache}/{key}", r.delete_entry, planner=r.plan_delete_entry),
    _inv("GET", "server", r.server_info),
    _inv("GET HEAD", "cache-managers/default/health/status", r.health_status),
    _inv("GET HEAD", "container/health/status", r.health_status),
    _inv("GET HEAD", "cache-managers/default/health", r.health),
    _inv("GET HEAD", "container/health", r.health),
    _inv("GET", "security/user/acl", r.user_acl),
    _inv("POST", "security/cache", r.flush_acl_cache, action="flush"),
)


@dataclass(frozen=True, slots=True)
class Match:
    invocation: Invocation
    params: r.PathParams


class Router:
    """Resolves a request to an :class:`Invocation` or an error response."""

    def __init__(self, invocations: Sequence[Invocation] = INVOCATIONS) -> None:
        self._by_length: dict[int, list[Invocation]] = {}
        for inv in invocations:
            self._by_length.setdefault(len(inv.path), []).append(inv)
        self._prefixes: dict[str, bytes] = {}
        # The hot path: "caches/{cache}/{key}" without a query, one invocation per method.
        self._entry_by_method: dict[str, Invocation] = {}
        for inv in invocations:
            if inv.path == ("caches", "{cache}", "{key}") and inv.action is None:
                for method in inv.methods:
                    self._entry_by_method.setdefault(method, inv)

    def resolve(self, request: Request, context_path: str) -> Match | Response:
        prefix = self._prefixes.get(context_path)
        if prefix is None:
            prefix = self._prefixes[context_path] = f"/{context_path}/v2/".encode()
        target = request.target
        if target.startswith(prefix) and b"?" not in target:
            # Same answer as the general path below, without building the candidate lists.
            parts = target[len(prefix) :].split(b"/")
            if len(parts) == 3 and parts[0] == b"caches" and parts[1] and parts[2]:
                inv = self._entry_by_method.get(request.method)
                if inv is not None:
                    params = _entry_params(parts[1], parts[2])
                    if params is not None:
                        return Match(inv, params)
        raw = request.raw_path
        if not raw.startswith(prefix):
            return Response.text(404, "Not found")
        raw_segments = raw[len(prefix) :].split(b"/")
        if len(raw_segments) > 1 and raw_segments[-1] == b"":
            raw_segments.pop()  # tolerate one trailing slash
        segments = [unquote_to_bytes(seg) for seg in raw_segments]
        candidates: list[tuple[Invocation, r.PathParams]] = []
        for inv in self._by_length.get(len(segments), ()):
            params = _match(inv.path, segments)
            if params is not None:
                candidates.append((inv, params))
        if not candidates:
            return Response.text(404, "Not found")
        action = request.query_param("action")
        if action is not None:
            if action == "":
                return Response.text(400, "Invalid action")
            with_action = [c for c in candidates if c[0].action == action]
            if not with_action:
                return Response.text(400, f"Invalid action '{action}'")
            candidates = with_action
        else:
            candidates = [c for c in candidates if c[0].action is None]
            if not candidates:
                return Response.text(400, "Invalid action")
        for inv, params in candidates:
            if request.method in inv.methods:
                return Match(inv, params)
        allowed = sorted({m for inv, _ in candidates for m in inv.methods})
        return Response.text(
            405, f"Method {request.method} not allowed", [(b"allow", ", ".join(allowed).encode())]
        )


def _entry_params(raw_cache: bytes, raw_key: bytes) -> r.PathParams | None:
    cache_bytes = unquote_to_bytes(raw_cache) if b"%" in raw_cache else raw_cache
    try:
        cache = cache_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return None
    key = unquote_to_bytes(raw_key) if b"%" in raw_key else raw_key
    return r.PathParams(cache=cache, key=key)


def _match(pattern: tuple[str, ...], segments: list[bytes]) -> r.PathParams | None:
    cache = ""
    key = b""
    for want, got in zip(pattern, segments, strict=True):
        if want == "{cache}":
            try:
                cache = got.decode("utf-8")
            except UnicodeDecodeError:
                return None
        elif want == "{key}":
            key = got
        elif want.encode() != got:
            return None
    return r.PathParams(cache=cache, key=key)


class HttpAuthenticator(Protocol):
    """The seam for HTTP authentication (BASIC, DIGEST, BEARER, SPNEGO, CLIENT_CERT).

    Called once per request to a non-anonymous route when the endpoint has a security
    realm. Returns either the response to send instead (a 401 challenge, a 400 for a
    malformed ``Authorization``, a 403), or, to let the request through, the headers to add
    to its response (``Authentication-Info`` for Digest; usually empty). One instance lives per
    connection, so a mechanism may cache the ``(Authorization header, subject)`` pair as
    Infinispan does (§3.4).
    """

    async def authenticate(self, request: Request) -> Response | Headers: ...


class NoMechanismAuthenticator:
    """Used while no HTTP mechanism is plugged in: every protected request gets a 401."""

    def __init__(self, realm: str) -> None:
        self._challenge = f'Basic realm="{realm}"'.encode()

    async def authenticate(self, request: Request) -> Response | Headers:
        return Response.text(401, "Unauthorized", [(b"www-authenticate", self._challenge)])


def error_response(exc: GridError) -> Response:
    message = exc.message
    if isinstance(exc, CacheNotFoundError) and exc.cache:
        message = f"ISPN012010: {message}"
    return Response.text(exc.http_status, message)


class Dispatcher:
    """Per-connection front of the router: resolve, authenticate, run, map errors."""

    def __init__(
        self,
        ctx: EndpointContext,
        *,
        router: Router | None = None,
        authenticator: HttpAuthenticator | None = None,
    ) -> None:
        self._ctx = ctx
        self._router = router or _DEFAULT_ROUTER
        if authenticator is None and ctx.security_realm is not None:
            authenticator = NoMechanismAuthenticator(ctx.security_realm)
        self._auth = authenticator

    async def handle(self, request: Request) -> Response:
        """Never raises except for cancellation: bad input becomes a 4xx, bugs a 500."""
        found = self.resolve(request)
        if isinstance(found, Response):
            return found
        return await self.run(request, found)

    def resolve(self, request: Request) -> Match | Response:
        """The route, or the response that answers an unmatched request (no auth for those)."""
        try:
            return self._router.resolve(request, self._ctx.rest_context_path)
        except GridError as exc:
            return error_response(exc)
        except Exception:
            return self._internal_error(request)

    def needs_authentication(self, found: Match) -> bool:
        return self._auth is not None and not found.invocation.anonymous

    async def authenticate(self, request: Request) -> Response | Headers:
        """The authentication step for a route that needs it: a response to send instead, or
        the headers to add to the route's response."""
        assert self._auth is not None
        try:
            return await self._auth.authenticate(request)
        except GridError as exc:
            return error_response(exc)
        except Exception:
            return self._internal_error(request)

    async def run(self, request: Request, found: Match, extra: Headers | None = None) -> Response:
        """Authenticate (unless done already: ``extra`` given), authorize, run the handler."""
        try:
            if extra is None:
                extra = []
                if self.needs_authentication(found):
                    outcome = await self.authenticate(request)
                    if isinstance(outcome, Response):
                        return outcome
                    extra = outcome
            denied = self._authorize(request, found)
            if denied is not None:
                return denied
            response = await found.invocation.handler(request, self._ctx, found.params)
            response.headers.extend(extra)
            return response
        except GridError as exc:
            return error_response(exc)
        except Exception:
            return self._internal_error(request)

    def plan(self, request: Request, found: Match) -> r.Planned | Response | None:
        """For a route with a planner, once authenticated: authorize, then plan its cache op.

        None: the request needs its full handler (``run`` with the authentication headers).
        """
        planner = found.invocation.planner
        assert planner is not None
        try:
            denied = self._authorize(request, found)
            if denied is not None:
                return denied
            return planner(request, self._ctx, found.params)
        except GridError as exc:
            return error_response(exc)
        except Exception:
            return self._internal_error(request)

    def finish(
        self, request: Request, planned: r.Planned, result: CacheResult | GridError, extra: Headers
    ) -> Response:
        """The response to a planned request from its op's result."""
        if isinstance(result, GridError):
            return error_response(result)
        try:
            response = planned[2](result)
        except GridError as exc:
            return error_response(exc)
        except Exception:
            return self._internal_error(request)
        if extra:
            response.headers.extend(extra)
        return response

    def _internal_error(self, request: Request) -> Response:
        # The traceback goes to the log; the client learns nothing about internals.
        log.exception("REST %s %r failed", request.method, request.target[:200])
        return Response.text(500, "internal error")

    def _authorize(self, request: Request, found: Match) -> Response | None:
        """403 with Infinispan's reason when the caller lacks the route's permission."""
        authorizer = self._ctx.authorizer
        rule = found.invocation.rule
        if authorizer is None or not authorizer.enabled or rule.scope not in (Scope.CACHE, Scope.CONTAINER):
            return None
        identity = request.identity
        if not isinstance(identity, Identity):
            return Response.text(403, "Forbidden: no authenticated subject")
        cache: str | None = None
        if rule.scope is Scope.CACHE:
            cache = found.params.cache or self._ctx.caches.default_cache() or ""
        mask = authorizer.mask(identity, cache)
        if implies(mask, rule.permission):
            return None
        return Response.text(403, authorizer.denial(identity, rule.permission))


_DEFAULT_ROUTER = Router()
