"""REST v2 with curl over HTTP/1.1, h2c prior knowledge and the h2c upgrade, on the Hot Rod port."""

from __future__ import annotations

import json

import pytest

from tests.conftest import RunningServer
from tests.integration.curl import curl
from tests.integration.node_client import results, run_node_ops

pytestmark = pytest.mark.integration

MODES = {
    "http1.1": ("--http1.1",),
    "h2c-prior-knowledge": ("--http2-prior-knowledge",),
    "h2c-upgrade": ("--http2",),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_put_get_delete(server: RunningServer, mode: str) -> None:
    flags = MODES[mode]
    url = f"{server.base_url}/rest/v2/caches/default/greeting-{mode}"
    put = curl(url, *flags, "-X", "PUT", "-H", "Content-Type: text/plain", "--data-binary", "hello")
    assert put.status == 204
    got = curl(url, *flags)
    assert got.status == 200
    assert got.body == b"hello"
    assert got.headers["content-type"].startswith("text/plain")
    expected_version = "HTTP/1.1" if mode == "http1.1" else "HTTP/2"
    assert got.http_version == expected_version
    assert curl(url, *flags, "-X", "POST", "--data-binary", "again").status == 409
    assert curl(url, *flags, "-X", "DELETE").status == 204
    assert curl(url, *flags).status == 404


def test_cache_list_server_and_health(server: RunningServer) -> None:
    caches = curl(f"{server.base_url}/rest/v2/caches", "--http2-prior-knowledge")
    assert caches.status == 200
    assert "default" in json.loads(caches.body)
    info = curl(f"{server.base_url}/rest/v2/server", "--http2-prior-knowledge")
    assert info.status == 200
    assert "version" in json.loads(info.body)
    health = curl(f"{server.base_url}/rest/v2/cache-managers/default/health/status")
    assert health.status == 200
    assert health.body.strip() == b"HEALTHY"


def test_create_cache_with_json_then_use_and_delete(server: RunningServer) -> None:
    base = f"{server.base_url}/rest/v2/caches/made-by-rest"
    body = json.dumps({"local-cache": {"expiration": {"lifespan": 60000}}})
    created = curl(base, "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body)
    assert created.status == 200, created.body
    again = curl(base, "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body)
    assert again.status == 400
    assert curl(f"{base}/k", "-X", "PUT", "--data-binary", "v").status == 204
    assert json.loads(curl(f"{base}?action=size").body) == 1
    keys = json.loads(curl(f"{base}?action=keys").body)
    assert keys == ["k"]
    assert curl(base, "-X", "DELETE").status == 200
    assert curl(f"{base}/k").status == 404


def test_errors_have_reasons(server: RunningServer) -> None:
    missing = curl(f"{server.base_url}/rest/v2/caches/nope/k")
    assert missing.status == 404
    assert b"ISPN012010" in missing.body
    assert curl(f"{server.base_url}/rest/v2/caches/default?action=").status == 400
    assert curl(f"{server.base_url}/rest/v2/caches/default?action=bogus").status == 400
    assert curl(f"{server.base_url}/rest/v2/nothing-here").status == 404
    assert curl(f"{server.base_url}/rest/v2/server", "-X", "DELETE").status == 405


def test_one_store_for_hot_rod_and_rest(server: RunningServer) -> None:
    ops = results(run_node_ops(server.port, only="seed"))
    assert ops["seed"] is None
    got = curl(f"{server.base_url}/rest/v2/caches/default/node-shared", "--http2-prior-knowledge")
    assert got.status == 200
    assert got.body == b"from-node"
    put = curl(
        f"{server.base_url}/rest/v2/caches/default/rest-shared",
        "-X", "PUT", "-H", "Content-Type: text/plain", "--data-binary", "from-curl",
    )
    assert put.status == 204
    ops = results(run_node_ops(server.port, only="read-shared", prefix="rest-"))
    assert ops["read-shared"] == "from-curl"
