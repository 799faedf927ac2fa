"""The token realm: OAuth 2.0 bearer tokens, checked by RFC 7662 introspection or as signed JWTs.

Mechanisms (SASL OAUTHBEARER, HTTP BEARER_TOKEN) hand the token to :meth:`TokenRealm.answer`
as a :class:`TokenCheck`; the realm actor runs it in a worker thread, so the validators
here are synchronous:

* :class:`IntrospectionValidator` POSTs ``token=…&token_type_hint=access_token`` to the
  introspection URL with HTTP Basic client authentication (RFC 7662 §2.1) through one
  pooled ``httpx.Client``: its connection pool bounds the concurrency (on top of the realm
  actor's limiter), and ``connection-timeout`` / ``read-timeout`` bound every request.
  TLS is verified by default, hostnames too unless ``host-name-verification-policy="ANY"``.
  Only ``"active": true`` (the JSON boolean) is active; ``exp`` / ``nbf`` are checked here
  as well, whatever the server said.
* :class:`JwtValidator` verifies an RS256/384/512 signature with the configured public key
  (always: a ``<jwt>`` without ``public-key`` is refused, where upstream would skip the
  check), ``exp`` (required), ``nbf``, and the configured issuers and audiences.

Identity: the principal is the ``principal-claim`` (default ``username``; upstream ignores
the attribute, we honour it). Groups are the union of ``realm_access.roles``,
``resource_access.<client>.roles`` (Keycloak's role decoder) and the top-level
``groups`` claim (a list of names), so they reach ``Identity.groups``.

Caching: active answers are cached by SHA-256 of the whole token, never longer than the
token's ``exp`` nor the security realm's ``cache-lifespan``, and at most ``cache-max-size``
entries. Negative answers are not cached. A revoked token may therefore stay accepted for
up to ``cache-lifespan`` (a cap the operator chooses; 0 disables the cache).

Outage: when the authorization server cannot be asked (refused, timed out, 5xx, garbage,
our client credentials refused) the realm raises :class:`AuthorizationServerUnavailableError`:
the login fails (Hot Rod) or is answered 503 (REST), and a token is never accepted for
lack of an answer. The first failure logs one error line; for ``retry_after_s`` after a
failure the realm fails at once instead of waiting for timeouts again, then it asks again
and logs when the server answers anew. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import logging
import math
import ssl
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gridactor.config.model import JwtConfig, OAuth2IntrospectionConfig, TokenRealmConfig
from gridactor.errors import ConfigError
from gridactor.security.credentials import Credential
from gridactor.security.identity import Identity
from gridactor.security.realms.base import UnsupportedRealmRequest
from gridactor.security.sasl.base import RealmRequest
from gridactor.security.sasl.oauthbearer import TokenAccepted, TokenCheck, TokenRejected

log = logging.getLogger(__name__)

DEFAULT_GROUPS_CLAIM = "groups"
JWT_ALGORITHMS = ("RS256", "RS384", "RS512")
# Introspection answers larger than this are refused (a sane AS answers a few hundred bytes).
MAX_INTROSPECTION_RESPONSE = 256 * 1024
MAX_TOKEN_LENGTH = 16384
# Seconds of clock difference tolerated on `nbf` (the AS and we may disagree slightly).
CLOCK_SKEW_S = 5.0


class TokenRejectedError(Exception):
    """The token is not valid; the message is for the log and never contains the token."""


class AuthorizationServerUnavailableError(Exception):
    """The authorization server could not be asked (or gave no usable answer)."""


class TokenValidator(Protocol):
    def validate(self, token: str) -> Mapping[str, Any]:
        """The token's claims if it is valid; raises TokenRejectedError or
        AuthorizationServerUnavailableError."""
        ...

    def close(self) -> None: ...


def _check_time_claims(claims: Mapping[str, Any], now: float) -> None:
    exp = claims.get("exp")
    if exp is not None:
        if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
            raise TokenRejectedError("the token's 'exp' is not a number")
        if now >= exp:
            raise TokenRejectedError("the token has expired")
    nbf = claims.get("nbf")
    if nbf is not None:
        if isinstance(nbf, bool) or not isinstance(nbf, int | float) or not math.isfinite(nbf):
            raise TokenRejectedError("the token's 'nbf' is not a number")
        if now + CLOCK_SKEW_S < nbf:
            raise TokenRejectedError("the token is not valid yet (nbf)")


def client_ssl_context(*, verify_hostname: bool = True, cafile: str | None = None) -> ssl.SSLContext:
    """TLS for the realm's own HTTPS requests: certificates always verified."""
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = verify_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class IntrospectionValidator:
    """RFC 7662 token introspection with one pooled, bounded, timed-out HTTP client."""

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 2.0,
        max_connections: int = 8,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"introspection-url must be http or https, not {scheme or 'relative'}")
        self.url = url
        # RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
        self._auth = httpx.BasicAuth(
            urllib.parse.quote_plus(client_id, safe=""), urllib.parse.quote_plus(client_secret, safe="")
        )
        self._clock = clock
        self._client = httpx.Client(
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s, pool=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            verify=ssl_context if ssl_context is not None else client_ssl_context(),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment between us and the AS
        )

    def __repr__(self) -> str:
        return f"IntrospectionValidator({self.url!r})"

    def close(self) -> None:
        self._client.close()

    def validate(self, token: str) -> Mapping[str, Any]:
        try:
            with self._client.stream(
                "POST",
                self.url,
                data={"token": token, "token_type_hint": "access_token"},
                headers={"Accept": "application/json"},
                auth=self._auth,
            ) as response:
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_INTROSPECTION_RESPONSE:
                        raise AuthorizationServerUnavailableError("introspection response too large")
                status = response.status_code
        except httpx.TimeoutException as exc:
            raise AuthorizationServerUnavailableError(f"timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise AuthorizationServerUnavailableError(
                f"request failed ({type(exc).__name__}: {exc})"
            ) from None
        if status in (401, 403):
            raise AuthorizationServerUnavailableError(
                f"HTTP {status}: the authorization server refused the realm's client credentials"
            )
        if status != 200:
            raise AuthorizationServerUnavailableError(f"HTTP {status} from the introspection endpoint")
        try:
            claims = httpx.Response(200, content=body).json()
        except ValueError:
            raise AuthorizationServerUnavailableError("the introspection response is not JSON") from None
        if not isinstance(claims, dict):
            raise AuthorizationServerUnavailableError("the introspection response is not a JSON object")
        # Only the JSON boolean true is active: "true", 1 or a missing member are not.
        if claims.get("active") is not True:
            raise TokenRejectedError("the token is not active (unknown, expired or revoked)")
        _check_time_claims(claims, self._clock())
        return claims


class JwtValidator:
    """A JWT access token verified locally: signature, expiry, issuer and audience."""

    def __init__(
        self,
        public_key: str,
        *,
        issuers: Sequence[str] = (),
        audiences: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        pem = public_key.strip()
        if "-----BEGIN" not in pem:
            # Infinispan's attribute holds the base64 body of the key without PEM armour.
            pem = "-----BEGIN PUBLIC KEY-----\n" + pem + "\n-----END PUBLIC KEY-----\n"
        try:
            key = serialization.load_pem_public_key(pem.encode("ascii"))
        except (ValueError, TypeError, UnicodeEncodeError) as exc:
            raise ValueError(f"public-key is not a PEM public key: {exc}") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("public-key must be an RSA key (JWTs are checked with RS256/RS384/RS512)")
        self._key = key
        self._issuers = list(issuers)
        self._audiences = list(audiences)
        self._clock = clock

    def close(self) -> None:
        return None

    def validate(self, token: str) -> Mapping[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.exceptions.DecodeError:
            raise TokenRejectedError("not a JWT") from None
        if "jku" in header or "x5u" in header:
            # Keys named by the token itself are never fetched: only the configured key counts.
            raise TokenRejectedError("JWT names its own key (jku/x5u); only the configured key is trusted")
        now = self._clock()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=list(JWT_ALGORITHMS),
                audience=self._audiences or None,
                issuer=self._issuers or None,
                options={
                    "require": ["exp"],
                    "verify_aud": bool(self._audiences),
                    "verify_iss": bool(self._issuers),
                    # Time is checked below against our clock (testable), not PyJWT's.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.exceptions.InvalidAudienceError:
            raise TokenRejectedError("JWT audience is not one of the configured audiences") from None
        except jwt.exceptions.InvalidIssuerError:
            raise TokenRejectedError("JWT issuer is not one of the configured issuers") from None
        except jwt.exceptions.InvalidSignatureError:
            raise TokenRejectedError("JWT signature does not verify") from None
        except jwt.exceptions.InvalidAlgorithmError:
            raise TokenRejectedError(f"JWT algorithm {header.get('alg')!r} is not allowed") from None
        except jwt.exceptions.PyJWTError as exc:
            raise TokenRejectedError(f"invalid JWT ({type(exc).__name__})") from None
        _check_time_claims(claims, now)
        return claims


def _roles(value: object) -> set[str]:
    if not isinstance(value, list):
        return set()
    return {r for r in value if isinstance(r, str) and r and r.isprintable()}


def groups_from_claims(
    claims: Mapping[str, Any], groups_claim: str | None = DEFAULT_GROUPS_CLAIM
) -> frozenset[str]:
    """The union of ``realm_access.roles``, ``resource_access.*.roles`` and the ``groups_claim`` list."""
    groups: set[str] = set()
    realm_access = claims.get("realm_access")
    if isinstance(realm_access, dict):
        groups |= _roles(realm_access.get("roles"))
    resource_access = claims.get("resource_access")
    if isinstance(resource_access, dict):
        for client in resource_access.values():
            if isinstance(client, dict):
                groups |= _roles(client.get("roles"))
    if groups_claim:
        groups |= _roles(claims.get(groups_claim))
    return frozenset(groups)


@dataclass(slots=True)
class _Cached:
    expires_at: float  # monotonic
    identity: Identity


class TokenRealm:
    """A security realm whose users are whoever a valid access token says they are."""

    def __init__(
        self,
        validator: TokenValidator,
        *,
        security_realm: str,
        principal_claim: str = "username",
        groups_claim: str | None = DEFAULT_GROUPS_CLAIM,
        cache_max_size: int = 256,
        cache_lifespan_s: float = 60.0,
        retry_after_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._validator = validator
        self.security_realm = security_realm
        self.principal_claim = principal_claim
        self.groups_claim = groups_claim
        self.cache_max_size = cache_max_size
        self.cache_lifespan_s = cache_lifespan_s
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, _Cached] = OrderedDict()
        self._down_until = -math.inf  # monotonic: fail at once until then
        self._down_reason: str | None = None

    @property
    def name(self) -> str:
        return self.security_realm

    def __repr__(self) -> str:
        return f"TokenRealm({self.security_realm!r}, {self._validator!r})"

    # ---------------------------------------------------------------- Realm protocol

    def refresh(self) -> None:
        with self._lock:
            now = self._monotonic()
            for key in [k for k, v in self._cache.items() if v.expires_at <= now]:
                del self._cache[key]

    def credentials(self, username: str) -> Sequence[Credential] | None:
        return None  # no stored secrets: only tokens authenticate

    def verify_password(self, username: str, password: str) -> bool:
        return False

    def identity(self, username: str) -> Identity | None:
        # A token realm knows a user only through a token (see TokenCheck); the mechanisms
        # carry the identity they established, so a bare name has none.
        return None

    def credential_kinds(self) -> frozenset[type]:
        return frozenset()

    def answer(self, request: RealmRequest) -> object:
        if not isinstance(request, TokenCheck):
            raise UnsupportedRealmRequest(f"a token realm cannot answer {type(request).__name__}")
        return self.check_token(request.token)

    def close(self) -> None:
        self._validator.close()

    # ---------------------------------------------------------------- tokens

    def cached_tokens(self) -> int:
        with self._lock:
            return len(self._cache)

    def check_token(self, token: str) -> TokenAccepted | TokenRejected:
        """Accept or reject ``token``; raises AuthorizationServerUnavailableError."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return TokenRejected("empty or oversized token")
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        now = self._monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                if cached.expires_at > now:
                    self._cache.move_to_end(key)
                    return TokenAccepted(cached.identity)
                del self._cache[key]
            if now < self._down_until:
                raise AuthorizationServerUnavailableError(
                    f"token realm '{self.security_realm}': authorization server unavailable "
                    f"({self._down_reason})"
                )
        try:
            claims = self._validator.validate(token)
        except TokenRejectedError as exc:
            self._server_answered()
            return TokenRejected(str(exc))
        except AuthorizationServerUnavailableError as exc:
            self._server_failed(str(exc))
            raise
        self._server_answered()
        principal = claims.get(self.principal_claim)
        if not isinstance(principal, str) or not principal or not principal.isprintable():
            return TokenRejected(f"the token has no usable principal claim {self.principal_claim!r}")
        identity = Identity(
            name=principal,
            realm=self.security_realm,
            groups=groups_from_claims(claims, self.groups_claim),
        )
        self._remember(key, identity, claims.get("exp"))
        return TokenAccepted(identity)

    def _remember(self, key: bytes, identity: Identity, exp: object) -> None:
        if self.cache_max_size <= 0 or self.cache_lifespan_s <= 0:
            return
        lifetime = self.cache_lifespan_s
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            lifetime = min(lifetime, float(exp) - self._clock())
        if lifetime <= 0:
            return
        with self._lock:
            self._cache[key] = _Cached(self._monotonic() + lifetime, identity)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_max_size:
                self._cache.popitem(last=False)

    def _server_failed(self, reason: str) -> None:
        with self._lock:
            first = self._down_reason is None
            self._down_reason = reason
            self._down_until = self._monotonic() + self.retry_after_s
        if first:
            log.error(
                "token realm '%s': the authorization server cannot be asked: %s; token logins fail "
                "until it answers again (retrying every %.1fs)",
                self.security_realm,
                reason,
                self.retry_after_s,
            )

    def _server_answered(self) -> None:
        with self._lock:
            was_down = self._down_reason is not None
            self._down_reason = None
            self._down_until = -math.inf
        if was_down:
            log.warning("token realm '%s': the authorization server answers again", self.security_realm)


# -------------------------------------------------------------------- from configuration


def _seconds(ms: int) -> float:
    return max(ms, 1) / 1000.0


def build_token_realm(
    config: TokenRealmConfig,
    *,
    security_realm: str,
    cache_max_size: int,
    cache_lifespan_ms: int,
    source: str,
    trust_files: Mapping[str, str] | None = None,
) -> TokenRealm:
    """The realm for a ``<token-realm>``; refuses configurations that cannot be safe.

    ``trust_files`` maps security-realm names to PEM CA files, for ``client-ssl-context``.
    """
    validator: TokenValidator
    intro = config.introspection
    if intro is not None:
        validator = _introspection(intro, source, trust_files or {})
    elif config.jwt is not None:
        validator = _jwt(config.jwt, source)
    else:  # the loader already requires one of them
        raise ConfigError(
            "a token realm needs <oauth2-introspection> or <jwt>",
            file=source,
            line=config.line,
            element="token-realm",
        )
    return TokenRealm(
        validator,
        security_realm=security_realm,
        principal_claim=config.principal_claim,
        cache_max_size=cache_max_size,
        cache_lifespan_s=cache_lifespan_ms / 1000.0,
    )


def _tls(
    client_ssl_context_name: str | None,
    policy: str | None,
    trust_files: Mapping[str, str],
    source: str,
    line: int,
    element: str,
) -> ssl.SSLContext:
    cafile = None
    if client_ssl_context_name is not None:
        cafile = trust_files.get(client_ssl_context_name)
        if cafile is None:
            raise ConfigError(
                f"not supported yet: client-ssl-context '{client_ssl_context_name}' (only a security realm "
                "with a PEM truststore can be used; the system CAs are used without it)",
                file=source,
                line=line,
                element=element,
            )
    return client_ssl_context(verify_hostname=(policy or "DEFAULT") != "ANY", cafile=cafile)


def _introspection(
    intro: OAuth2IntrospectionConfig, source: str, trust_files: Mapping[str, str]
) -> IntrospectionValidator:
    element = "oauth2-introspection"
    if not intro.introspection_url or not intro.client_id:
        raise ConfigError(
            "introspection-url and client-id are required", file=source, line=intro.line, element=element
        )
    if not intro.client_secret:
        raise ConfigError(
            "client-secret is required: the authorization server must know who introspects",
            file=source,
            line=intro.line,
            element=element,
        )
    context = _tls(
        intro.client_ssl_context,
        intro.host_name_verification_policy,
        trust_files,
        source,
        intro.line,
        element,
    )
    try:
        return IntrospectionValidator(
            intro.introspection_url,
            intro.client_id,
            intro.client_secret,
            connect_timeout_s=_seconds(intro.connection_timeout_ms),
            read_timeout_s=_seconds(intro.read_timeout_ms),
            ssl_context=context,
        )
    except ValueError as exc:
        raise ConfigError(str(exc), file=source, line=intro.line, element=element) from None


def _jwt(config: JwtConfig, source: str) -> JwtValidator:
    if not config.public_key:
        # Upstream verifies no signature without a key (a warning only): anyone could mint
        # tokens. We refuse the configuration instead.
        raise ConfigError(
            "public-key is required: without it no JWT signature could be verified",
            file=source,
            line=config.line,
            element="jwt",
        )
    try:
        return JwtValidator(config.public_key, issuers=config.issuers, audiences=config.audiences)
    except ValueError as exc:
        raise ConfigError(str(exc), file=source, line=config.line, element="jwt") from None


def trust_pem_files(realms: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """Security realms (name, truststore path) whose truststore is a PEM file."""
    return {
        name: path
        for name, path in realms
        if path is not None and path.lower().endswith((".pem", ".crt", ".cer"))
    }
