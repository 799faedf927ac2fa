"""The supervisor: starts the actors of a server in order and stops them in reverse.

Order (DESIGN.md): cache shards first (nothing can be served without them), then the
security actors, then the listeners, which are the only thing a client can reach. Stop
is staged: listeners stop accepting and drain for a bounded grace period, then the shard
pool gets its own bounded shutdown. A second signal cancels everything at once.

Supervision is one-cancels-all, as trio's nurseries are: a listener or a security actor
that dies takes the server down loudly. Only shard processes are restarted, by their
pool, because a shard is a separate process whose death is an expected failure mode.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import trio

from gridactor.cache.api import CacheService
from gridactor.cache.events import EventHub, NotifyingCacheService
from gridactor.cache.local import InProcessCacheService
from gridactor.cache.messages import Notice
from gridactor.cache.pool import ShardPool
from gridactor.cache.router import ShardRouter
from gridactor.cache.shared import SharedShardClient
from gridactor.config.loader import load_config
from gridactor.config.model import EndpointConfig, ServerConfig, unsupported_features
from gridactor.errors import ConfigError
from gridactor.runtime.collector import settle_after_start_up
from gridactor.security.authorization import Authorizer, policy_from_config
from gridactor.security.realm_actor import RealmActor, RealmClient
from gridactor.security.realms.base import Realm
from gridactor.security.setup import build_realm, endpoint_security, realm_is_empty
from gridactor.server.context import ACL_FLUSH_NOTICE, SERVER_VERSION, EndpointContext, Limits
from gridactor.server.listener import Listener
from gridactor.server.tls import server_ssl_context
from gridactor.server.workers import ListenerWorkers, WorkerSpec

log = logging.getLogger("gridactor.server")

# Features of the configuration model that this build serves. Anything else a
# configuration uses makes `run` refuse to start (never a feature silently off).
IMPLEMENTED_FEATURES: frozenset[str] = frozenset(
    {
        # On one node both spread their segments over the shard processes; there is no
        # second node to own copies, so `owners` and SYNC/ASYNC have nothing to act on.
        "distributed-cache",
        "replicated-cache",
        "properties-realm",
        "ldap-realm",
        "token-realm",
        "hotrod-authentication",
        "rest-authentication",
        "authorization",
        "cache-authorization",
        "identity-role-mapper",
        "common-name-role-mapper",
        "cluster-role-mapper",
        "custom-role-mapper",
        "ssl-identity",
        "self-signed-certificate",
        "truststore-realm",
        "kerberos-identity",
    }
)


@dataclass(slots=True)
class RunOptions:
    bind_address: str | None = None  # -b: overrides every endpoint's interface address
    port: int | None = None  # -p: port of the default endpoint (before the offset)
    port_offset: int | None = None  # -o
    shards: int | None = None  # None: one per core, at least 2; 0: in-process store
    grace_s: float = 5.0
    properties: Mapping[str, str] = field(default_factory=dict)
    listeners: int = 1  # processes serving the endpoints (server/workers.py)
    # Set for a listener worker by the main process (server/workers.py):
    endpoint_ports: tuple[int, ...] | None = None  # every endpoint's port, already resolved
    reuse_port: bool = False  # bind with SO_REUSEPORT
    shard_addresses: tuple[str, ...] = ()  # connect to these shard processes instead of starting any


def default_shard_count() -> int:
    return max(2, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    """One socket to listen on and what it serves."""

    name: str
    host: str
    port: int
    security_realm: str | None
    hotrod: bool
    rest: bool
    rest_context_path: str


def plan_endpoints(config: ServerConfig, options: RunOptions) -> list[EndpointPlan]:
    plans = []
    for index, endpoint in enumerate(config.endpoints):
        binding = config.socket_bindings.bindings[endpoint.socket_binding]
        host = options.bind_address or config.bind_address(endpoint.socket_binding)
        port = binding.port
        if index == 0 and options.port is not None:
            port = options.port
        offset = config.socket_bindings.port_offset if options.port_offset is None else options.port_offset
        if port != 0:
            port += offset
        if options.endpoint_ports is not None:
            port = options.endpoint_ports[index]
        plans.append(
            EndpointPlan(
                name=endpoint.socket_binding,
                host=host,
                port=port,
                security_realm=endpoint.security_realm,
                hotrod=endpoint.hotrod is not None,
                rest=endpoint.rest is not None,
                rest_context_path=endpoint.rest.context_path if endpoint.rest is not None else "rest",
            )
        )
    return plans


def endpoint_limits(defaults: Limits, endpoint: EndpointConfig) -> Limits:
    """The endpoint's own `idle-timeout` (seconds; 0 = none) and REST `max-content-length`."""
    idle = endpoint.idle_timeout_s
    if endpoint.hotrod is not None and endpoint.hotrod.idle_timeout_s:
        idle = endpoint.hotrod.idle_timeout_s
    body = defaults.max_http_body_bytes
    if endpoint.rest is not None and endpoint.rest.max_content_length is not None:
        body = endpoint.rest.max_content_length
    return dataclasses.replace(defaults, idle_timeout_s=float(idle), max_http_body_bytes=body)


def refuse_unsupported(config: ServerConfig) -> None:
    missing = unsupported_features(config, set(IMPLEMENTED_FEATURES))
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ConfigError(missing[0].describe() + more)


class Server:
    """The root actor. ``run`` reports the bound ports once every listener serves."""

    def __init__(self, config: ServerConfig, options: RunOptions) -> None:
        self.config = config
        self.options = options
        self.listeners: list[Listener] = []
        self.authorizer: Authorizer | None = None
        self._stop = trio.Event()

    async def _start_realms(self, nursery: trio.Nursery) -> dict[str, tuple[Realm, RealmClient]]:
        """One actor per security realm that an endpoint uses."""
        used = {
            name
            for endpoint in self.config.endpoints
            for name in (endpoint.hotrod_realm, endpoint.rest_realm)
            if name is not None
        }
        realms: dict[str, tuple[Realm, RealmClient]] = {}
        for name in sorted(used):
            realm_config = self.config.realm(name)
            if realm_config is None:
                raise ConfigError(f"no security realm named '{name}'", file=str(self.config.source))
            realm = build_realm(realm_config, str(self.config.source))
            client = await nursery.start(RealmActor(realm).run)
            realms[name] = (realm, client)
            if realm_is_empty(realm):
                log.warning(
                    "security realm '%s' has no users yet: nobody can log in. Create the first one with\n"
                    "    gridactor user create admin -g admin -s ROOT  (or -f USERS_FILE -w GROUPS_FILE)\n"
                    "  e.g. for this repository's default configuration:\n"
                    "    .venv/bin/gridactor user create admin -g admin",
                    name,
                )
        return realms

    def _on_notice(self, notice: Notice) -> None:
        """What another process sharing the shards announced (server/workers.py)."""
        if notice.kind == ACL_FLUSH_NOTICE and self.authorizer is not None:
            self.authorizer.invalidate()
        else:
            log.warning("ignoring an unknown notice %r from another server process", notice.kind)

    def stop(self) -> None:
        """Begin the staged shutdown (idempotent)."""
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[list[int]] = trio.TASK_STATUS_IGNORED) -> None:
        started = time.monotonic()
        refuse_unsupported(self.config)
        plans = plan_endpoints(self.config, self.options)
        # Keystores are read (or generated) before anything starts: a wrong password stops here.
        ssl_contexts = {
            plan.name: server_ssl_context(self.config, endpoint)
            for plan, endpoint in zip(plans, self.config.endpoints, strict=True)
        }
        container = self.config.cache_container
        settings = [definition.settings for definition in container.caches.values()]
        # Roles and role mappers (a custom mapper class is imported here) also fail fast.
        policy, role_mapper = policy_from_config(container, str(self.config.source))
        self.authorizer = Authorizer(policy, role_mapper)
        async with trio.open_nursery() as nursery:
            caches: CacheService
            events = EventHub()
            shard_count = default_shard_count() if self.options.shards is None else self.options.shards
            shard_addresses: tuple[str, ...] = ()
            router: ShardRouter | None = None
            if self.options.shard_addresses:
                # A listener worker (server/workers.py): the main process supervises the shards.
                shared = SharedShardClient(self.options.shard_addresses, container.default_cache)
                router = await nursery.start(shared.run)
            elif shard_count == 0:
                # Every front-end writes through this wrapper, so client listeners see them all.
                in_process = InProcessCacheService(settings, container.default_cache)
                caches = NotifyingCacheService(in_process, events)
                log.info("caches served in-process (no shard processes)")
            else:
                pool = ShardPool(settings, container.default_cache, shard_count)
                router = await nursery.start(pool.run)
                shard_addresses = tuple(pool.addresses)
                log.info("%d cache shard processes started", shard_count)
            announce: Callable[[str], Awaitable[None]] | None = None
            if router is not None:
                # The shards send the events of the caches the hub's subscribers listen to,
                # whichever process wrote them.
                router.serve_events(events)
                router.on_notice = self._on_notice
                announce = router.broadcast_notice
                caches = router
            realms = await self._start_realms(nursery)
            if policy.enabled:
                unsecured = sorted(name for name, cache in policy.caches.items() if not cache.secured)
                if unsecured:
                    log.warning(
                        "authorization is on, but these caches have no <authorization/> and are open to "
                        "every authenticated user: %s",
                        ", ".join(unsecured),
                    )
            limits = Limits()
            ports: list[int] = []
            async with trio.open_nursery() as listening:
                for plan, endpoint in zip(plans, self.config.endpoints, strict=True):
                    security = endpoint_security(
                        self.config, endpoint, realms, auth_timeout_s=limits.auth_timeout_s
                    )
                    context = EndpointContext(
                        caches=caches,
                        limits=endpoint_limits(limits, endpoint),
                        security=security,
                        authorizer=self.authorizer,
                        events=events,
                        security_realm=plan.security_realm,
                        hotrod_enabled=plan.hotrod,
                        rest_enabled=plan.rest,
                        rest_context_path=plan.rest_context_path,
                        cache_templates=dict(container.templates),
                        announce=announce,
                    )
                    listener = Listener(
                        plan.host,
                        plan.port,
                        context,
                        ssl_context=ssl_contexts[plan.name],
                        grace_s=self.options.grace_s,
                        name=plan.name,
                        reuse_port=self.options.reuse_port or self.options.listeners > 1,
                    )
                    self.listeners.append(listener)
                    ports.append(await listening.start(listener.run))
                if self.options.listeners > 1:
                    specs = [
                        WorkerSpec(
                            index=index,
                            config_path=str(self.config.source),
                            properties=dict(self.options.properties),
                            bind_address=self.options.bind_address,
                            endpoint_ports=tuple(ports),
                            shard_addresses=shard_addresses,
                            grace_s=self.options.grace_s,
                            log_level=logging.getLogger().getEffectiveLevel(),
                        )
                        for index in range(1, self.options.listeners)
                    ]
                    await listening.start(ListenerWorkers(specs, self._stop).run)
                for plan in plans:
                    if plan.security_realm is None:
                        log.warning(
                            "endpoint %s has no security realm: authentication is DISABLED", plan.name
                        )
                elapsed_ms = (time.monotonic() - started) * 1000
                if self.options.shard_addresses:
                    # A listener worker: "started" (ISPN080001) is the main process's to say,
                    # once every worker is ready.
                    log.info("listener process serving (ready in %dms)", elapsed_ms)
                else:
                    log.info("ISPN080001: %s started in %dms", SERVER_VERSION, elapsed_ms)
                task_status.started(ports)
                await self._stop.wait()
                log.info("ISPN080002: stopping: no new connections, draining open ones")
                for listener in self.listeners:
                    listener.stop_accepting()
            # Listeners are done; the shard pool shuts down in its own bounded stages.
            nursery.cancel_scope.cancel()
        log.info("ISPN080003: stopped")


async def run_until_signalled(config: ServerConfig, options: RunOptions) -> None:
    """Serve until SIGINT/SIGTERM; the first signal stops gracefully, a second at once."""
    server = Server(config, options)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch_signals() -> None:
                count = 0
                async for signum in signals:
                    count += 1
                    if count == 1:
                        log.info("received %s: stopping", signal.Signals(signum).name)
                        server.stop()
                    else:
                        log.warning("second signal: stopping now")
                        nursery.cancel_scope.cancel()

            nursery.start_soon(watch_signals)
            await server.run()
            nursery.cancel_scope.cancel()


def load_and_run(path: str, options: RunOptions) -> None:
    config = load_config(path, options.properties)
    settle_after_start_up()
    trio.run(run_until_signalled, config, options)
