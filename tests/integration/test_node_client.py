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


@pytest.mark.parametrize("version", ["4.1", "3.1"])
def test_counters_strong_bounded_and_weak(server: RunningServer, version: str) -> None:
    ops = results(run_node_ops(server.port, only="counters", version=version, prefix=f"v{version}-"))
    assert ops["counter:isDefined-before"] is False
    assert ops["counter:get-undefined"] is None
    assert ops["counter:create-strong"] is True
    assert ops["counter:create-again"] is False
    assert ops["counter:isDefined"] is True
    assert ops["counter:config-strong"] == {"type": "strong", "storage": "volatile", "initialValue": 10}
    assert ops["counter:get"] == 10
    assert ops["counter:addAndGet"] == 15
    assert ops["counter:addAndGet-negative"] == -5
    assert ops["counter:cas-hit"] == -5  # the value before: equal to "expect", so swapped
    assert ops["counter:cas-miss"] == 100  # not 7: nothing changed
    assert ops["counter:getAndSet"] == 100
    assert ops["counter:reset"] is True
    assert ops["counter:after-reset"] == 10
    assert ops["counter:create-bounded"] is True
    assert ops["counter:config-bounded"] == {
        "type": "strong", "storage": "persistent", "lowerBound": 0, "upperBound": 3, "initialValue": 1,
    }
    assert ops["counter:bounded-add"] == 3
    assert "Upper bound reached" in ops["counter:bounded-over"]["error"]
    assert ops["counter:bounded-at-bound"] == 3
    assert "Upper bound reached" in ops["counter:bounded-cas-over"]["error"]
    assert "Lower bound reached" in ops["counter:bounded-set-under"]["error"]
    assert ops["counter:after-refusals"] == 3
    assert "ISPN029508" in ops["counter:create-invalid"]["error"]
    assert ops["counter:create-weak"] is True
    assert ops["counter:config-weak"] == {
        "type": "weak", "storage": "volatile", "concurrencyLevel": 8, "initialValue": 2,
    }
    assert ops["counter:weak-add"] == 0  # a weak counter's add reports no value (Infinispan)
    assert ops["counter:weak-get"] == 5
    assert "Expected=STRONG" in ops["counter:weak-cas"]["error"]
    assert ops["counter:remove"] is True
    # Infinispan's remove keeps the definition: the counter is back at its initial value.
    assert ops["counter:after-remove"] == {"defined": True, "value": 2}
    assert ops["counter:remove-undefined"] is False
    assert ops["counter:config-undefined"] is None
    assert ops["counter:pipeline"] == {"distinct": 200, "last": 210}
    assert ops["counter:after-counters"] is None


@pytest.mark.parametrize("version", ["4.1", "3.1"])
def test_multimap_operations(server: RunningServer, version: str) -> None:
    ops = results(run_node_ops(server.port, only="multimap", version=version, prefix=f"v{version}-"))
    assert ops["multimap:get-missing"] == []
    assert ops["multimap:put-a"] is None
    assert ops["multimap:put-b"] is None
    assert ops["multimap:put-a-again"] is None  # no duplicates: the bucket is a set
    assert ops["multimap:get"] == ["a", "b"]
    assert ops["multimap:size"] == 3
    assert ops["multimap:containsKey"] is True
    assert ops["multimap:containsKey-missing"] is False
    assert ops["multimap:containsEntry"] is True
    assert ops["multimap:containsEntry-missing"] is False
    assert ops["multimap:containsValue"] is True
    assert ops["multimap:containsValue-missing"] is False
    assert ops["multimap:removeEntry"] is True
    assert ops["multimap:removeEntry-missing"] is False
    assert ops["multimap:after-removeEntry"] == ["b"]
    assert ops["multimap:removeKey"] is True
    assert ops["multimap:removeKey-missing"] is False
    assert ops["multimap:size-after"] == 1
    assert ops["multimap:plain-get-unaffected"] is None  # buckets are not plain entries
    assert ops["multimap:after-multimap"] is None
