"""THE table: which permission every Hot Rod operation and every REST route needs.

Both front-ends look their checks up here, and the authorization tests are generated
from these two tables, so a new operation or route cannot slip in unchecked: a Hot Rod
opcode absent from ``HOTROD`` is refused, and the REST router refuses to build with a
route that has no row in ``REST``.

Scopes: ``CACHE`` checks the subject's mask for the cache the request names (its roles,
as the cache's ``<authorization roles>`` restricts them); ``CONTAINER`` checks the
cache-manager mask (every mapped global role); ``AUTHENTICATED`` needs only a login;
``ANONYMOUS`` not even that. Choices follow Infinispan's code (notes §2.2 and §2.3), including
its fixes: ``?action=keys|entries`` need BULK_READ (CVE-2023-3628), reading a cache's
configuration needs ADMIN (CVE-2023-3629), clear needs BULK_WRITE.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gridactor.protocols.hotrod import operations as op
from gridactor.security.permissions import Permission


class Scope(enum.Enum):
    ANONYMOUS = "anonymous"
    AUTHENTICATED = "authenticated"
    CACHE = "cache"
    CONTAINER = "container"


@dataclass(frozen=True, slots=True)
class Access:
    scope: Scope
    permission: Permission = Permission.NONE


OPEN = Access(Scope.ANONYMOUS)
LOGGED_IN = Access(Scope.AUTHENTICATED)


def _cache(permission: Permission) -> Access:
    return Access(Scope.CACHE, permission)


def _container(permission: Permission) -> Access:
    return Access(Scope.CONTAINER, permission)


HOTROD: dict[int, Access] = {
    op.PING: OPEN,
    op.AUTH_MECH_LIST: OPEN,
    op.AUTH: OPEN,
    op.GET: _cache(Permission.READ),
    op.GET_WITH_VERSION: _cache(Permission.READ),
    op.GET_WITH_METADATA: _cache(Permission.READ),
    op.CONTAINS_KEY: _cache(Permission.READ),
    op.PUT: _cache(Permission.WRITE),
    op.PUT_IF_ABSENT: _cache(Permission.WRITE),
    op.REPLACE: _cache(Permission.WRITE),
    op.REPLACE_IF_UNMODIFIED: _cache(Permission.WRITE),
    op.REMOVE: _cache(Permission.WRITE),
    op.REMOVE_IF_UNMODIFIED: _cache(Permission.WRITE),
    # Infinispan checks putAll as WRITE (its docs say BULK_WRITE; the code decides).
    op.PUT_ALL: _cache(Permission.WRITE),
    op.SIZE: _cache(Permission.BULK_READ),
    op.GET_ALL: _cache(Permission.BULK_READ),
    op.BULK_GET: _cache(Permission.BULK_READ),
    op.BULK_GET_KEYS: _cache(Permission.BULK_READ),
    op.ITERATION_START: _cache(Permission.BULK_READ),
    op.ITERATION_NEXT: _cache(Permission.BULK_READ),
    op.ITERATION_END: _cache(Permission.BULK_READ),
    op.QUERY: _cache(Permission.BULK_READ),
    op.CLEAR: _cache(Permission.BULK_WRITE),
    op.STATS: _cache(Permission.MONITOR),
    op.ADD_CLIENT_LISTENER: _cache(Permission.LISTEN),
    op.REMOVE_CLIENT_LISTENER: _cache(Permission.LISTEN),
    op.EXEC: _cache(Permission.EXEC),
    # Multimap operations address an ordinary cache and Infinispan checks that cache's
    # permissions: reads READ, changes WRITE, whole-cache questions BULK_READ.
    op.MULTIMAP_GET: _cache(Permission.READ),
    op.MULTIMAP_GET_WITH_METADATA: _cache(Permission.READ),
    op.MULTIMAP_CONTAINS_KEY: _cache(Permission.READ),
    op.MULTIMAP_CONTAINS_ENTRY: _cache(Permission.READ),
    op.MULTIMAP_PUT: _cache(Permission.WRITE),
    op.MULTIMAP_REMOVE_KEY: _cache(Permission.WRITE),
    op.MULTIMAP_REMOVE_ENTRY: _cache(Permission.WRITE),
    op.MULTIMAP_SIZE: _cache(Permission.BULK_READ),
    op.MULTIMAP_CONTAINS_VALUE: _cache(Permission.BULK_READ),
    # Counters are container-wide and Infinispan checks no permission of its own for them.
    # Our choice: they are checked against the cache the request names (the client's
    # cache; the default cache when it names none), READ to look, WRITE to define or change,
    # LISTEN for the (unsupported) counter listeners, BULK_READ to list every name.
    op.COUNTER_GET: _cache(Permission.READ),
    op.COUNTER_GET_CONFIGURATION: _cache(Permission.READ),
    op.COUNTER_IS_DEFINED: _cache(Permission.READ),
    op.COUNTER_GET_NAMES: _cache(Permission.BULK_READ),
    op.COUNTER_CREATE: _cache(Permission.WRITE),
    op.COUNTER_ADD_AND_GET: _cache(Permission.WRITE),
    op.COUNTER_RESET: _cache(Permission.WRITE),
    op.COUNTER_CAS: _cache(Permission.WRITE),
    op.COUNTER_GET_AND_SET: _cache(Permission.WRITE),
    op.COUNTER_REMOVE: _cache(Permission.WRITE),
    op.COUNTER_ADD_LISTENER: _cache(Permission.LISTEN),
    op.COUNTER_REMOVE_LISTENER: _cache(Permission.LISTEN),
}

# (methods, path pattern, action) as the REST router declares its routes.
RestRoute = tuple[str, str, str | None]

REST: dict[RestRoute, Access] = {
    ("GET", "caches", None): LOGGED_IN,  # lists only the caches the caller may use
    ("GET HEAD", "caches/{cache}", None): LOGGED_IN,  # the configuration only with ADMIN
    ("POST", "caches/{cache}", None): _container(Permission.CREATE),
    ("PUT", "caches/{cache}", None): _container(Permission.CREATE),
    ("DELETE", "caches/{cache}", None): _container(Permission.CREATE),
    ("GET", "caches/{cache}", "keys"): _cache(Permission.BULK_READ),
    ("GET", "caches/{cache}", "entries"): _cache(Permission.BULK_READ),
    ("GET", "caches/{cache}", "size"): _cache(Permission.BULK_READ),
    ("POST", "caches/{cache}", "clear"): _cache(Permission.BULK_WRITE),
    ("GET", "caches/{cache}", "stats"): _cache(Permission.MONITOR),
    ("GET", "caches/{cache}", "config"): _cache(Permission.ADMIN),
    ("GET HEAD", "caches/{cache}/{key}", None): _cache(Permission.READ),
    ("PUT", "caches/{cache}/{key}", None): _cache(Permission.WRITE),
    ("POST", "caches/{cache}/{key}", None): _cache(Permission.WRITE),
    ("DELETE", "caches/{cache}/{key}", None): _cache(Permission.WRITE),
    ("GET", "server", None): OPEN,
    ("GET HEAD", "cache-managers/default/health/status", None): OPEN,
    ("GET HEAD", "container/health/status", None): OPEN,
    ("GET HEAD", "cache-managers/default/health", None): LOGGED_IN,
    ("GET HEAD", "container/health", None): LOGGED_IN,
    ("GET", "security/user/acl", None): LOGGED_IN,
    ("POST", "security/cache", "flush"): _container(Permission.ADMIN),
}

# EXEC runs a named server task; the admin tasks are cache-manager operations (Infinispan
# checks CREATE for them, not EXEC), so each task has its own row. Unknown tasks are refused.
HOTROD_TASKS: dict[str, Access] = {
    "@@cache@names": LOGGED_IN,  # lists only the caches the caller may see
    "@@cache@create": _container(Permission.CREATE),
    "@@cache@getorcreate": _container(Permission.CREATE),
    "@@cache@remove": _container(Permission.CREATE),
}


def hotrod_access(opcode: int) -> Access | None:
    """The access rule of an opcode; None: no rule, so the operation is refused."""
    return HOTROD.get(opcode)
