"""The error tree. Every error that can reach a client carries its wire code.

``hotrod_status`` is the Hot Rod response status (0x81..0x88) and ``http_status`` the
HTTP status a REST front-end answers with. ``hotrod_text`` is the text Infinispan puts in
its error responses (``<exception class>: <message>``); clients such as the Node one look
for words like ``CacheNotFoundException`` in it.
"""

from __future__ import annotations


class GridError(Exception):
    """Root of every gridactor error."""

    hotrod_status: int = 0x85
    http_status: int = 500
    exception_class: str = "org.infinispan.server.hotrod.HotRodException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def hotrod_text(self) -> str:
        return f"{self.exception_class}: {self.message}"


class ConfigError(GridError):
    """A configuration that cannot be loaded. ``str()`` is ``FILE:LINE: element: what``."""

    def __init__(self, message: str, *, file: str = "", line: int = 0, element: str = "") -> None:
        self.file = file
        self.line = line
        self.element = element
        where = f"{file}:{line}: " if file else ""
        what = f"{element}: " if element else ""
        super().__init__(f"{where}{what}{message}")


class CacheNotFoundError(GridError):
    hotrod_status = 0x84
    http_status = 404
    exception_class = "org.infinispan.server.hotrod.CacheNotFoundException"

    def __init__(self, cache: str) -> None:
        self.cache = cache
        if cache:
            text = f"Cache with name '{cache}' not found amongst the configured caches"
        else:
            text = "Default cache requested but not configured"
        super().__init__(text)


class CacheExistsError(GridError):
    hotrod_status = 0x85
    http_status = 400
    exception_class = "org.infinispan.commons.CacheConfigurationException"

    def __init__(self, cache: str) -> None:
        self.cache = cache
        super().__init__(f"ISPN000507: Cache {cache} already exists")


class InvalidRequestError(GridError):
    """A request that parsed but makes no sense (bad argument, over a size limit)."""

    hotrod_status = 0x84
    http_status = 400
    exception_class = "java.lang.IllegalArgumentException"


class ShardUnavailableError(GridError):
    """The shard process that owns a key died or restarted while the request was in flight."""

    hotrod_status = 0x85
    http_status = 503
    exception_class = "org.infinispan.remoting.transport.jgroups.SuspectException"


class ServerStoppingError(GridError):
    hotrod_status = 0x88
    http_status = 503
    exception_class = "org.infinispan.commons.IllegalLifecycleStateException"


class AuthenticationError(GridError):
    """Authentication missing or failed. Never says why in detail (no user enumeration)."""

    hotrod_status = 0x85
    http_status = 401
    exception_class = "java.lang.SecurityException"


class AuthorizationError(GridError):
    """Authenticated, but the subject lacks a permission."""

    hotrod_status = 0x85
    http_status = 403
    exception_class = "java.lang.SecurityException"
