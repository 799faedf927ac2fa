"""The LDAP realm (``<ldap-realm>``, spec 4.1.2): users, passwords and groups from a directory.

How a login is served
---------------------
1. The login name goes through the ``<name-rewriter>`` (if any) and must be at most
   :data:`~gridactor.security.rewriters.MAX_NAME_LENGTH` characters.
2. The user entry is searched with the service account (``principal``/``credential``, or
   anonymously) under the identity mapping's ``search-dn`` with ``filter-name``
   (default ``(rdn_identifier={0})``). The name is escaped (RFC 4515) before it goes into the
   filter, so ``*`` or ``)(`` in a name match only themselves. No entry, or more than one,
   means no such user. DNs are never built from a login name: the user DN is the one the
   directory returned, so RFC 4514 escaping never has to be right for a bind to be safe.
3. Groups come from the ``<attribute-mapping>``: ``<attribute filter=…>`` searches (``{0}`` =
   the name, ``{1}`` = the user DN, both escaped), ``<attribute-reference reference=…>``
   (DNs in the user entry, e.g. ``memberOf``) and plain attributes of the user entry, with
   ``role-recursion`` levels of nested groups. Values mapped ``to="Roles"`` (Elytron's
   role attribute) become :attr:`Identity.groups`.
4. Passwords: with ``direct-verification`` a password guess (PLAIN, HTTP Basic) is checked
   by binding as the user; with ``<user-password-mapper>`` the entry's password attribute
   is read: a clear value serves every mechanism (SCRAM and DIGEST derive from it), a
   ``{SSHA}``-style hash only password guesses. An empty password never reaches a bind
   (RFC 4513 5.1.2: a DN with an empty password is an *unauthenticated* bind, which many
   directories answer with success).

Blocking and outages
--------------------
ldap3 is blocking; the realm actor calls these methods in worker threads. Every directory
operation holds one of ``max_operations`` slots (the per-realm limit), connects with
``connection-timeout`` per URL (several URLs, space separated: tried in order, the last
one that worked first) and waits ``read-timeout`` for each answer. When no URL answers,
the call raises :class:`DirectoryUnavailableError` and one log line says the directory is
down; the next operation tries again, so the realm recovers by itself, and says so. Pooled
connections (``connection-pooling="true"``) that died with the directory are retried once
with a fresh connection.

The realm cache (``cache-max-size`` / ``cache-lifespan`` on ``<security-realm>``, as in
Infinispan) keeps resolved users (DN, groups, password attribute) so a burst of logins
costs one search per user; bind results are never cached, so a changed or locked password
applies at once. Unknown names are not cached.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import math
import re
import secrets
import ssl
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gridactor.config.model import (
    LdapAttributeConfig,
    LdapIdentityMappingConfig,
    LdapRealmConfig,
    SecurityRealmConfig,
)
from gridactor.errors import AuthenticationError, ConfigError
from gridactor.security.credentials import ClearPassword, Credential
from gridactor.security.identity import Identity
from gridactor.security.realms.base import UnsupportedRealmRequest
from gridactor.security.rewriters import MAX_NAME_LENGTH, NameRewriter, build_name_rewriter, split_dn
from gridactor.security.sasl.base import RealmRequest

with warnings.catch_warnings():
    # ldap3 2.9 imports names that pyasn1 0.6 deprecates: nothing to act on here, and the
    # warning must not fail an importer that turns warnings into errors (the test suite).
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3  # type: ignore[import-untyped]
    from ldap3.core.exceptions import (  # type: ignore[import-untyped]
        LDAPCommunicationError,
        LDAPResponseTimeoutError,
    )

log = logging.getLogger("gridactor.realm.ldap")

ROLES_ATTRIBUTE = "Roles"  # Elytron's default role decoder reads this identity attribute
DEFAULT_MAX_OPERATIONS = 4
MAX_GROUPS = 1000  # per user, across every mapping: a directory cannot make a login unbounded
_IDLE_LIFETIME_S = 60.0  # pooled connections older than this are closed, not reused

# Result codes (RFC 4511 4.1.9) the realm tells apart.
_SUCCESS = 0
_TIME_LIMIT = 3
_SIZE_LIMIT = 4
_REFERRAL = 10
_NO_SUCH_OBJECT = 32
_INVALID_CREDENTIALS = 49
_PAGED_RESULTS = "1.2.840.113556.1.4.319"

_PASSWORD_GUESS = frozenset({"PLAIN", "BASIC"})
_NEEDS_PASSWORD = ("SCRAM-", "DIGEST", "CRAM-MD5")


class DirectoryUnavailableError(AuthenticationError):
    """No configured directory URL answered in time (the message names no user)."""


class DirectoryError(AuthenticationError):
    """The directory answered, but not usably (referral with referral-mode="throw"…)."""


# ---------------------------------------------------------------- filters (RFC 4515)

_FILTER_SPECIALS = {"\\": "\\5c", "*": "\\2a", "(": "\\28", ")": "\\29", "\x00": "\\00"}


def escape_filter_value(value: str) -> str:
    """An assertion value for a filter string (RFC 4515 section 3): ``*()\\`` and NUL escaped."""
    return "".join(_FILTER_SPECIALS.get(char, char) for char in value)


_PLACEHOLDER = re.compile(r"\{(\d+)\}")


def format_filter(template: str, *values: str) -> str:
    """``{0}``, ``{1}``… replaced by escaped ``values`` (an unknown index stays as written)."""

    def substitute(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return escape_filter_value(values[index]) if index < len(values) else match.group(0)

    return _PLACEHOLDER.sub(substitute, template)


def user_filter(mapping: LdapIdentityMappingConfig, rdn_identifier: str) -> str:
    """The identity search filter template: Elytron's ``filter-name`` with the literal
    ``rdn_identifier`` standing for the configured attribute."""
    template = mapping.filter_name or "(rdn_identifier={0})"
    return template.replace("rdn_identifier", rdn_identifier)


# ---------------------------------------------------------------- userPassword values


@dataclass(frozen=True, slots=True, repr=False)
class HashedUserPassword:
    """An RFC 2307-style ``{SCHEME}base64`` userPassword: checks password guesses only."""

    scheme: str
    digest: bytes
    salt: bytes

    def __repr__(self) -> str:
        return f"HashedUserPassword({self.scheme}, ***)"

    def verify(self, password: str) -> bool:
        hash_name = _HASH_SCHEMES[self.scheme][0]
        guess = hashlib.new(hash_name, password.encode("utf-8") + self.salt).digest()
        return hmac.compare_digest(guess, self.digest)


# scheme -> (hashlib name, salted)
_HASH_SCHEMES: dict[str, tuple[str, bool]] = {
    "SHA": ("sha1", False),
    "SSHA": ("sha1", True),
    "SHA256": ("sha256", False),
    "SSHA256": ("sha256", True),
    "SHA384": ("sha384", False),
    "SSHA384": ("sha384", True),
    "SHA512": ("sha512", False),
    "SSHA512": ("sha512", True),
    "MD5": ("md5", False),
    "SMD5": ("md5", True),
}

StoredPassword = ClearPassword | HashedUserPassword


def parse_user_password(raw: bytes) -> StoredPassword | None:
    """One ``userPassword`` value: clear text, ``{CLEARTEXT}…``, or a known ``{SCHEME}`` hash.

    None for what cannot be used (``{CRYPT}``, ``{ARGON2}``, bad base64, not UTF-8).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    match = re.fullmatch(r"\{([A-Za-z0-9.-]+)\}(.*)", text, re.DOTALL)
    if match is None:
        return ClearPassword(text)
    scheme, rest = match.group(1).upper(), match.group(2)
    if scheme == "CLEARTEXT":
        return ClearPassword(rest)
    known = _HASH_SCHEMES.get(scheme)
    if known is None:
        return None
    try:
        decoded = base64.b64decode(rest, validate=True)
    except ValueError:
        return None
    size = hashlib.new(known[0]).digest_size
    if len(decoded) < size or (not known[1] and len(decoded) != size):
        return None
    return HashedUserPassword(scheme, decoded[:size], decoded[size:])


def check_password(stored: Sequence[StoredPassword], password: str) -> bool:
    """Does ``password`` match any stored value? Every comparison is constant-time."""
    matched = False
    for value in stored:
        if isinstance(value, ClearPassword):
            ok = hmac.compare_digest(value.password.encode("utf-8"), password.encode("utf-8"))
        else:
            ok = value.verify(password)
        matched = matched or ok
    return matched


# ---------------------------------------------------------------- connections


@dataclass(frozen=True, slots=True)
class DirectoryUrl:
    url: str
    host: str
    port: int
    use_ssl: bool


def parse_urls(text: str) -> tuple[DirectoryUrl, ...]:
    """``url`` holds one URL or several separated by spaces (JNDI's failover list)."""
    urls: list[DirectoryUrl] = []
    for url in text.split():
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("ldap", "ldaps"):
            raise ValueError(f"'{url}' is not an ldap:// or ldaps:// URL")
        if parts.path not in ("", "/") or parts.query or not parts.hostname:
            raise ValueError(f"'{url}' must be just ldap[s]://host[:port]")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"'{url}' has an invalid port") from None
        default_port = 636 if scheme == "ldaps" else 389
        urls.append(DirectoryUrl(url, parts.hostname, port or default_port, scheme == "ldaps"))
    if not urls:
        raise ValueError("no URL given")
    return tuple(urls)


@dataclass(slots=True)
class _Idle:
    connection: ldap3.Connection
    since: float


class Directory:
    """Connections to one directory (several URLs for failover), bounded and timed out.

    Thread-safe: every public method may run in any worker thread. A connection is used
    by one thread at a time (checked out of the idle list or new).
    """

    def __init__(
        self,
        urls: Sequence[DirectoryUrl],
        *,
        realm: str,
        principal: str | None,
        credential: str | None,
        connect_timeout_s: float,
        read_timeout_s: float,
        pooling: bool,
        referral_mode: str,
        max_operations: int = DEFAULT_MAX_OPERATIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.urls = tuple(urls)
        self.realm = realm
        self._principal = principal
        self._credential = credential
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.pooling = pooling
        self.referral_mode = referral_mode
        self.max_operations = max_operations
        self._clock = clock
        self._slots = threading.BoundedSemaphore(max_operations)
        self._lock = threading.Lock()
        self._idle: list[_Idle] = []
        self._preferred = 0  # index of the URL that answered last
        self._down_since: float | None = None
        self._referral_hosts = [(u.host, True) for u in self.urls] + [("*", False)]

    def _server(self, url: DirectoryUrl) -> ldap3.Server:
        # A fresh Server per connection: ldap3 marks an address that failed as unavailable
        # for a while, which would delay recovery after the directory comes back.
        return ldap3.Server(
            url.host,
            port=url.port,
            use_ssl=url.use_ssl,
            get_info=ldap3.NONE,  # no schema round trip per connection
            connect_timeout=self.connect_timeout_s,
            # Referrals to our own hosts may carry the bind; elsewhere only anonymously.
            allowed_referral_hosts=self._referral_hosts,
            tls=_tls() if url.use_ssl else None,
        )

    def __repr__(self) -> str:
        return f"Directory({' '.join(u.url for u in self.urls)}, principal={self._principal!r})"

    # -- state

    @property
    def available(self) -> bool:
        return self._down_since is None

    def _went_down(self, reason: str) -> None:
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = self._clock()
        if first:
            log.error(
                "LDAP realm '%s': directory unreachable (%s): logins through this realm fail until it "
                "answers again (tried %s, connection-timeout %.1fs)",
                self.realm,
                reason,
                ", ".join(u.url for u in self.urls),
                self.connect_timeout_s,
            )

    def _came_back(self, url: DirectoryUrl) -> None:
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.warning(
                "LDAP realm '%s': directory %s answers again after %.1fs",
                self.realm,
                url.url,
                self._clock() - since,
            )

    # -- slots and connections

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        # Waiting longer than a connect attempt would only pile up threads behind a slow
        # directory; the realm actor's own deadline is the outer bound.
        if not self._slots.acquire(timeout=self.connect_timeout_s + self.read_timeout_s):
            raise DirectoryUnavailableError(
                f"LDAP realm '{self.realm}': all {self.max_operations} directory slots stayed busy"
            )
        try:
            yield
        finally:
            self._slots.release()

    def _open(self, user: str | None, password: str | None) -> tuple[ldap3.Connection, bool]:
        """A bound connection, trying each URL from the preferred one. Returns (connection,
        bind succeeded); raises DirectoryUnavailableError when no URL answers."""
        count = len(self.urls)
        start = self._preferred
        failure = "no URL configured"
        for step in range(count):
            index = (start + step) % count
            connection = ldap3.Connection(
                self._server(self.urls[index]),
                user=user,
                password=password,
                authentication=ldap3.SIMPLE if user else ldap3.ANONYMOUS,
                client_strategy=ldap3.SYNC,
                auto_referrals=self.referral_mode == "follow",
                # ldap3 packs it into SO_RCVTIMEO as whole seconds.
                receive_timeout=max(1, math.ceil(self.read_timeout_s)),
                raise_exceptions=False,
                auto_escape=False,  # filters are escaped here (escape_filter_value), once
                check_names=False,
                return_empty_attributes=False,
                read_only=True,
            )
            try:
                connection.open()
                bound = bool(connection.bind())
            except (LDAPCommunicationError, LDAPResponseTimeoutError, OSError) as exc:
                failure = f"{self.urls[index].url}: {_describe(exc)}"
                _close(connection)
                continue
            self._preferred = index
            self._came_back(self.urls[index])
            return connection, bound
        self._went_down(failure)
        raise DirectoryUnavailableError(f"LDAP realm '{self.realm}': directory unreachable")

    def _checkout(self) -> tuple[ldap3.Connection, bool]:
        """(a connection bound as the service account, reused from the pool)."""
        if self.pooling:
            now = self._clock()
            with self._lock:
                while self._idle:
                    idle = self._idle.pop()
                    if now - idle.since < _IDLE_LIFETIME_S and not idle.connection.closed:
                        return idle.connection, True
                    _close(idle.connection)
        connection, bound = self._open(self._principal, self._credential)
        if not bound:
            result = connection.result or {}
            _close(connection)
            # A wrong service password is a configuration problem, not an outage: say so.
            raise DirectoryError(
                f"LDAP realm '{self.realm}': the directory refused the bind of principal "
                f"'{self._principal or '(anonymous)'}': {result.get('description', 'failed')}"
            )
        return connection, False

    def _checkin(self, connection: ldap3.Connection) -> None:
        if not self.pooling:
            _close(connection)
            return
        with self._lock:
            if len(self._idle) < self.max_operations:
                self._idle.append(_Idle(connection, self._clock()))
                return
        _close(connection)

    def run(self, operation: Callable[[ldap3.Connection], Any]) -> Any:
        """Run ``operation`` on a service-account connection (one retry when a pooled
        connection turns out dead, e.g. after the directory restarted)."""
        with self._slot():
            for attempt in range(2):
                connection, reused = self._checkout()
                try:
                    result = operation(connection)
                except (LDAPCommunicationError, LDAPResponseTimeoutError, OSError) as exc:
                    _close(connection)
                    if reused and attempt == 0:
                        continue
                    self._went_down(_describe(exc))
                    raise DirectoryUnavailableError(
                        f"LDAP realm '{self.realm}': the directory stopped answering"
                    ) from None
                except BaseException:
                    _close(connection)
                    raise
                self._checkin(connection)
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def bind_as(self, dn: str, password: str) -> bool:
        """Direct verification: can ``dn`` bind with ``password``? Never with an empty one."""
        if not password or not dn:
            return False  # RFC 4513 5.1.2: that would be an unauthenticated (anonymous) bind
        with self._slot():
            connection, bound = self._open(dn, password)
            result = connection.result or {}
            _close(connection)
        if not bound and result.get("result") not in (_INVALID_CREDENTIALS, None):
            log.info(
                "LDAP realm '%s': bind refused: %s (%s)",
                self.realm,
                result.get("description"),
                result.get("result"),
            )
        return bound

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for item in idle:
            _close(item.connection)


def _tls() -> ldap3.Tls:
    # Certificates and host names are always checked (never CERT_NONE), against the system
    # trust store (SSL_CERT_FILE / SSL_CERT_DIR apply).
    return ldap3.Tls(validate=ssl.CERT_REQUIRED)


def _close(connection: ldap3.Connection) -> None:
    with contextlib.suppress(Exception):
        connection.unbind()


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"


# ---------------------------------------------------------------- searching


@dataclass(frozen=True, slots=True)
class Entry:
    dn: str
    attributes: dict[str, tuple[bytes, ...]]  # lower-cased attribute names

    def values(self, name: str) -> tuple[bytes, ...]:
        return self.attributes.get(name.lower(), ())

    def texts(self, name: str) -> list[str]:
        out = []
        for raw in self.values(name):
            with contextlib.suppress(UnicodeDecodeError):
                out.append(raw.decode("utf-8"))
        return out


class Searcher:
    """Searches on one connection, with the realm's referral mode, paging and limits."""

    def __init__(
        self, connection: ldap3.Connection, *, referral_mode: str, page_size: int, realm: str
    ) -> None:
        self.connection = connection
        self.referral_mode = referral_mode
        self.page_size = page_size
        self.realm = realm

    def search(
        self,
        base: str,
        search_filter: str,
        *,
        subtree: bool,
        attributes: Sequence[str],
        size_limit: int = 0,
        time_limit_s: int = 0,
        paged: bool = False,
        limit: int = MAX_GROUPS,
    ) -> list[Entry]:
        connection = self.connection
        scope = ldap3.SUBTREE if subtree else ldap3.LEVEL
        entries: list[Entry] = []
        cookie: bytes | None = None
        while True:
            connection.search(
                base,
                search_filter,
                search_scope=scope,
                attributes=list(attributes) or ["1.1"],
                size_limit=size_limit,
                time_limit=time_limit_s,
                paged_size=self.page_size if paged else None,
                paged_cookie=cookie,
                dereference_aliases=ldap3.DEREF_NEVER,
            )
            result = connection.result or {}
            code = result.get("result", _SUCCESS)
            for item in connection.response or ():
                if item.get("type") == "searchResRef":
                    self._referral(base)
                    continue
                if item.get("type") != "searchResEntry":
                    continue
                raw = item.get("raw_attributes") or {}
                entries.append(Entry(str(item["dn"]), {k.lower(): tuple(v) for k, v in raw.items()}))
                if len(entries) > limit:
                    log.warning(
                        "LDAP realm '%s': search under '%s' returned over %d entries", self.realm, base, limit
                    )
                    return entries[:limit]
            if code == _REFERRAL:
                self._referral(base)
                return entries
            if code == _NO_SUCH_OBJECT:
                return entries
            if code == _SIZE_LIMIT:
                return entries  # the caller asked for a bound (identity search: size_limit 2)
            if code != _SUCCESS:
                what = f"{result.get('description')} ({code})"
                raise DirectoryError(f"LDAP realm '{self.realm}': search under '{base}' failed: {what}")
            if not paged:
                return entries
            control = (result.get("controls") or {}).get(_PAGED_RESULTS) or {}
            cookie = (control.get("value") or {}).get("cookie") or None
            if not cookie:
                return entries

    def read(self, dn: str, attributes: Sequence[str]) -> Entry | None:
        """One entry by DN (base-scope search); None if absent."""
        self.connection.search(
            dn,
            "(objectClass=*)",
            search_scope=ldap3.BASE,
            attributes=list(attributes) or ["1.1"],
            dereference_aliases=ldap3.DEREF_NEVER,
        )
        code = (self.connection.result or {}).get("result", _SUCCESS)
        for item in self.connection.response or ():
            if item.get("type") == "searchResEntry":
                raw = item.get("raw_attributes") or {}
                return Entry(str(item["dn"]), {k.lower(): tuple(v) for k, v in raw.items()})
        if code == _REFERRAL:
            self._referral(dn)
        return None

    def _referral(self, base: str) -> None:
        if self.referral_mode == "throw":
            raise DirectoryError(
                f"LDAP realm '{self.realm}': a referral under '{base}' (referral-mode=\"throw\")"
            )
        # "ignore": skip it. "follow": ldap3 already chased what it could.


# ---------------------------------------------------------------- the realm


@dataclass(frozen=True, slots=True)
class ResolvedUser:
    """What one lookup learned about a user (cached by the realm cache)."""

    name: str  # after rewriting
    dn: str
    groups: frozenset[str]
    passwords: tuple[StoredPassword, ...]

    def __repr__(self) -> str:
        return f"ResolvedUser({self.name!r}, {self.dn!r}, groups={sorted(self.groups)})"


class UserCache:
    """A bounded LRU map with a lifespan (``cache-max-size``, ``cache-lifespan``)."""

    def __init__(self, max_entries: int, lifespan_s: float | None, clock: Callable[[], float]) -> None:
        self.max_entries = max_entries
        self.lifespan_s = lifespan_s  # None: entries never expire
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[ResolvedUser, float]] = OrderedDict()

    def get(self, name: str) -> ResolvedUser | None:
        if self.max_entries <= 0:
            return None
        with self._lock:
            found = self._entries.get(name)
            if found is None:
                return None
            if found[1] <= self._clock():
                del self._entries[name]
                return None
            self._entries.move_to_end(name)
            return found[0]

    def put(self, user: ResolvedUser) -> None:
        if self.max_entries <= 0:
            return
        expires = float("inf") if self.lifespan_s is None else self._clock() + self.lifespan_s
        with self._lock:
            self._entries[user.name] = (user, expires)
            self._entries.move_to_end(user.name)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def purge(self) -> None:
        now = self._clock()
        with self._lock:
            for name in [n for n, (_, expires) in self._entries.items() if expires <= now]:
                del self._entries[name]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _rdn_value(dn: str, attribute: str) -> str | None:
    """The value of ``attribute`` in the first RDN of ``dn`` holding it (``extract-rdn``)."""
    try:
        rdns = split_dn(dn)
    except ValueError:
        return None
    for rdn in rdns:
        for name, value in rdn:
            if name.lower() == attribute.lower():
                return value
    return None


class LdapRealm:
    """The ``Realm`` protocol (:mod:`gridactor.security.realms.base`) over a directory."""

    def __init__(
        self,
        config: LdapRealmConfig,
        *,
        security_realm: str,
        directory: Directory,
        rewriter: NameRewriter | None = None,
        cache_max_entries: int = 256,
        cache_lifespan_s: float | None = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(config.identity_mappings) != 1:
            raise ValueError("an LDAP realm needs exactly one <identity-mapping>")
        self.config = config
        self.security_realm = security_realm
        self.directory = directory
        self.rewriter = rewriter
        self.mapping = config.identity_mappings[0]
        rdn = self.mapping.rdn_identifier or config.rdn_identifier
        search_dn = self.mapping.search_dn or config.search_dn
        if not search_dn:
            raise ValueError("the identity mapping needs a search-dn")
        if rdn is None and self.mapping.filter_name is None:
            raise ValueError("the identity mapping needs an rdn-identifier or a filter-name")
        self.search_dn = search_dn
        self.filter_template = user_filter(self.mapping, rdn or "uid")
        mapper = self.mapping.user_password_mapper
        self.password_attribute = mapper.from_ if mapper is not None and mapper.verifiable else None
        self.cache = UserCache(cache_max_entries, cache_lifespan_s, clock)
        self._user_attributes = self._attributes_to_read()
        self._hash_only_warned = False

    def _attributes_to_read(self) -> tuple[str, ...]:
        wanted: dict[str, None] = {}
        if self.password_attribute:
            wanted[self.password_attribute] = None
        for attribute in self.mapping.attributes:
            if attribute.kind == "reference" and attribute.reference:
                wanted[attribute.reference] = None
            elif attribute.filter is None and attribute.from_:
                wanted[attribute.from_] = None
        return tuple(wanted)

    # -- Realm protocol

    @property
    def name(self) -> str:
        return self.security_realm

    def refresh(self) -> None:
        # Called by the actor before requests: cheap, and never contacts the directory
        # (a directory that is down must not keep the server from starting).
        self.cache.purge()

    def credential_kinds(self) -> frozenset[type]:
        return frozenset({ClearPassword}) if self.password_attribute else frozenset()

    def supports_mechanism(self, mechanism: str) -> bool:
        """Can this realm serve ``mechanism`` (SASL or HTTP name) for its users at all?"""
        name = mechanism.upper().removesuffix("-PLUS")
        if name in _PASSWORD_GUESS:
            return self.config.direct_verification or self.password_attribute is not None
        if name.startswith(_NEEDS_PASSWORD):
            # Needs the password itself: only a password mapper can give it (and only for
            # users whose attribute holds it in clear, which is known per user at login).
            return self.password_attribute is not None
        return False

    def answer(self, request: RealmRequest) -> object:
        raise UnsupportedRealmRequest(f"an LDAP realm cannot answer {type(request).__name__}")

    def credentials(self, username: str) -> tuple[Credential, ...] | None:
        user = self.lookup(username)
        if user is None:
            return None
        clear = tuple(p for p in user.passwords if isinstance(p, ClearPassword))
        if user.passwords and not clear and not self._hash_only_warned:
            self._hash_only_warned = True
            log.warning(
                "LDAP realm '%s': some users have only hashed %s values: SCRAM/DIGEST cannot work for "
                "them (PLAIN/BASIC can)",
                self.security_realm,
                self.password_attribute,
            )
        return clear

    def verify_password(self, username: str, password: str) -> bool:
        if not password:
            return False  # never an unauthenticated bind (RFC 4513 5.1.2), never a match
        user = self.lookup(username)
        if self.config.direct_verification:
            if user is None:
                # As much directory work as a real user's wrong password: no name probing by timing.
                self.directory.bind_as(f"cn={secrets.token_hex(8)},{self.search_dn}", password)
                return False
            return self.directory.bind_as(user.dn, password)
        if user is None or self.password_attribute is None:
            return False
        return check_password(user.passwords, password)

    def identity(self, username: str) -> Identity | None:
        user = self.lookup(username)
        if user is None:
            return None
        return Identity(name=user.name, realm=self.security_realm, groups=user.groups)

    # -- lookups

    def rewrite(self, username: str) -> str | None:
        if not username or len(username) > MAX_NAME_LENGTH:
            return None
        name = self.rewriter(username) if self.rewriter is not None else username
        if not name or len(name) > MAX_NAME_LENGTH:
            return None
        return name

    def lookup(self, username: str) -> ResolvedUser | None:
        """The user's entry and groups (from the cache when fresh); None: no such user."""
        name = self.rewrite(username)
        if name is None:
            return None
        cached = self.cache.get(name)
        if cached is not None:
            return cached
        user: ResolvedUser | None = self.directory.run(lambda connection: self._resolve(connection, name))
        if user is not None:
            self.cache.put(user)
        return user

    def _searcher(self, connection: ldap3.Connection) -> Searcher:
        return Searcher(
            connection,
            referral_mode=self.config.referral_mode,
            page_size=self.config.page_size,
            realm=self.security_realm,
        )

    def _resolve(self, connection: ldap3.Connection, name: str) -> ResolvedUser | None:
        searcher = self._searcher(connection)
        found = searcher.search(
            self.search_dn,
            format_filter(self.filter_template, name),
            subtree=self.mapping.search_recursive,
            attributes=self._user_attributes,
            size_limit=2,
            time_limit_s=max(1, self.mapping.search_time_limit_ms // 1000),
        )
        if not found:
            return None
        if len(found) > 1:
            log.warning(
                "LDAP realm '%s': the name %r matches more than one entry under '%s': refusing it",
                self.security_realm,
                name,
                self.search_dn,
            )
            return None
        entry = found[0]
        passwords: list[StoredPassword] = []
        if self.password_attribute:
            for raw in entry.values(self.password_attribute):
                parsed = parse_user_password(raw)
                if parsed is not None:
                    passwords.append(parsed)
        groups = self._groups(searcher, name, entry)
        return ResolvedUser(name=name, dn=entry.dn, groups=frozenset(groups), passwords=tuple(passwords))

    def _groups(self, searcher: Searcher, name: str, user: Entry) -> set[str]:
        roles: set[str] = set()
        for attribute in self.mapping.attributes:
            target = attribute.to or attribute.from_ or "dn"
            if target.lower() != ROLES_ATTRIBUTE.lower():
                continue  # only Roles feed Identity.groups (other identity attributes are unused)
            if attribute.kind == "reference":
                values = self._reference_values(searcher, attribute, user)
            elif attribute.filter is not None:
                values = self._filter_values(searcher, attribute, name, user.dn)
            else:
                values = self._own_values(attribute, user)
            roles.update(values)
            if len(roles) >= MAX_GROUPS:
                break
        return roles

    @staticmethod
    def _value_of(attribute: LdapAttributeConfig, entry: Entry) -> list[str]:
        raw = [entry.dn] if attribute.from_ is None else entry.texts(attribute.from_)
        if attribute.extract_rdn:
            return [v for v in (_rdn_value(x, attribute.extract_rdn) for x in raw) if v is not None]
        return raw

    def _own_values(self, attribute: LdapAttributeConfig, user: Entry) -> list[str]:
        return self._value_of(attribute, user)

    def _filter_values(
        self, searcher: Searcher, attribute: LdapAttributeConfig, name: str, dn: str
    ) -> list[str]:
        """``<attribute filter=…>``: groups whose filter matches (``{0}`` name, ``{1}`` DN),
        then ``role-recursion`` levels of groups of those groups."""
        assert attribute.filter is not None
        base = attribute.filter_dn or self.search_dn
        wanted = [a for a in (attribute.from_, attribute.role_recursion_name) if a]
        values: list[str] = []
        seen: set[str] = {dn.lower()}
        frontier = [(name, dn)]
        for _depth in range(attribute.role_recursion + 1):
            next_frontier: list[tuple[str, str]] = []
            for member_name, member_dn in frontier:
                for entry in searcher.search(
                    base,
                    format_filter(attribute.filter, member_name, member_dn),
                    subtree=attribute.search_recursive,
                    attributes=wanted,
                    paged=True,
                ):
                    if entry.dn.lower() in seen:
                        continue  # a cycle of nested groups
                    seen.add(entry.dn.lower())
                    values.extend(self._value_of(attribute, entry))
                    recursion_names = entry.texts(attribute.role_recursion_name) or [entry.dn]
                    next_frontier.append((recursion_names[0], entry.dn))
                    if len(seen) > MAX_GROUPS:
                        return values
            frontier = next_frontier
            if not frontier:
                break
        return values

    def _reference_values(self, searcher: Searcher, attribute: LdapAttributeConfig, user: Entry) -> list[str]:
        """``<attribute-reference reference="memberOf">``: follow the DNs in the user entry
        (and ``role-recursion`` levels of the same attribute in the referenced entries)."""
        assert attribute.reference is not None
        values: list[str] = []
        seen: set[str] = {user.dn.lower()}
        frontier = user.texts(attribute.reference)
        needs_read = attribute.from_ is not None and not attribute.extract_rdn
        for depth in range(attribute.role_recursion + 1):
            next_frontier: list[str] = []
            for dn in frontier:
                if dn.lower() in seen:
                    continue
                seen.add(dn.lower())
                if len(seen) > MAX_GROUPS:
                    return values
                recurse = depth < attribute.role_recursion
                if not needs_read and not recurse:
                    values.extend(self._value_of(attribute, Entry(dn, {})))
                    continue
                wanted = [a for a in (attribute.from_, attribute.reference if recurse else None) if a]
                entry = searcher.read(dn, wanted)
                if entry is None:
                    continue  # a dangling reference: the group is gone
                values.extend(self._value_of(attribute, entry if needs_read else Entry(dn, {})))
                if recurse:
                    next_frontier.extend(entry.texts(attribute.reference))
            frontier = next_frontier
            if not frontier:
                break
        return values

    def close(self) -> None:
        self.directory.close()


# ---------------------------------------------------------------- from configuration


def build_ldap_realm(config: SecurityRealmConfig, source: str = "") -> LdapRealm:
    """The realm a ``<security-realm>`` with an ``<ldap-realm>`` describes."""
    ldap = config.ldap_realm
    assert ldap is not None

    def error(message: str, line: int = ldap.line) -> ConfigError:
        return ConfigError(message, file=source, line=line, element="ldap-realm")

    if ldap.client_ssl_context is not None:
        raise error("not supported yet: client-ssl-context (ldaps:// URLs use the system trust store)")
    try:
        urls = parse_urls(ldap.url)
    except ValueError as exc:
        raise error(f"attribute 'url': {exc}") from None
    if not ldap.identity_mappings:
        raise error("missing required element <identity-mapping>")
    if len(ldap.identity_mappings) > 1:
        raise error("only one <identity-mapping> is allowed", ldap.identity_mappings[1].line)
    if ldap.principal is not None and not ldap.credential:
        raise error("attribute 'principal' needs a 'credential'")
    rewriter = build_name_rewriter(ldap.name_rewriter, source) if ldap.name_rewriter is not None else None
    mapping = ldap.identity_mappings[0]
    for attribute in mapping.attributes:
        target = attribute.to or attribute.from_ or "dn"
        if target.lower() != ROLES_ATTRIBUTE.lower():
            log.warning(
                "%s:%d: LDAP realm '%s': attribute mapped to '%s' is read by no one: only values mapped "
                "to '%s' become the identity's groups",
                source,
                attribute.line,
                config.name,
                target,
                ROLES_ATTRIBUTE,
            )
    if not ldap.direct_verification and not ldap.has_password_mapper:
        log.warning(
            "%s:%d: LDAP realm '%s' has neither direct-verification nor a <user-password-mapper>: "
            "it cannot check any password",
            source,
            ldap.line,
            config.name,
        )
    directory = Directory(
        urls,
        realm=config.name,
        principal=ldap.principal,
        credential=ldap.credential,
        connect_timeout_s=ldap.connection_timeout_ms / 1000,
        read_timeout_s=ldap.read_timeout_ms / 1000,
        pooling=ldap.connection_pooling,
        referral_mode=ldap.referral_mode,
    )
    lifespan = config.cache_lifespan_ms / 1000 if config.cache_lifespan_ms >= 0 else None
    try:
        return LdapRealm(
            ldap,
            security_realm=config.name,
            directory=directory,
            rewriter=rewriter,
            cache_max_entries=config.cache_max_size if config.cache_lifespan_ms != 0 else 0,
            cache_lifespan_s=lifespan,
        )
    except ValueError as exc:
        raise error(str(exc), mapping.line) from None
