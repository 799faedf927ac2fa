"""The official Node.js Hot Rod client (npm `infinispan` 0.16.3) against a real server."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer
from tests.integration.node_client import prev_value, results, run_node_ops

pytestmark = [pytest.mark.integration, pytest.mark.node]


def assert_basic_operations(ops: dict[str, object]) -> None:
    assert "error" not in str(ops.get("ping")), ops
    assert ops["put"] is None
    assert ops["get"] == "v1"
    assert ops["get-missing"] is None
    assert prev_value(ops["put-previous"]) == "v1"
    assert ops["containsKey"] is True
    assert ops["containsKey-missing"] is False
    assert ops["putIfAbsent-present"] is False
    assert ops["putIfAbsent-absent"] is True
    assert prev_value(ops["putIfAbsent-previous"]) == "v2"
    assert ops["replace"] is True
    assert ops["replace-missing"] is False
    assert prev_value(ops["replace-previous"]) == "v3"
    meta = ops["getWithMetadata"]
    assert meta == {"value": "v4", "versionLength": 8, "lifespan": -1, "maxIdle": -1}
    assert ops["replaceWithVersion"] == {"ok": True, "stale": False, "now": "v5"}
    assert ops["removeWithVersion"] == {"stale": False, "ok": True, "now": True}
    assert ops["remove"] is True
    assert ops["remove-missing"] is False
    assert prev_value(ops["remove-previous"]) == "v3"
    assert ops["putAll"] is None
    assert ops["getAll"] == [
        {"key": "node-a", "value": "1"},
        {"key": "node-b", "value": "2"},
        {"key": "node-c", "value": "3"},
    ]
    assert ops["size"] == 3
    assert ops["iterator"] == [["node-a", "1"], ["node-b", "2"], ["node-c", "3"]]
    stats = ops["stats"]
    assert isinstance(stats, dict)
    assert stats["currentNumberOfEntries"] == 3
    assert stats["stores"] >= 8
    assert stats["hits"] >= 1
    assert stats["misses"] >= 1
    lifespan = ops["lifespan"]
    assert lifespan == {"before": "gone-soon", "lifespan": 0, "after": True}, lifespan
    assert ops["maxIdle"] == {"maxIdle": 1, "value": "v"}
    assert ops["clear-final"] is None
    assert ops["size-after-clear"] == 0


def test_auto_negotiates_41_and_serves_every_data_operation(server: RunningServer) -> None:
    report = run_node_ops(server.port)
    assert report["version"] == "4.1"
    assert_basic_operations(results(report))


@pytest.mark.parametrize("version", ["3.0", "3.1", "4.0"])
def test_forced_older_protocols(server: RunningServer, version: str) -> None:
    report = run_node_ops(server.port, version=version)
    assert report["version"] == version
    assert_basic_operations(results(report))


def test_unicode_big_values_and_pipelining(server: RunningServer) -> None:
    ops = results(run_node_ops(server.port, only="unicode,big,pipeline"))
    assert ops["unicode"] == "значение ✓"
    assert ops["big-value"] == 1 << 20
    assert ops["pipeline"] == 500


def test_unsupported_operation_is_an_error_and_the_connection_survives(server: RunningServer) -> None:
    ops = results(run_node_ops(server.port, only="unsupported"))
    assert "error" in ops["execute"]
    assert ops["after-unsupported"] is None or "error" not in str(ops["after-unsupported"])


def test_unknown_cache_stops_negotiation_with_cache_not_found(server: RunningServer) -> None:
    report = run_node_ops(server.port, cache="no-such-cache", only="basic")
    assert "CacheNotFoundException" in report["connect_error"]


def test_admin_tasks_create_list_and_remove_caches(server: RunningServer) -> None:
    ops = results(run_node_ops(server.port, only="admin"))
    assert ops["admin:create"] in (None, "")
    assert "ISPN000507" in ops["admin:create-again"]["error"]
    assert ops["admin:getOrCreate"] in (None, "")
    assert ops["admin:names"] is True
    assert ops["admin:remove"] in (None, "")
    assert ops["admin:names-after"] is False
    assert "not found" in ops["admin:remove-missing"]["error"]


def test_client_listeners_receive_create_modify_remove_events(server: RunningServer) -> None:
    result = results(run_node_ops(server.port, only="listener"))["listener"]
    assert "error" not in result, result
    assert result["removed"] is True
    # includeState delivers the existing entry first; versions are 8 bytes.
    assert result["seen"] == [
        ["create", "node-before", 8],
        ["create", "node-l1", 8],
        ["modify", "node-l1", 8],
        ["remove", "node-l1"],
        ["create", "node-l2", 8],
    ]
