"""The token realm: JWT checks, claims to identity, the cache, introspection edge cases, config.

Introspection answers a correct authorization server never gives (``"active": "true"``,
500, garbage, a hang) come from a tiny scripted HTTP server on loopback; the real
oidc-provider is exercised in tests/integration/test_token_realm.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gridactor.config.loader import load_config
from gridactor.errors import ConfigError
from gridactor.security.realms.token import (
    AuthorizationServerUnavailableError,
    IntrospectionValidator,
    JwtValidator,
    TokenRealm,
    client_ssl_context,
    groups_from_claims,
)
from gridactor.security.sasl.oauthbearer import TokenAccepted, TokenCheck, TokenRejected
from gridactor.security.setup import build_realm, http_offer, sasl_offer

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NOW = 1_800_000_000.0


def sign(claims: dict[str, Any], *, key: Any = KEY, algorithm: str = "RS256", headers: Any = None) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def hs256_with_public_key(payload: dict[str, Any]) -> str:
    """Key confusion: an HS256 token whose HMAC secret is the (public) RSA key."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(payload).encode())
    mac = hmac.new(PUBLIC_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


def claims(**extra: Any) -> dict[str, Any]:
    return {"username": "alice", "exp": NOW + 300, "iss": "https://as", "aud": "infinispan", **extra}


def jwt_realm(**options: Any) -> TokenRealm:
    validator = JwtValidator(PUBLIC_PEM, issuers=["https://as"], audiences=["infinispan"], clock=lambda: NOW)
    return TokenRealm(validator, security_realm="jwt", clock=lambda: NOW, **options)


# ------------------------------------------------------------------ JWT


def test_valid_jwt_gives_identity_and_groups() -> None:
    token = sign(claims(realm_access={"roles": ["admin"]}, resource_access={"c": {"roles": ["x"]}}))
    answer = jwt_realm().answer(TokenCheck(token))
    assert isinstance(answer, TokenAccepted)
    assert answer.identity.name == "alice"
    assert answer.identity.groups == {"admin", "x"}


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (sign(claims(aud="other")), "audience"),
        (sign(claims(iss="https://evil")), "issuer"),
        (sign(claims(exp=NOW - 1)), "expired"),
        (sign(claims(nbf=NOW + 60)), "not valid yet"),
        (sign({k: v for k, v in claims().items() if k != "exp"}), "MissingRequiredClaim"),
        (sign(claims(), key=OTHER_KEY), "signature"),
        (sign(claims(), key=None, algorithm="none"), "algorithm"),
        # Key confusion: the public key used as an HMAC secret.
        (hs256_with_public_key(claims()), "algorithm"),
        (sign(claims(), headers={"jku": "https://evil/keys"}), "jku"),
        ("not-a-jwt", "not a JWT"),
    ],
)
def test_bad_jwts_are_rejected(token: str, reason: str) -> None:
    answer = jwt_realm().check_token(token)
    assert isinstance(answer, TokenRejected), answer
    assert reason in answer.reason
    assert token not in answer.reason


def test_es256_tokens_and_non_rsa_keys_are_refused() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = (
        ec_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ValueError, match="RSA"):
        JwtValidator(pem)
    with pytest.raises(ValueError, match="PEM"):
        JwtValidator("bm90IGEga2V5")
    # The attribute may hold the bare base64 body of the key, as Infinispan writes it.
    body = "".join(PUBLIC_PEM.strip().splitlines()[1:-1])
    assert isinstance(JwtValidator(body, clock=lambda: NOW).validate(sign(claims())), dict)


def test_missing_or_odd_principal_claim_is_rejected() -> None:
    realm = jwt_realm()
    assert isinstance(realm.check_token(sign(claims(username=None))), TokenRejected)
    assert isinstance(realm.check_token(sign(claims(username=["alice"]))), TokenRejected)
    assert isinstance(realm.check_token(sign(claims(username="al\nice"))), TokenRejected)
    other = TokenRealm(
        JwtValidator(PUBLIC_PEM, clock=lambda: NOW), security_realm="jwt", principal_claim="sub"
    )
    answer = other.check_token(sign(claims(sub="svc-1")))
    assert isinstance(answer, TokenAccepted)
    assert answer.identity.name == "svc-1"


def test_groups_from_claims_ignores_junk() -> None:
    got = groups_from_claims(
        {
            "realm_access": {"roles": ["a", 1, None, "", "b\x00"]},
            "resource_access": {"x": {"roles": ["c"]}, "y": "junk", "z": {"roles": "d"}},
            "groups": ["g"],
            "roles": ["not-used"],
        }
    )
    assert got == {"a", "c", "g"}
    assert groups_from_claims({"groups": ["g"]}, groups_claim=None) == frozenset()


# ------------------------------------------------------------------ cache


class Clock:
    def __init__(self) -> None:
        self.wall = NOW
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def test_cache_never_outlives_exp_nor_the_lifespan() -> None:
    clock = Clock()
    validator = JwtValidator(PUBLIC_PEM, clock=lambda: clock.wall)
    realm = TokenRealm(
        validator,
        security_realm="jwt",
        cache_lifespan_s=60,
        clock=lambda: clock.wall,
        monotonic=lambda: clock.mono,
    )
    short = sign(claims(exp=NOW + 10))
    long = sign(claims(exp=NOW + 3600))
    assert isinstance(realm.check_token(short), TokenAccepted)
    assert isinstance(realm.check_token(long), TokenAccepted)
    assert realm.cached_tokens() == 2
    clock.advance(11)
    assert isinstance(realm.check_token(short), TokenRejected)  # cache entry gone, token expired
    clock.advance(50)
    realm.refresh()
    assert realm.cached_tokens() == 0  # past the 60 s lifespan


def test_cache_is_bounded_and_can_be_disabled() -> None:
    realm = jwt_realm(cache_max_size=2)
    for n in range(5):
        realm.check_token(sign(claims(n=n)))
    assert realm.cached_tokens() == 2
    off = jwt_realm(cache_lifespan_s=0)
    off.check_token(sign(claims()))
    assert off.cached_tokens() == 0


def test_realm_answers_only_token_questions() -> None:
    realm = jwt_realm()
    assert realm.credentials("alice") is None
    assert realm.verify_password("alice", "x") is False
    assert realm.identity("alice") is None
    assert realm.credential_kinds() == frozenset()
    assert isinstance(realm.check_token(""), TokenRejected)


# ------------------------------------------------------------------ introspection edge cases


@dataclass
class Script:
    status: int = 200
    body: bytes = b'{"active": true, "username": "alice"}'
    delay: float = 0.0
    requests: list[tuple[str, bytes]] = field(default_factory=list)


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            script.requests.append((self.headers.get("Authorization", ""), self.rfile.read(length)))
            time.sleep(script.delay)
            self.send_response(script.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(script.body)))
            self.end_headers()
            self.wfile.write(script.body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            # The timeout cases answer after the client gave up: a broken pipe is expected.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)  # type: ignore[arg-type]

    server = Server(("127.0.0.1", 0), Handler)
    server.block_on_close = False  # a handler still sleeping for the timeout case is abandoned
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/introspect", script
    finally:
        server.shutdown()
        server.server_close()


def test_introspection_request_shape(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    realm = TokenRealm(IntrospectionValidator(url, "rs id", "s+cret"), security_realm="t")
    try:
        assert isinstance(realm.check_token("tok.en"), TokenAccepted)
        authorization, body = script.requests[0]
        # RFC 6749 §2.3.1: id and secret are form-encoded before the Basic encoding.
        assert base64.b64decode(authorization.split()[1]) == b"rs+id:s%2Bcret"
        assert body == b"token=tok.en&token_type_hint=access_token"
    finally:
        realm.close()


@pytest.mark.parametrize(
    "body",
    [
        b'{"active": "true", "username": "alice"}',
        b'{"active": 1, "username": "alice"}',
        b'{"username": "alice"}',
        b'{"active": false}',
        b'{"active": true, "username": "alice", "exp": 1000}',
        b'{"active": true, "username": "alice", "exp": "never"}',
        b'{"active": true, "username": "alice", "nbf": 99999999999}',
    ],
)
def test_anything_but_an_active_current_token_is_rejected(scripted: tuple[str, Script], body: bytes) -> None:
    url, script = scripted
    script.body = body
    realm = TokenRealm(IntrospectionValidator(url, "rs", "secret"), security_realm="t")
    try:
        assert isinstance(realm.check_token("tok"), TokenRejected)
        assert realm.cached_tokens() == 0  # negative answers are not cached
    finally:
        realm.close()


@pytest.mark.parametrize(
    ("status", "body", "delay"),
    [
        (500, b"{}", 0.0),
        (401, b'{"error":"invalid_client"}', 0.0),
        (200, b"<html>", 0.0),
        (200, b"[]", 0.0),
        (200, b'{"active": true}', 1.5),
    ],
    ids=["5xx", "client-refused", "not-json", "not-object", "timeout"],
)
def test_server_trouble_fails_closed(
    scripted: tuple[str, Script], status: int, body: bytes, delay: float
) -> None:
    url, script = scripted
    script.status, script.body, script.delay = status, body, delay
    validator = IntrospectionValidator(url, "rs", "secret", connect_timeout_s=0.5, read_timeout_s=0.5)
    realm = TokenRealm(validator, security_realm="t", retry_after_s=5)
    try:
        started = time.monotonic()
        with pytest.raises(AuthorizationServerUnavailableError):
            realm.answer(TokenCheck("tok"))
        assert time.monotonic() - started < 3.0  # the 0.5 s timeouts, with room for a loaded CI
        # Within retry_after_s the realm fails at once, without asking again.
        asked = len(script.requests)
        with pytest.raises(AuthorizationServerUnavailableError):
            realm.answer(TokenCheck("tok2"))
        assert len(script.requests) == asked
    finally:
        realm.close()


def test_tls_is_verified_by_default() -> None:
    context = client_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert not client_ssl_context(verify_hostname=False).check_hostname
    assert client_ssl_context(verify_hostname=False).verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(ValueError, match="http or https"):
        IntrospectionValidator("file:///etc/passwd", "a", "b")


# ------------------------------------------------------------------ configuration


def server_xml(realm: str) -> str:
    return f"""<infinispan xmlns="urn:infinispan:config:15.0">
  <cache-container name="default"/>
  <server xmlns="urn:infinispan:server:15.0">
    <interfaces><interface name="public"><inet-address value="127.0.0.1"/></interface></interfaces>
    <socket-bindings default-interface="public">
      <socket-binding name="default" port="11222"/>
    </socket-bindings>
    <security><security-realms>
      <security-realm name="default">{realm}</security-realm>
    </security-realms></security>
    <endpoints socket-binding="default" security-realm="default"/>
  </server>
</infinispan>"""


INTROSPECTION = (
    '<token-realm name="token" principal-claim="preferred_username"><oauth2-introspection '
    'introspection-url="http://127.0.0.1:1/i" client-id="rs" client-secret="s"/></token-realm>'
)


def load(tmp_path: Path, realm: str) -> Any:
    path = tmp_path / "infinispan.xml"
    path.write_text(server_xml(realm))
    return load_config(path)


def test_config_builds_a_token_realm_offering_token_mechanisms_only(tmp_path: Path) -> None:
    config = load(tmp_path, INTROSPECTION)
    realm = build_realm(config.security_realms["default"], str(config.source))
    assert isinstance(realm, TokenRealm)
    try:
        assert realm.principal_claim == "preferred_username"
        endpoint = config.endpoints[0]
        assert sasl_offer(config, endpoint, realm).mechanisms == ("OAUTHBEARER",)
        assert http_offer(config, endpoint, realm).mechanisms == ("BEARER_TOKEN",)
    finally:
        realm.close()


@pytest.mark.parametrize(
    ("realm", "message"),
    [
        ('<token-realm><jwt issuer="x"/></token-realm>', "public-key is required"),
        ('<token-realm><jwt public-key="bm90IGEga2V5"/></token-realm>', "not a PEM public key"),
        (
            '<token-realm><oauth2-introspection introspection-url="http://a/i" client-id="rs"/>'
            "</token-realm>",
            "client-secret is required",
        ),
        (
            '<token-realm><oauth2-introspection introspection-url="https://a/i" client-id="rs" '
            'client-secret="s" client-ssl-context="elsewhere"/></token-realm>',
            "client-ssl-context",
        ),
        (
            INTROSPECTION + '<properties-realm><user-properties path="u.properties"/></properties-realm>',
            "combines <token-realm> with <properties-realm>",
        ),
    ],
)
def test_unsafe_or_unsupported_configs_are_refused(tmp_path: Path, realm: str, message: str) -> None:
    config = load(tmp_path, realm)
    with pytest.raises(ConfigError, match=message):
        build_realm(config.security_realms["default"], str(config.source))
