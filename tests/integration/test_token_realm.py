"""The token realm against a real OAuth 2.0 authorization server (oidc-provider on loopback).

Realm level: RFC 7662 introspection, identities and groups from token claims, expiry,
revocation, the audience the AS enforces, fail-closed outages. Server level: SASL
OAUTHBEARER through gridactor's own Hot Rod client, HTTP Bearer with curl over HTTP/1.1
and HTTP/2 (prior knowledge), and role-based access from token roles.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from gridactor.client.hotrod import HotRodAuthenticationError, open_hotrod_client
from gridactor.client.oauthbearer import OAuthBearerClient
from gridactor.security.realms.token import (
    AuthorizationServerUnavailableError,
    IntrospectionValidator,
    TokenRealm,
)
from gridactor.security.sasl.oauthbearer import TokenAccepted, TokenRejected
from tests.conftest import RunningServer, start_server
from tests.integration.curl import curl
from tests.integration.oauth_server import RESOURCE_SERVER, AuthServer, start_auth_server

pytestmark = pytest.mark.integration

CONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<infinispan xmlns="urn:infinispan:config:15.0">
   <cache-container name="default" default-cache="default">
      <security>
         <authorization>
            <identity-role-mapper/>
            <role name="admin" permissions="ALL"/>
            <role name="observer" permissions="READ"/>
         </authorization>
      </security>
      <local-cache name="default"><security><authorization/></security></local-cache>
   </cache-container>
   <server xmlns="urn:infinispan:server:15.0">
      <interfaces>
         <interface name="public"><inet-address value="127.0.0.1"/></interface>
      </interfaces>
      <socket-bindings default-interface="public" port-offset="0">
         <socket-binding name="default" port="11222"/>
      </socket-bindings>
      <security>
         <security-realms>
            <security-realm name="token-realm" cache-lifespan="{lifespan}">
               <token-realm name="token" auth-server-url="{issuer}" principal-claim="{claim}">
                  <oauth2-introspection introspection-url="{introspection}"
                     client-id="infinispan-server" client-secret="infinispan-secret"
                     connection-timeout="1s" read-timeout="1s"/>
               </token-realm>
            </security-realm>
         </security-realms>
      </security>
      <endpoints socket-binding="default" security-realm="token-realm"/>
   </server>
</infinispan>
"""


def write_config(tmp: Path, auth: AuthServer, *, lifespan: str = "60s", claim: str = "username") -> Path:
    path = tmp / "infinispan.xml"
    path.write_text(
        CONFIG.format(
            issuer=auth.issuer, introspection=auth.introspection_endpoint, lifespan=lifespan, claim=claim
        )
    )
    return path


@pytest.fixture(scope="session")
def auth_server() -> Iterator[AuthServer]:
    running = start_auth_server()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def token_server(
    tmp_path_factory: pytest.TempPathFactory, auth_server: AuthServer
) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("token")
    running = start_server(tmp, config=write_config(tmp, auth_server))
    yield running
    assert running.stop() == 0, running.log()


@pytest.fixture(scope="module")
def rest_server(tmp_path_factory: pytest.TempPathFactory, auth_server: AuthServer) -> Iterator[RunningServer]:
    """A server of its own for the curl tests: the Hot Rod failures of the other tests
    would otherwise have the failure throttle slow down their expected 401s."""
    tmp = tmp_path_factory.mktemp("rest")
    running = start_server(tmp, config=write_config(tmp, auth_server))
    yield running
    assert running.stop() == 0, running.log()


def realm_for(auth: AuthServer, **options: object) -> TokenRealm:
    validator = IntrospectionValidator(auth.introspection_endpoint, *RESOURCE_SERVER)
    return TokenRealm(validator, security_realm="token-realm", **options)  # type: ignore[arg-type]


# ------------------------------------------------------------------ realm level


def test_active_token_gives_identity_with_keycloak_roles_and_groups(auth_server: AuthServer) -> None:
    realm = realm_for(auth_server)
    try:
        answer = realm.check_token(auth_server.token("admin-client"))
        assert isinstance(answer, TokenAccepted)
        assert answer.identity.name == "admin"
        assert answer.identity.realm == "token-realm"
        # realm_access.roles, every resource_access.*.roles, and the `groups` claim.
        assert answer.identity.groups == {"admin", "deployer", "manage-account", "ops"}
        reader = realm.check_token(auth_server.token("reader-client"))
        assert isinstance(reader, TokenAccepted)
        assert (reader.identity.name, reader.identity.groups) == ("reader", frozenset({"observer"}))
    finally:
        realm.close()


def test_principal_claim_is_honoured(auth_server: AuthServer) -> None:
    realm = realm_for(auth_server, principal_claim="preferred_username")
    try:
        answer = realm.check_token(auth_server.token("admin-client"))
        assert isinstance(answer, TokenAccepted)
        assert answer.identity.name == "Administrator"
    finally:
        realm.close()


def test_tokens_that_must_fail(auth_server: AuthServer) -> None:
    realm = realm_for(auth_server)
    try:
        nameless = realm.check_token(auth_server.token("nameless-client"))
        assert nameless == TokenRejected("the token has no usable principal claim 'username'")
        # Issued for another resource server: the AS reports it inactive to infinispan-server.
        other = realm.check_token(auth_server.token("other-client"))
        assert isinstance(other, TokenRejected)
        unknown = realm.check_token("x" * 43)
        assert isinstance(unknown, TokenRejected)
        # The whole token is the cache key: a valid token with one character changed fails.
        good = auth_server.token("reader-client")
        assert isinstance(realm.check_token(good), TokenAccepted)
        assert isinstance(realm.check_token(good[:-1] + ("A" if good[-1] != "A" else "B")), TokenRejected)
    finally:
        realm.close()


def test_expired_token_fails_even_when_cached(auth_server: AuthServer) -> None:
    realm = realm_for(auth_server)
    try:
        token = auth_server.token("short-client")  # 3 s lifetime: room for a loaded machine
        exp = auth_server.introspect(token)["exp"]
        assert isinstance(realm.check_token(token), TokenAccepted)
        assert realm.cached_tokens() == 1
        time.sleep(max(0.0, float(exp) - time.time()) + 0.1)  # type: ignore[arg-type]
        assert isinstance(realm.check_token(token), TokenRejected)
    finally:
        realm.close()


def test_revocation_applies_within_the_cache_lifespan(auth_server: AuthServer) -> None:
    realm = realm_for(auth_server, cache_lifespan_s=0.5)
    try:
        unused = auth_server.token("admin-client")
        auth_server.revoke(unused)
        assert isinstance(realm.check_token(unused), TokenRejected)
        used = auth_server.token("admin-client")
        assert isinstance(realm.check_token(used), TokenAccepted)
        auth_server.revoke(used)
        assert auth_server.introspect(used) == {"active": False}
        time.sleep(0.6)
        assert isinstance(realm.check_token(used), TokenRejected)
    finally:
        realm.close()


def test_wrong_introspection_credentials_fail_closed(auth_server: AuthServer) -> None:
    validator = IntrospectionValidator(auth_server.introspection_endpoint, "infinispan-server", "wrong")
    realm = TokenRealm(validator, security_realm="token-realm")
    try:
        with pytest.raises(
            AuthorizationServerUnavailableError, match="refused the realm's client credentials"
        ):
            realm.check_token(auth_server.token("admin-client"))
    finally:
        realm.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_unreachable_server_fails_fast_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/token/introspection"
    realm = TokenRealm(
        IntrospectionValidator(url, *RESOURCE_SERVER), security_realm="token-realm", retry_after_s=0.3
    )
    try:
        started = time.monotonic()
        for _ in range(3):
            with pytest.raises(AuthorizationServerUnavailableError):
                realm.check_token("a" * 43)
        assert time.monotonic() - started < 3.0  # refused at once, far below any timeout
        errors = [r for r in caplog.records if "cannot be asked" in r.getMessage()]
        assert len(errors) == 1  # one line per outage, not one per login
        assert "a" * 43 not in caplog.text
        auth = start_auth_server(port=port)
        try:
            time.sleep(0.35)  # past retry_after_s
            assert isinstance(realm.check_token(auth.token("admin-client")), TokenAccepted)
            assert "answers again" in caplog.text
        finally:
            auth.stop()
    finally:
        realm.close()


# ------------------------------------------------------------------ Hot Rod OAUTHBEARER


async def test_hotrod_oauthbearer_with_our_client(
    token_server: RunningServer, auth_server: AuthServer
) -> None:
    token = await trio.to_thread.run_sync(auth_server.token, "admin-client")
    mechanism = OAuthBearerClient(token, authzid="admin", host="127.0.0.1", port=token_server.port)
    async with open_hotrod_client("127.0.0.1", token_server.port, sasl=mechanism) as client:
        assert await client.auth_mech_list() == ["OAUTHBEARER"]
        await client.put(b"k", b"from-token")
        assert await client.get(b"k") == b"from-token"
    assert token not in token_server.log()


async def test_hotrod_reader_role_comes_from_the_token(
    token_server: RunningServer, auth_server: AuthServer
) -> None:
    token = await trio.to_thread.run_sync(auth_server.token, "reader-client")
    async with open_hotrod_client("127.0.0.1", token_server.port, sasl=OAuthBearerClient(token)) as client:
        await client.get(b"k")  # observer: READ
        with pytest.raises(Exception, match=r"ISPN000287|[Uu]nauthorized|permission"):
            await client.put(b"k", b"reader-write")


@pytest.mark.parametrize("which", ["unknown", "revoked", "other-audience", "authzid-mismatch"])
async def test_hotrod_bad_tokens_get_the_rfc7628_error(
    token_server: RunningServer, auth_server: AuthServer, which: str
) -> None:
    authzid = None
    if which == "unknown":
        token = "Z" * 43
    elif which == "revoked":
        token = await trio.to_thread.run_sync(auth_server.token, "admin-client")
        await trio.to_thread.run_sync(auth_server.revoke, token)
    elif which == "other-audience":
        token = await trio.to_thread.run_sync(auth_server.token, "other-client")
    else:
        token = await trio.to_thread.run_sync(auth_server.token, "reader-client")
        authzid = "admin"
    mechanism = OAuthBearerClient(token, authzid=authzid)
    with pytest.raises(HotRodAuthenticationError, match="ISPN006024: Authentication failed"):
        async with open_hotrod_client("127.0.0.1", token_server.port, sasl=mechanism):
            pass
    assert mechanism.server_error == {"status": "invalid_token"}
    assert token not in token_server.log()


# ------------------------------------------------------------------ REST Bearer


@pytest.mark.parametrize("flags", [("--http1.1",), ("--http2-prior-knowledge",)], ids=["http1.1", "h2c"])
def test_curl_bearer(rest_server: RunningServer, auth_server: AuthServer, flags: tuple[str, ...]) -> None:
    token = auth_server.token("admin-client")
    url = f"{rest_server.base_url}/rest/v2/caches/default/rest-bearer"
    put = curl(url, *flags, "-H", f"Authorization: Bearer {token}", "-X", "PUT", "--data-binary", "v")
    assert put.status == 204
    got = curl(url, *flags, "--oauth2-bearer", token)
    assert (got.status, got.body) == (200, b"v")
    assert got.http_version == ("HTTP/2" if "--http2-prior-knowledge" in flags else "HTTP/1.1")
    missing = curl(url, *flags)
    assert missing.status == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="token-realm"'
    bad = curl(url, *flags, "--oauth2-bearer", "Z" * 43)
    assert bad.status == 401
    assert bad.headers["www-authenticate"] == 'Bearer realm="token-realm", error="invalid_token"'
    malformed = curl(url, *flags, "-H", "Authorization: Bearer not a token")
    assert malformed.status == 400
    assert token not in rest_server.log()


def test_rest_acl_reflects_token_roles(token_server: RunningServer, auth_server: AuthServer) -> None:
    url = f"{token_server.base_url}/rest/v2/security/user/acl"
    admin = json.loads(curl(url, "--oauth2-bearer", auth_server.token("admin-client")).body)
    assert {"name": "admin", "type": "NamePrincipal"} in admin["subject"]
    assert {"name": "admin", "type": "RolePrincipal"} in admin["subject"]
    reader = json.loads(curl(url, "--oauth2-bearer", auth_server.token("reader-client")).body)
    assert {"name": "observer", "type": "RolePrincipal"} in reader["subject"]
    assert "WRITE" not in reader["caches"]["default"]
    write = curl(
        f"{token_server.base_url}/rest/v2/caches/default/acl-write",
        "--oauth2-bearer",
        auth_server.token("reader-client"),
        "-X",
        "PUT",
        "--data-binary",
        "x",
    )
    assert write.status == 403


def test_outage_fails_fast_and_recovers(tmp_path: Path) -> None:
    auth = start_auth_server()
    port = auth.port
    server = start_server(tmp_path, config=write_config(tmp_path, auth))
    try:
        url = f"{server.base_url}/rest/v2/caches/default/outage"
        assert curl(url, "--oauth2-bearer", auth.token("admin-client"), "-X", "PUT", "-d", "1").status == 204
        spare = auth.token("admin-client")  # never used before the outage: not cached
        auth.stop()
        started = time.monotonic()
        down = curl(url, "--oauth2-bearer", spare)
        assert down.status == 503
        assert time.monotonic() - started < 3.0
        assert "the authorization server cannot be asked" in server.log()
        auth = start_auth_server(port=port)
        fresh = auth.token("admin-client")
        deadline = time.monotonic() + 5.0
        status = 0
        while time.monotonic() < deadline:
            status = curl(url, "--oauth2-bearer", fresh).status
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200
        assert "answers again" in server.log()
    finally:
        auth.stop()
        assert server.stop() == 0, server.log()
