"""The LDAP realm end to end: a real OpenLDAP, a real `gridactor run`, real clients.

The official Node client drives Hot Rod (PLAIN through direct verification, SCRAM and
DIGEST from the clear userPassword the password mapper reads), curl drives REST (BASIC,
DIGEST), and `GET /rest/v2/security/user/acl` shows the groups the directory gave as roles.
The outage test takes its own directory away and brings it back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, RunningServer, start_server
from tests.fixtures.slapd import Slapd, start_slapd
from tests.fixtures.slapd import slapd as slapd  # the session fixture, by name
from tests.integration.curl import curl
from tests.integration.node_client import results, run_node_ops

pytestmark = pytest.mark.integration

TEMPLATE = ROOT / "tests" / "data" / "ldap" / "server.xml"
MAPPER = '<user-password-mapper from="userPassword"/>'


def write_config(folder: Path, url: str, *, direct: bool = True, mapper: bool = True) -> Path:
    text = TEMPLATE.read_text().replace("@URL@", url).replace("@DIRECT@", str(direct).lower())
    path = folder / "infinispan.xml"
    path.write_text(text.replace("@MAPPER@", MAPPER if mapper else ""))
    return path


def node_auth(mechanism: str, user: str, password: str) -> str:
    return json.dumps({"enabled": True, "saslMechanism": mechanism, "userName": user, "password": password})


@pytest.fixture(scope="module")
def ldap_server(slapd: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("ldap-server")
    running = start_server(tmp, config=write_config(tmp, slapd.url))
    yield running
    assert running.stop() == 0, running.log()


@pytest.fixture(scope="module")
def direct_only_server(slapd: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("ldap-direct")
    running = start_server(tmp, config=write_config(tmp, slapd.url, mapper=False))
    yield running
    assert running.stop() == 0, running.log()


def acl_roles(server: RunningServer, *curl_auth: str) -> set[str]:
    answer = curl(f"{server.base_url}/rest/v2/security/user/acl", *curl_auth)
    assert answer.status == 200, answer
    subject = json.loads(answer.body)["subject"]
    return {s["name"] for s in subject if s["type"] == "RolePrincipal"}


# ---------------------------------------------------------------- Hot Rod (Node client)


def test_node_plain_scram_and_digest(ldap_server: RunningServer) -> None:
    admin = run_node_ops(ldap_server.port, only="seed", auth=node_auth("PLAIN", "admin", "strongPassword"))
    assert results(admin) == {"seed": None}, admin
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512", "DIGEST-MD5"):
        report = run_node_ops(
            ldap_server.port, only="read-shared", auth=node_auth(mechanism, "observer", "password")
        )
        assert results(report) == {"read-shared": "from-node"}, (mechanism, report)


def test_node_rewritten_name_and_unicode_user(ldap_server: RunningServer) -> None:
    report = run_node_ops(
        ldap_server.port,
        only="read-shared",
        auth=node_auth("PLAIN", "admin@INFINISPAN.ORG", "strongPassword"),
    )
    assert results(report) == {"read-shared": "from-node"}, report
    unicode_user = run_node_ops(
        ldap_server.port, only="read-shared", auth=node_auth("SCRAM-SHA-256", "ключ", "pässwörd-Ω")
    )
    assert unicode_user.get("connect_error") is None, unicode_user
    assert "lacks 'READ' permission" in str(results(unicode_user)["read-shared"])  # role 'unicode' has none


def test_hashed_password_serves_plain_but_not_scram(ldap_server: RunningServer) -> None:
    plain = run_node_ops(ldap_server.port, only="seed", auth=node_auth("PLAIN", "writer", "writerPassword"))
    assert plain.get("connect_error") is None, plain
    assert results(plain) == {"seed": None}  # role writer: WRITE
    scram = run_node_ops(
        ldap_server.port, only="seed", auth=node_auth("SCRAM-SHA-256", "writer", "writerPassword")
    )
    assert scram.get("connect_error"), scram


@pytest.mark.parametrize(("user", "password"), [("admin", "wrong"), ("admin", ""), ("*", "strongPassword")])
def test_node_bad_logins_fail(ldap_server: RunningServer, user: str, password: str) -> None:
    report = run_node_ops(ldap_server.port, only="seed", auth=node_auth("PLAIN", user, password))
    assert report.get("connect_error"), report


def test_direct_verification_alone_offers_plain_only(direct_only_server: RunningServer) -> None:
    ok = run_node_ops(
        direct_only_server.port, only="seed", auth=node_auth("PLAIN", "admin", "strongPassword")
    )
    assert results(ok) == {"seed": None}, ok
    scram = run_node_ops(
        direct_only_server.port, only="seed", auth=node_auth("SCRAM-SHA-256", "admin", "strongPassword")
    )
    assert "SCRAM-SHA-256 is not among the supported server mechanisms" in scram["connect_error"]
    log = direct_only_server.log()
    assert "mechanism SCRAM-SHA-256 is not offered" in log
    assert "mechanism DIGEST is not offered" in log


# ---------------------------------------------------------------- REST (curl)


def test_curl_basic_and_digest_with_roles_from_the_directory(ldap_server: RunningServer) -> None:
    assert acl_roles(ldap_server, "--basic", "-u", "admin:strongPassword") == {"admin", "superusers"}
    assert acl_roles(ldap_server, "--digest", "-u", "observer:password") == {"observer"}
    assert acl_roles(ldap_server, "--basic", "-u", "star*user:starPassword") == {"writer"}
    for auth in ("admin:wrong", "admin:", "*:strongPassword", "admin)(uid=*:strongPassword"):
        answer = curl(f"{ldap_server.base_url}/rest/v2/security/user/acl", "--basic", "-u", auth)
        assert answer.status == 401, auth


# ---------------------------------------------------------------- outage


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[tuple[Slapd, RunningServer]]:
    directory = start_slapd(tmp_path / "slapd")
    running = start_server(tmp_path, config=write_config(tmp_path, directory.url))
    yield directory, running
    running.stop()
    directory.stop()


def test_outage_fails_fast_and_recovers(outage: tuple[Slapd, RunningServer]) -> None:
    directory, server = outage
    url = f"{server.base_url}/rest/v2/security/user/acl"
    with httpx.Client(auth=("admin", "strongPassword"), timeout=10) as logged_in:
        assert logged_in.get(url).status_code == 200
        directory.stop()
        started = time.monotonic()
        with httpx.Client(auth=("observer", "password"), timeout=10) as newcomer:
            assert newcomer.get(url).status_code == 503
        assert time.monotonic() - started < 3.0  # refused connections: no wait at all
        # The connection that authenticated before the outage keeps working.
        assert logged_in.get(url).status_code == 200
        node = run_node_ops(server.port, only="seed", auth=node_auth("PLAIN", "observer", "password"))
        assert node.get("connect_error"), node
        assert "LDAP realm 'default': directory unreachable" in server.log()
        directory.start()
        with httpx.Client(auth=("observer", "password"), timeout=10) as newcomer:
            assert newcomer.get(url).status_code == 200
    assert "answers again" in server.log()
