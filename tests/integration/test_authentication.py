"""Authentication against a property realm: the official Node client (SASL) and curl/httpx (HTTP).

Users are created with the real `gridactor user create` in a copy of the configuration.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, USERS, RunningServer, make_server_root, start_server
from tests.integration.curl import curl
from tests.integration.node_client import results, run_node_ops

pytestmark = pytest.mark.integration

ALICE = USERS[0]
UNICODE_USER = USERS[2]
EXAMPLES = ROOT / "config" / "examples"


def node_auth(mechanism: str, user: str, password: str) -> str:
    return json.dumps({"enabled": True, "saslMechanism": mechanism, "userName": user, "password": password})


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The shipped default configuration (spec 4.3.1), hashed users."""
    tmp = tmp_path_factory.mktemp("default")
    running = start_server(tmp, config=make_server_root(tmp, ROOT / "config" / "infinispan.xml"))
    yield running
    assert running.stop() == 0, running.log()


@pytest.fixture(scope="module")
def explicit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Spec 4.3.2.1 (every password mechanism, server-name infinispan) and 4.3.3.1 (DIGEST BASIC)."""
    tmp = tmp_path_factory.mktemp("explicit")
    config = (EXAMPLES / "hotrod-scram-digest-plain.xml").read_text()
    rest = (EXAMPLES / "rest-basic-digest.xml").read_text()
    assert "<rest-connector" not in config
    end = rest.index("</rest-connector>") + len("</rest-connector>")
    rest_connector = rest[rest.index("<rest-connector") : end]
    config = config.replace("</endpoints>", rest_connector + "</endpoints>")
    source = tmp / "source.xml"
    source.write_text(config)
    running = start_server(tmp, config=make_server_root(tmp, source))
    yield running
    assert running.stop() == 0, running.log()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-512", "DIGEST-MD5"])
def test_node_client_authenticates_with_the_default_offer(
    default_server: RunningServer, mechanism: str
) -> None:
    report = run_node_ops(
        default_server.port, only="seed,read-shared", auth=node_auth(mechanism, ALICE.name, ALICE.password)
    )
    assert report.get("connect_error") is None, report
    assert results(report) == {"seed": None, "read-shared": "from-node"}


def test_unicode_user_name_and_password(default_server: RunningServer) -> None:
    auth = node_auth("SCRAM-SHA-256", UNICODE_USER.name, UNICODE_USER.password)
    report = run_node_ops(default_server.port, only="seed", auth=auth)
    assert results(report) == {"seed": None}


def test_plain_is_not_offered_without_tls(default_server: RunningServer) -> None:
    auth = node_auth("PLAIN", ALICE.name, ALICE.password)
    report = run_node_ops(default_server.port, only="seed", auth=auth)
    assert "PLAIN is not among the supported server mechanisms" in report["connect_error"]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "DIGEST-MD5"])
def test_wrong_password_says_only_that_authentication_failed(
    default_server: RunningServer, mechanism: str
) -> None:
    guess = "Gue55-that-is-wrong-917"
    report = run_node_ops(default_server.port, only="seed", auth=node_auth(mechanism, ALICE.name, guess))
    assert report["connect_error"] == "java.lang.SecurityException: ISPN006024: Authentication failed"
    unknown = run_node_ops(default_server.port, only="seed", auth=node_auth(mechanism, "nobody", guess))
    assert unknown["connect_error"] == report["connect_error"]
    assert guess not in default_server.log()
    assert ALICE.password not in default_server.log()


def test_operations_before_authentication_are_refused(default_server: RunningServer) -> None:
    ops = results(run_node_ops(default_server.port, only="seed"))
    refused = "java.lang.SecurityException: ISPN006017: Operation 'PUT' requires authentication"
    assert ops["seed"] == {"error": refused}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-384", "DIGEST-MD5"])
def test_explicit_mechanisms_and_server_name(explicit_server: RunningServer, mechanism: str) -> None:
    # The Node client's digest-uri is hotrod/infinispan: server-name="infinispan" accepts it.
    auth = node_auth(mechanism, ALICE.name, ALICE.password)
    report = run_node_ops(explicit_server.port, only="seed", auth=auth)
    assert results(report) == {"seed": None}, report


def test_rest_without_credentials_gets_one_challenge_per_mechanism(explicit_server: RunningServer) -> None:
    with httpx.Client(timeout=10) as client:
        got = client.get(f"{explicit_server.base_url}/rest/v2/caches")
    assert got.status_code == 401
    challenges = got.headers.get_list("www-authenticate")
    assert len(challenges) == 2
    assert challenges[0].startswith('Digest realm="default", nonce="')
    assert challenges[0].endswith('opaque="00000000000000000000000000000000", algorithm=MD5, qop=auth')
    assert challenges[1] == 'Basic realm="default"'



@pytest.mark.parametrize("flags", [("--http1.1",), ("--http2",)], ids=["http1.1", "h2c-upgrade"])
@pytest.mark.parametrize("scheme", ["--digest", "--basic"])
def test_curl_digest_and_basic(explicit_server: RunningServer, flags: tuple[str, ...], scheme: str) -> None:
    url = f"{explicit_server.base_url}/rest/v2/caches/default/rest-{scheme[2:]}"
    creds = ("-u", f"{ALICE.name}:{ALICE.password}", scheme)
    assert curl(url, *flags, *creds, "-X", "PUT", "--data-binary", "v").status == 204
    got = curl(url, *flags, *creds)
    assert (got.status, got.body) == (200, b"v")
    bad = curl(url, *flags, "-u", f"{ALICE.name}:wrong", scheme)
    assert bad.status == 401


def test_digest_over_http2_prior_knowledge_with_httpx(explicit_server: RunningServer) -> None:
    # curl 7.88.1 (Debian 12) cannot reuse a prior-knowledge h2c connection (curl issue
    # 10634), which Digest needs for its second request; httpx is the independent client here.
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        auth = httpx.DigestAuth(ALICE.name, ALICE.password)
        put = client.put(
            f"{explicit_server.base_url}/rest/v2/caches/default/h2-digest", content=b"x", auth=auth
        )
        assert put.status_code == 204
        assert put.http_version == "HTTP/2"
        got = client.get(f"{explicit_server.base_url}/rest/v2/caches/default/h2-digest", auth=auth)
        assert (got.status_code, got.content) == (200, b"x")


def test_digest_uri_must_match_the_request(explicit_server: RunningServer) -> None:
    # CVE-2021-31917 class: a proof for another URI never runs this request.
    header = (
        'Digest username="h4ck0rz", realm="default", nonce="AAAA", uri="/backdoor", '
        'response="00000000000000000000000000000000", qop=auth, nc=00000001, cnonce="x"'
    )
    got = curl(f"{explicit_server.base_url}/rest/v2/caches", "-H", f"Authorization: {header}")
    assert got.status == 400


def test_anonymous_routes_stay_open(default_server: RunningServer) -> None:
    assert curl(f"{default_server.base_url}/rest/v2/server").status == 200
    assert curl(f"{default_server.base_url}/rest/v2/cache-managers/default/health/status").status == 200
    assert curl(f"{default_server.base_url}/rest/v2/caches").status == 401


def test_users_file_changes_apply_without_restart(tmp_path: Path) -> None:
    config = make_server_root(tmp_path, ROOT / "config" / "infinispan.xml", users=USERS[:1])
    running = start_server(tmp_path, config=config)
    try:
        auth = node_auth("SCRAM-SHA-256", "carol", "carol-Secret3")
        assert "ISPN006024" in run_node_ops(running.port, only="seed", auth=auth)["connect_error"]
        make_server_root(tmp_path, config, users=[USERS[0].__class__("carol", "carol-Secret3")])
        report = run_node_ops(running.port, only="seed", auth=auth)
        assert results(report) == {"seed": None}, report
        # A broken file keeps the last good users (nobody is locked out).
        users_file = config.parent / "users.properties"
        users_file.write_text(users_file.read_text() + "this line is not a property\n")
        report = run_node_ops(running.port, only="seed", auth=auth)
        assert results(report) == {"seed": None}, report
        assert "users.properties:" in running.log()
    finally:
        assert running.stop() == 0, running.log()


def test_digest_sha256_for_rest(tmp_path: Path) -> None:
    source = (ROOT / "config" / "examples" / "rest-basic-digest.xml").read_text()
    assert 'mechanisms="DIGEST BASIC"' in source
    config = tmp_path / "sha256.xml"
    config.write_text(source.replace('mechanisms="DIGEST BASIC"', 'mechanisms="DIGEST-SHA-256"'))
    running = start_server(tmp_path, config=make_server_root(tmp_path, config, USERS[:1]))
    try:
        url = f"{running.base_url}/rest/v2/caches/default/sha"
        creds = ("--digest", "-u", f"{ALICE.name}:{ALICE.password}")
        assert curl(url, *creds, "-X", "PUT", "--data-binary", "256").status == 204
        got = curl(url, *creds)
        assert (got.status, got.body) == (200, b"256")
        challenge = curl(url).headers["www-authenticate"]
        assert challenge.endswith("algorithm=SHA-256, qop=auth")
    finally:
        assert running.stop() == 0, running.log()
