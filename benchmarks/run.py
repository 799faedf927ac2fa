"""The benchmark harness: ``python -m benchmarks.run [--quick | --smoke] [--only PATTERN]``.

Per scenario it starts a fresh server (``python -m gridactor run … -p 0``), loads the
keys the scenario reads, drives it (warm-up, then a timed window), stops it with
SIGTERM and records throughput, latency percentiles and the server tree's peak RSS.
Redis runs in the same invocation with the same shape (value size, connections,
pipelining) so every figure is also a ratio to Redis on this machine. Results go to
``benchmarks/results/<timestamp>.json`` and ``latest.json`` (plus a PNG with
matplotlib).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import h2load_driver, node_driver, redis_ref, report
from benchmarks.hotrod_load import LoadSpec, default_processes, drive, key_of, value_of
from benchmarks.redis_ref import RedisReference
from benchmarks.scenarios import CAPABILITY_REASONS, Record, Scenario, select
from benchmarks.server import ROOT, GridServer, RssSampler, tree_rss_bytes

RESULTS = Path(__file__).resolve().parent / "results"
# Scenarios without authentication run the spec's "authentication disabled" example;
# authenticated ones the shipped default (property realm), with a user made for the run.
CONFIG = ROOT / "config" / "examples" / "no-authentication.xml"
AUTH_CONFIG = ROOT / "config" / "infinispan.xml"
BENCH_USER = ("bench", "bench-Secret-1")
MB = 1024 * 1024


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a subset in about a minute")
    mode.add_argument("--smoke", action="store_true", help="one tiny Hot Rod scenario (tests)")
    parser.add_argument("--only", metavar="PATTERN", help="scenario names matching this glob (or substring)")
    parser.add_argument("--shards", default="1,2", help="shard counts for the scaling scenario (full run)")
    parser.add_argument(
        "--load-procs", type=int, default=default_processes(), help="load generator processes"
    )
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis reference")
    parser.add_argument("--results", type=Path, default=RESULTS, help="directory for the result files")
    parser.add_argument("--config", type=Path, default=CONFIG, help="server configuration (no auth)")
    parser.add_argument(
        "--auth-config", type=Path, default=AUTH_CONFIG, help="configuration with a property realm"
    )
    return parser.parse_args(argv)


def _matches(name: str, pattern: str | None) -> bool:
    return pattern is None or fnmatch.fnmatch(name, pattern) or pattern in name


def _sasl(scenario: Scenario) -> tuple[str, str, str] | None:
    return None if scenario.auth is None else (scenario.auth, *BENCH_USER)


def auth_config(source: Path, workdir: Path) -> Path:
    """A copy of ``source`` with users.properties/groups.properties holding the bench user."""
    root = workdir / "auth-conf"
    root.mkdir(exist_ok=True)
    target = root / "infinispan.xml"
    if not target.exists():
        shutil.copy(source, target)
        users, groups = root / "users.properties", root / "groups.properties"
        users.touch()
        groups.touch()
        name, password = BENCH_USER
        cmd = [sys.executable, "-m", "gridactor", "user", "create", name, "-p", password]
        cmd += ["-f", str(users), "-w", str(groups), "-g", "admin"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60, cwd=ROOT)
    return target


def tls_config(source: Path, workdir: Path) -> Path:
    """``auth_config`` plus an SSL server identity (a self-signed keystore made at start)."""
    plain = auth_config(source, workdir)
    target = plain.parent / "infinispan-tls.xml"
    if not target.exists():
        text = plain.read_text()
        realm = '<security-realm name="default">'
        if realm not in text:
            raise RuntimeError(f"{source} has no security realm named default to give a TLS identity")
        identity = (
            '<server-identities><ssl><keystore path="bench-keystore.p12" '
            'relative-to="infinispan.server.config.path" keystore-password="bench-secret" '
            'generate-self-signed-certificate-host="localhost"/></ssl></server-identities>'
        )
        target.write_text(text.replace(realm, realm + identity, 1))
    return target


def _preload_hotrod(server: GridServer, scenario: Scenario, procs: int) -> None:
    spec = LoadSpec(
        server.host,
        server.port,
        "putall",
        4,
        depth=4,
        keyspace=scenario.keyspace,
        batch=500,
        sasl=_sasl(scenario),
        tls=scenario.tls,
    )
    loaded = drive(spec, processes=1, warmup_s=0, duration_s=120, entries=(0, scenario.keyspace))
    if loaded.errors or loaded.ops < scenario.keyspace:
        raise RuntimeError(f"preload stored {loaded.ops}/{scenario.keyspace}: {loaded.error_text}")


def run_hotrod(scenario: Scenario, server: GridServer, procs: int, record: Record) -> None:
    if scenario.op == "load":
        run_memory(scenario, server, procs, record)
        return
    if scenario.op == "get":
        _preload_hotrod(server, scenario, procs)
    spec = LoadSpec(
        server.host,
        server.port,
        scenario.op,
        scenario.connections,
        depth=scenario.pipeline,
        keyspace=scenario.keyspace,
        value_size=scenario.value_size,
        sasl=_sasl(scenario),
        tls=scenario.tls,
    )
    result = drive(spec, processes=procs, warmup_s=scenario.warmup_s, duration_s=scenario.duration_s)
    if result.errors:
        raise RuntimeError(f"{result.errors} error responses, first: {result.error_text}")
    record.ops_per_s = result.ops / scenario.duration_s
    record.p50_ms = result.percentile_ms(0.50)
    record.p99_ms = result.percentile_ms(0.99)
    record.extra.update(misses=result.misses, load_processes=min(procs, scenario.connections))


def run_memory(scenario: Scenario, server: GridServer, procs: int, record: Record) -> None:
    baseline = tree_rss_bytes(server.pid)
    spec = LoadSpec(
        server.host,
        server.port,
        "putall",
        scenario.connections,
        depth=scenario.pipeline,
        keyspace=scenario.entries,
        value_size=scenario.value_size,
        batch=1000,
    )
    result = drive(
        spec, processes=procs, warmup_s=0, duration_s=scenario.duration_s, entries=(0, scenario.entries)
    )
    if result.errors or result.ops < scenario.entries:
        raise RuntimeError(f"loaded {result.ops}/{scenario.entries}: {result.error_text}")
    time.sleep(1.0)  # let shard processes finish their last batches before measuring
    after = tree_rss_bytes(server.pid)
    payload = scenario.entries * (len(key_of(0)) + scenario.value_size)
    record.ops_per_s = result.ops / result.elapsed_s if result.elapsed_s else None
    record.p50_ms = result.percentile_ms(0.50)
    record.p99_ms = result.percentile_ms(0.99)
    record.extra.update(
        rss_before_mb=baseline / MB,
        rss_after_mb=after / MB,
        rss_growth_mb=(after - baseline) / MB,
        payload_mb=payload / MB,
        rss_growth_per_payload=(after - baseline) / payload,
        latency_unit="one PUT_ALL of 1000 entries",
    )


def run_rest(scenario: Scenario, server: GridServer, workdir: Path, record: Record) -> None:
    if not h2load_driver.available():
        raise _Skip("h2load not installed (scripts/install-bench-deps.sh)")
    keys = [key_of(i) for i in range(scenario.keyspace)]
    uris = h2load_driver.write_uris(
        workdir / "uris.txt", f"http://{server.host}:{server.port}", "default", keys
    )
    body = workdir / "value.bin"
    body.write_bytes(value_of(scenario.value_size))
    if scenario.op == "get":  # every key once, so the timed GETs hit
        h2load_driver.run_h2load(
            uris, connections=1, streams=16, workdir=workdir, requests=len(keys), put_body=body
        )
    result = h2load_driver.run_h2load(
        uris,
        connections=scenario.connections,
        streams=scenario.pipeline,
        workdir=workdir,
        duration_s=scenario.duration_s,
        warmup_s=scenario.warmup_s,
        put_body=body if scenario.op == "put" else None,
    )
    if result.failed:
        raise RuntimeError(f"{result.failed} failed requests, statuses {result.statuses}")
    record.ops_per_s = result.ops_per_s
    record.p50_ms = result.p50_ms
    record.p99_ms = result.p99_ms
    record.extra.update(http_statuses=result.statuses)


class _Skip(Exception):
    """The scenario cannot run here; the message is the reason."""


def run_node(scenario: Scenario, server: GridServer, record: Record) -> None:
    reason = node_driver.node_missing()
    if reason is not None:
        raise _Skip(reason)
    figures = node_driver.run_node_gets(
        server.host,
        server.port,
        seconds=scenario.duration_s,
        depth=scenario.pipeline,
        keys=scenario.keyspace,
        value_size=scenario.value_size,
    )
    if figures.wrong_values:
        raise RuntimeError(f"the Node client read {figures.wrong_values} wrong values")
    record.ops_per_s = figures.ops_per_s
    record.extra.update(client="npm infinispan (one connection)")


def run_scenario(
    scenario: Scenario, args: argparse.Namespace, workdir: Path, redis: RedisReference | None
) -> Record:
    record = Record(scenario.name, params=scenario.params())
    missing = scenario.missing()
    if missing:
        record.status = "skipped: " + "; ".join(CAPABILITY_REASONS.get(m, f"needs {m}") for m in missing)
        return record
    if scenario.tls:
        config = tls_config(args.auth_config, workdir)
    elif scenario.auth is not None:
        config = auth_config(args.auth_config, workdir)
    else:
        config = args.config
    log_path = workdir / f"{scenario.name}.log"
    server = GridServer(config, shards=scenario.shards, listeners=scenario.listeners, log_path=log_path)
    try:
        server.start()
        with RssSampler(server.pid) as rss:
            if scenario.protocol == "hotrod" and scenario.op == "node-get":
                run_node(scenario, server, record)
            elif scenario.protocol == "hotrod":
                run_hotrod(scenario, server, args.load_procs, record)
            else:
                run_rest(scenario, server, workdir, record)
        record.server_peak_rss_mb = rss.peak / MB
    except _Skip as skip:
        record.status = f"skipped: {skip}"
        return record
    except Exception as exc:
        record.status = f"failed: {type(exc).__name__}: {exc}"
        return record
    finally:
        code = server.stop()
        if code not in (0, None):
            record.extra["server_exit_code"] = code
    if redis is not None and scenario.op in ("get", "put", "node-get"):
        redis_op = "get" if scenario.op == "node-get" else scenario.op
        progress(f"    redis-benchmark -c {scenario.connections} -P {scenario.pipeline} -t {redis_op}")
        try:
            figures = redis.measure(
                redis_op,
                scenario.connections,
                scenario.pipeline,
                seconds=scenario.duration_s,
                keyspace=scenario.keyspace,
                value_size=scenario.value_size,
            )
        except Exception as exc:  # the gridactor figures stand without the reference
            record.extra["redis_error"] = f"{type(exc).__name__}: {exc}"
            return record
        record.redis_ops_per_s = figures.ops_per_s
        record.redis_p50_ms = figures.p50_ms
        record.redis_p99_ms = figures.p99_ms
        if record.ops_per_s is not None and figures.ops_per_s:
            record.ratio_to_redis = record.ops_per_s / figures.ops_per_s
    return record


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    shard_counts = [int(n) for n in args.shards.split(",") if n.strip()]
    scenarios = [s for s in select(mode, shard_counts) if _matches(s.name, args.only)]
    if not scenarios:
        progress(f"no scenario matches {args.only!r}")
        return 2
    stamp = time.strftime("%Y%m%d-%H%M%S")
    redis: RedisReference | None = None
    records: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="gridactor-bench-") as tmp:
        workdir = Path(tmp)
        if not args.no_redis and redis_ref.available():
            redis = RedisReference(workdir)
            redis.start()
        elif not args.no_redis:
            progress(
                "redis-server/redis-benchmark not installed: no Redis reference "
                "(scripts/install-bench-deps.sh)"
            )
        try:
            for index, scenario in enumerate(scenarios, 1):
                progress(f"[{index}/{len(scenarios)}] {scenario.name} ...")
                started = time.monotonic()
                record = run_scenario(scenario, args, workdir, redis)
                records.append(record)
                outcome = (
                    f"{record.ops_per_s:,.0f} ops/s"
                    if record.status == "ok" and record.ops_per_s
                    else record.status
                )
                progress(f"    {outcome}  ({time.monotonic() - started:.1f} s)")
        finally:
            if redis is not None:
                redis.stop()
    meta: dict[str, object] = {
        "timestamp": stamp,
        "mode": mode,
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_processes": args.load_procs,
        "redis_version": redis_ref.version() if redis is not None else None,
        "h2load_version": h2load_driver.version(),
    }
    doc = report.document(records, meta)
    path = report.write_json(doc, args.results, stamp)
    print(report.table(records))
    print(f"\nresults: {path}")
    image = report.plot(records, args.results, stamp)
    print(f"plot: {image}" if image else "plot: skipped (matplotlib not installed, or no scenario ran)")
    return 1 if any(r.status.startswith("failed") for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
