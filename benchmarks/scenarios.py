"""Benchmark scenarios as data: what to run, in which sets, and what the server must support.

A scenario whose ``requires`` names a capability the server lacks is reported as
skipped with the reason, never faked. When a capability lands (security realms, TLS),
add it to ``SERVER_CAPABILITIES`` and teach ``run.py`` how to configure it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# What the server can do today, for benchmarking purposes.
SERVER_CAPABILITIES: frozenset[str] = frozenset({"realm", "tls"})
CAPABILITY_REASONS = {
    "realm": "server has no realm support yet",
    "tls": "server has no TLS support yet",
}


@dataclass(frozen=True)
class Scenario:
    name: str  # starts with the protocol: hotrod-… / rest-…
    protocol: str  # hotrod | rest
    op: str  # get | put | load (memory) | connect (connection + auth rate) | node-get (Node client)
    connections: int
    pipeline: int = 1  # Hot Rod requests in flight per connection; HTTP/2 streams per connection
    value_size: int = 100
    keyspace: int = 10_000
    duration_s: float = 5.0
    warmup_s: float = 1.5
    shards: int | None = None  # None: the server's default
    listeners: int = 1  # listener processes sharing the port (gridactor run --listeners)
    entries: int = 0  # memory scenario: entries to load
    auth: str | None = None  # SASL mechanism, e.g. SCRAM-SHA-256
    tls: bool = False
    requires: frozenset[str] = frozenset()
    sets: frozenset[str] = frozenset({"full"})
    note: str = ""

    def params(self) -> dict[str, object]:
        return {
            "protocol": self.protocol,
            "op": self.op,
            "connections": self.connections,
            "pipeline": self.pipeline,
            "value_size": self.value_size,
            "keyspace": self.keyspace,
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "shards": self.shards,
            "listeners": self.listeners,
            "entries": self.entries,
            "auth": self.auth,
            "tls": self.tls,
        }

    def missing(self) -> list[str]:
        return sorted(self.requires - SERVER_CAPABILITIES)


FULL = frozenset({"full"})
QUICK = frozenset({"full", "quick"})

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("hotrod-get-50c", "hotrod", "get", 50, sets=QUICK),
    Scenario("hotrod-put-50c", "hotrod", "put", 50, sets=QUICK),
    Scenario("hotrod-get-1c", "hotrod", "get", 1),
    Scenario("hotrod-get-50c-p16", "hotrod", "get", 50, pipeline=16, sets=QUICK),
    Scenario(
        "hotrod-get-50c-p16-scram256",
        "hotrod",
        "get",
        50,
        pipeline=16,
        auth="SCRAM-SHA-256",
        requires=frozenset({"realm"}),
    ),
    Scenario("hotrod-put-50c-p16", "hotrod", "put", 50, pipeline=16),
    # Two listener processes on the port (DESIGN.md: SO_REUSEPORT) in front of the same shards.
    Scenario("hotrod-get-50c-listeners2", "hotrod", "get", 50, listeners=2),
    Scenario("hotrod-get-50c-p16-listeners2", "hotrod", "get", 50, pipeline=16, listeners=2, sets=QUICK),
    Scenario("hotrod-put-50c-p16-listeners2", "hotrod", "put", 50, pipeline=16, listeners=2),
    Scenario(
        "hotrod-get-node-1c-p16",
        "hotrod",
        "node-get",
        1,
        pipeline=16,
        keyspace=1000,
        note="sanity point: the official Node.js client (npm infinispan), one connection, values checked",
    ),
    Scenario("rest-get-h2c", "rest", "get", 50, keyspace=1000, sets=QUICK),
    Scenario("rest-put-h2c", "rest", "put", 50, keyspace=1000),
    Scenario("rest-get-h2c-m16", "rest", "get", 50, pipeline=16, keyspace=1000),
    Scenario(
        "hotrod-memory-1m",
        "hotrod",
        "load",
        8,
        pipeline=4,
        entries=1_000_000,
        duration_s=600,
        note="RSS growth of the server tree while loading 1M entries with pipelined PUT_ALL",
    ),
    Scenario(
        "hotrod-get-50c-scram256",
        "hotrod",
        "get",
        50,
        auth="SCRAM-SHA-256",
        requires=frozenset({"realm"}),
    ),
    Scenario(
        "hotrod-get-50c-tls-scram256",
        "hotrod",
        "get",
        50,
        auth="SCRAM-SHA-256",
        tls=True,
        requires=frozenset({"realm", "tls"}),
    ),
    Scenario(
        "hotrod-connect-scram256",
        "hotrod",
        "connect",
        1,
        auth="SCRAM-SHA-256",
        requires=frozenset({"realm"}),
        note="connect + SCRAM-SHA-256 exchange + close per second, one at a time per load process",
    ),
)

# The shard-scaling scenario: run once per shard count of --shards.
SCALING_BASE = Scenario("hotrod-get-50c-p16", "hotrod", "get", 50, pipeline=16)

SMOKE = Scenario(
    "hotrod-get-10c", "hotrod", "get", 10, keyspace=1000, duration_s=2.0, warmup_s=0.5, sets=frozenset()
)


def scaling(shard_counts: list[int]) -> list[Scenario]:
    return [replace(SCALING_BASE, name=f"{SCALING_BASE.name}-shards{n}", shards=n) for n in shard_counts]


def select(mode: str, shard_counts: list[int]) -> list[Scenario]:
    """The scenarios of a mode: smoke | quick | full."""
    if mode == "smoke":
        return [SMOKE]
    chosen = [s for s in SCENARIOS if mode in s.sets]
    if mode == "full":
        chosen += scaling(shard_counts)
    if mode == "quick":
        chosen = [replace(s, duration_s=3.0, warmup_s=1.0) for s in chosen]
    return chosen


@dataclass
class Record:
    """One row of the report (the JSON keys are the field names)."""

    name: str
    status: str = "ok"  # ok | skipped: … | failed: …
    ops_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    redis_ops_per_s: float | None = None
    redis_p50_ms: float | None = None
    redis_p99_ms: float | None = None
    ratio_to_redis: float | None = None
    server_peak_rss_mb: float | None = None
    params: dict[str, object] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)
