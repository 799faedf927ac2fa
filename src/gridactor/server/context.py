"""What a connection task is handed: the caches, the endpoint's settings, the limits.

A connection never reaches into global state; everything it may use comes through an
:class:`EndpointContext`, built once per endpoint by the server at start-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from gridactor import __version__
from gridactor.cache.api import CacheService, CacheSettings

if TYPE_CHECKING:
    from gridactor.cache.events import EventHub
    from gridactor.security.authorization import Authorizer
    from gridactor.security.endpoint import EndpointSecurity

# The notice a process sends the others when its authorization cache is flushed.
ACL_FLUSH_NOTICE = "acl-flush"

# Infinispan's own version string is what clients and tools expect to parse.
SERVER_VERSION = f"gridactor {__version__} (Infinispan 15.1 compatible)"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one request may carry. Over a bound = a clear error, never a crash."""

    max_key_bytes: int = 1 << 20  # 1 MiB
    max_value_bytes: int = 64 << 20  # 64 MiB
    max_frame_bytes: int = 96 << 20  # a whole Hot Rod request
    max_http_body_bytes: int = 64 << 20
    max_http_header_bytes: int = 64 << 10
    idle_timeout_s: float = 0.0  # 0 = never close idle connections (Infinispan's default)
    handshake_timeout_s: float = 10.0  # TLS handshake + protocol sniffing
    auth_timeout_s: float = 30.0  # SASL / HTTP authentication exchange


@dataclass(slots=True)
class EndpointContext:
    """Shared by every connection of one endpoint (one socket binding)."""

    caches: CacheService
    limits: Limits = field(default_factory=Limits)
    server_version: str = SERVER_VERSION
    # Set when the server starts its staged shutdown; connections finish what they are
    # doing and stop reading.
    stopping: trio.Event = field(default_factory=trio.Event)
    # Name of the endpoint's security realm; None = authentication disabled (spec §4.4).
    security_realm: str | None = None
    # How this endpoint authenticates (None with security_realm None: disabled).
    security: EndpointSecurity | None = None
    # Permission checks (None: authorization is not configured, nothing is checked).
    authorizer: Authorizer | None = None
    # Cache events for Hot Rod client listeners (None: listeners are refused).
    events: EventHub | None = None
    hotrod_enabled: bool = True
    rest_enabled: bool = True
    # Hot Rod connector name and REST context path (Infinispan: "rest").
    rest_context_path: str = "rest"
    # Named cache configurations (<local-cache-configuration> etc.) for REST ?template=.
    cache_templates: dict[str, CacheSettings] = field(default_factory=dict)
    # Tells the other server processes sharing the shards (``--listeners``), e.g.
    # ACL_FLUSH_NOTICE; None when there are none to tell (in-process store).
    announce: Callable[[str], Awaitable[None]] | None = None
