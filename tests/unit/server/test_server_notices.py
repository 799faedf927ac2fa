"""What a server process does with the notices other processes send through the shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridactor.cache.messages import Notice
from gridactor.config.loader import load_config
from gridactor.security.authorization import Authorizer, policy_from_config
from gridactor.server.app import RunOptions, Server
from gridactor.server.context import ACL_FLUSH_NOTICE
from gridactor.server.workers import WorkerSpec, WorkerStartError

ROOT = Path(__file__).resolve().parents[3]


def _server() -> Server:
    config = load_config(str(ROOT / "config" / "infinispan.xml"), {})
    server = Server(config, RunOptions())
    policy, mapper = policy_from_config(config.cache_container, str(config.source))
    server.authorizer = Authorizer(policy, mapper)
    return server


def test_an_acl_flush_notice_flushes_this_process() -> None:
    server = _server()
    assert server.authorizer is not None
    before = server.authorizer.generation
    server._on_notice(Notice(ACL_FLUSH_NOTICE, b""))
    assert server.authorizer.generation == before + 1


def test_an_unknown_notice_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    server = _server()
    assert server.authorizer is not None
    before = server.authorizer.generation
    server._on_notice(Notice("something-else", b""))
    assert server.authorizer.generation == before
    assert "unknown notice 'something-else'" in caplog.text


def test_worker_spec_round_trips_and_refuses_garbage() -> None:
    spec = WorkerSpec(
        index=1,
        config_path="/etc/x.xml",
        properties={"a": "b"},
        bind_address=None,
        endpoint_ports=(11222, 11223),
        shard_addresses=("gridactor-1-x-shard-0",),
        grace_s=5.0,
        log_level=20,
    )
    assert WorkerSpec.from_wire(spec.to_wire()) == spec
    with pytest.raises(WorkerStartError, match="malformed worker spec"):
        WorkerSpec.from_wire({"index": 1})
    with pytest.raises(WorkerStartError, match="must be a map"):
        WorkerSpec.from_wire([1, 2])
