"""Authorization against real servers: the whole matrix role, operation and protocol.

The expectations are generated from ``security/access.py`` (the one table of what each
Hot Rod opcode and REST route needs) and the roles of the spec's own example
configurations (4.5.2), loaded verbatim from config/examples/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gridactor.security.access import HOTROD, REST, Scope
from gridactor.security.permissions import Permission, implies
from tests.conftest import ROOT, GridUser, RunningServer, make_server_root, start_server
from tests.integration.curl import curl
from tests.integration.node_client import results, run_node_ops

pytestmark = pytest.mark.integration

# The spec's 4.5.2 roles, and one user per role (groups map to roles: identity-role-mapper
# with Infinispan 15's group-only mapping).
SPEC_ROLES = {
    "admin": Permission.ALL,
    "reader": Permission.READ,
    "writer": Permission.WRITE,
    "supervisor": Permission.READ | Permission.WRITE | Permission.EXEC,
}
USERS = {role: GridUser(f"{role}-user", f"{role}-Pass-1", (role,)) for role in SPEC_ROLES}
NOBODY = GridUser("nobody", "nobody-Pass-1", ())
CACHE = "secured"


def node_auth(user: GridUser) -> str:
    return json.dumps(
        {"enabled": True, "saslMechanism": "SCRAM-SHA-256", "userName": user.name, "password": user.password}
    )


@pytest.fixture(scope="module")
def spec_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("authz")
    config = make_server_root(
        tmp, ROOT / "config" / "examples" / "authorization.xml", [*USERS.values(), NOBODY]
    )
    running = start_server(tmp, config=config)
    yield running
    assert running.stop() == 0, running.log()


def expected_hotrod(role: str, opcode: int) -> bool:
    rule = HOTROD[opcode]
    return rule.scope is not Scope.CACHE or implies(int(SPEC_ROLES[role]), rule.permission)


@pytest.mark.parametrize("role", list(SPEC_ROLES))
def test_hotrod_matrix_with_the_node_client(spec_server: RunningServer, role: str) -> None:
    user = USERS[role]
    admin = node_auth(USERS["admin"])
    seeded = results(run_node_ops(spec_server.port, cache=CACHE, only="seed", auth=admin))
    assert seeded == {"seed": None}
    report = run_node_ops(spec_server.port, cache=CACHE, only="matrix", auth=node_auth(user))
    assert report.get("connect_error") is None, report
    checked = 0
    for name, outcome in report["ops"]:
        allowed = expected_hotrod(role, outcome["opcode"])
        permission = HOTROD[outcome["opcode"]].permission.name
        if allowed:
            assert "error" not in outcome, (role, name, outcome)
        else:
            assert "ISPN000287: Unauthorized access" in outcome["error"], (role, name, outcome)
            assert f"lacks '{permission}' permission" in outcome["error"], (role, name, outcome)
            assert f"RolePrincipal{{name='{role}'}}" in outcome["error"]
        checked += 1
    assert checked == 13
    # A denied request changed nothing: the admin still reads the seeded value.
    if not implies(int(SPEC_ROLES[role]), Permission.BULK_WRITE):
        after = results(run_node_ops(spec_server.port, cache=CACHE, only="read-shared", auth=admin))
        assert after == {"read-shared": "from-node"}


def test_a_user_without_roles_is_denied_everything_but_ping(spec_server: RunningServer) -> None:
    report = run_node_ops(spec_server.port, cache=CACHE, only="matrix", auth=node_auth(NOBODY))
    outcomes = dict(report["ops"])
    assert all("ISPN000287" in o["error"] for o in outcomes.values()), outcomes


def rest_call(
    client: httpx.Client, base: str, user: GridUser, method: str, path: str, **kw: Any
) -> httpx.Response:
    auth = httpx.DigestAuth(user.name, user.password)
    return client.request(method, f"{base}/rest/v2/{path}", auth=auth, **kw)


# (method, path as in the access table, concrete path, body)
REST_CALLS = [
    ("GET HEAD", "caches/{cache}/{key}", "GET", f"caches/{CACHE}/node-shared", None),
    ("PUT", "caches/{cache}/{key}", "PUT", f"caches/{CACHE}/rest-put", b"v"),
    ("POST", "caches/{cache}/{key}", "POST", f"caches/{CACHE}/rest-post-{{role}}", b"v"),
    ("DELETE", "caches/{cache}/{key}", "DELETE", f"caches/{CACHE}/rest-put", None),
    ("GET", "caches/{cache}", "GET", f"caches/{CACHE}?action=keys", None),
    ("GET", "caches/{cache}", "GET", f"caches/{CACHE}?action=entries", None),
    ("GET", "caches/{cache}", "GET", f"caches/{CACHE}?action=size", None),
    ("GET", "caches/{cache}", "GET", f"caches/{CACHE}?action=stats", None),
    ("GET", "caches/{cache}", "GET", f"caches/{CACHE}?action=config", None),
    ("POST", "caches/{cache}", "POST", "caches/made-by-{role}", b""),
    ("DELETE", "caches/{cache}", "DELETE", "caches/made-by-{role}", None),
]
ACTIONS = {"keys", "entries", "size", "stats", "config", "clear"}


def rest_rule(methods: str, path: str, concrete: str) -> Any:
    action = concrete.split("action=")[1] if "action=" in concrete else None
    return REST[(methods, path, action if action in ACTIONS else None)]


@pytest.mark.parametrize("role", list(SPEC_ROLES))
def test_rest_matrix_over_http2(spec_server: RunningServer, role: str) -> None:
    user = USERS[role]
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        base = spec_server.base_url
        seeded = rest_call(
            client, base, USERS["admin"], "PUT", f"caches/{CACHE}/node-shared", content=b"from-node"
        )
        assert seeded.status_code == 204
        for methods, path, method, concrete, body in REST_CALLS:
            concrete = concrete.replace("{role}", role)
            rule = rest_rule(methods, path, concrete)
            allowed = rule.scope not in (Scope.CACHE, Scope.CONTAINER) or implies(
                int(SPEC_ROLES[role]), rule.permission
            )
            got = rest_call(client, base, user, method, concrete, content=body)
            assert got.http_version == "HTTP/2"
            if allowed:
                assert got.status_code < 400 or got.status_code == 404, (role, method, concrete, got.text)
            else:
                assert got.status_code == 403, (role, method, concrete, got.status_code, got.text)
                assert f"lacks '{rule.permission.name}' permission" in got.text
        still = rest_call(client, base, USERS["admin"], "GET", f"caches/{CACHE}/node-shared")
        assert (still.status_code, still.content) == (200, b"from-node")


def test_rest_clear_needs_bulk_write_and_401_is_only_for_authentication(spec_server: RunningServer) -> None:
    with httpx.Client(timeout=10) as client:
        base = spec_server.base_url
        denied = rest_call(client, base, USERS["supervisor"], "POST", f"caches/{CACHE}?action=clear")
        assert denied.status_code == 403
        assert "lacks 'BULK_WRITE' permission" in denied.text
        anonymous = client.get(f"{base}/rest/v2/caches/{CACHE}/node-shared")
        assert anonymous.status_code == 401
        wrong = client.get(
            f"{base}/rest/v2/caches/{CACHE}/node-shared", auth=httpx.DigestAuth("reader-user", "nope")
        )
        assert wrong.status_code == 401


def test_acl_endpoint_reports_the_callers_permissions(spec_server: RunningServer) -> None:
    with httpx.Client(timeout=10) as client:
        acl = rest_call(client, spec_server.base_url, USERS["supervisor"], "GET", "security/user/acl").json()
    assert acl["subject"][0] == {"name": "supervisor-user", "type": "NamePrincipal"}
    assert {"name": "supervisor", "type": "RolePrincipal"} in acl["subject"]
    assert acl["caches"][CACHE] == ["READ", "WRITE", "EXEC"]
    assert acl["global"] == ["READ", "WRITE", "EXEC"]


def test_cache_configuration_is_for_admins_only(spec_server: RunningServer) -> None:
    with httpx.Client(timeout=10) as client:
        base = spec_server.base_url
        admin_view = rest_call(client, base, USERS["admin"], "GET", f"caches/{CACHE}").json()
        reader_view = rest_call(client, base, USERS["reader"], "GET", f"caches/{CACHE}").json()
    assert "configuration" in admin_view
    assert "configuration" not in reader_view


def test_per_cache_roles_hide_and_restrict(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("cache-roles")
    # Spec 4.5.2 second example: the cache admits only admin, supervisor and reader.
    source = ROOT / "config" / "examples" / "authorization-cache-roles.xml"
    running = start_server(tmp, config=make_server_root(tmp, source, [*USERS.values()]))
    try:
        writer = node_auth(USERS["writer"])
        report = run_node_ops(running.port, cache=CACHE, only="seed", auth=writer)
        assert "lacks 'WRITE' permission" in results(report)["seed"]["error"]
        with httpx.Client(timeout=10) as client:
            listed = rest_call(client, running.base_url, USERS["writer"], "GET", "caches").json()
            assert CACHE not in listed
            listed = rest_call(client, running.base_url, USERS["reader"], "GET", "caches").json()
            assert CACHE in listed
        supervisor = results(
            run_node_ops(running.port, cache=CACHE, only="seed", auth=node_auth(USERS["supervisor"]))
        )
        assert supervisor == {"seed": None}
    finally:
        assert running.stop() == 0, running.log()


@pytest.mark.parametrize("flags", [("--http1.1",), ("--http2",)], ids=["http1.1", "h2c-upgrade"])
def test_curl_sees_the_same_decisions(spec_server: RunningServer, flags: tuple[str, ...]) -> None:
    reader = USERS["reader"]
    creds = ("--digest", "-u", f"{reader.name}:{reader.password}")
    url = f"{spec_server.base_url}/rest/v2/caches/{CACHE}"
    denied = curl(f"{url}/curl-key", *flags, *creds, "-X", "PUT", "--data-binary", "v")
    assert denied.status == 403
    assert b"lacks 'WRITE' permission" in denied.body
    assert curl(f"{url}?action=keys", *flags, *creds).status == 403  # CVE-2023-3628 class
    assert curl(f"{url}?action=config", *flags, *creds).status == 403  # CVE-2023-3629 class
    assert curl(f"{url}/node-shared", *flags, *creds).status in (200, 404)


def test_hotrod_admin_tasks_need_create(spec_server: RunningServer) -> None:
    supervisor = results(
        run_node_ops(spec_server.port, cache=CACHE, only="admin", auth=node_auth(USERS["supervisor"]))
    )
    assert "lacks 'CREATE' permission" in supervisor["admin:create"]["error"]
    assert supervisor["admin:names"] is False  # listing is allowed; the cache was never made
    admin = results(run_node_ops(spec_server.port, cache=CACHE, only="admin", auth=node_auth(USERS["admin"])))
    assert admin["admin:create"] in (None, "")
    assert admin["admin:names-after"] is False
