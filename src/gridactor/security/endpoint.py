"""Authentication of one endpoint: which mechanisms it offers, and the per-connection drivers.

An :class:`EndpointSecurity` is built once per endpoint at start-up. For every connection
the listener asks it for a driver: :class:`HotRodSaslAuthenticator` (the SASL exchange over
AUTH_MECH_LIST / AUTH) or :class:`RestAuthenticator` (the HTTP ``Authorization`` gate).
Both drive sans-IO mechanisms and answer their realm requests through the realm actor, so
stored secrets travel only between the realm actor and the mechanism object.

What a client learns from a failure is only that authentication failed: no reason, no hint
whether the user exists. The reason goes to the server log (never with a secret), and
repeated failures from one address or for one user name are slowed down.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from gridactor.errors import AuthenticationError, GridError
from gridactor.protocols.hotrod.handler import AuthStep
from gridactor.protocols.rest.events import Headers, Request, Response
from gridactor.security.credentials import Credential
from gridactor.security.http_auth.base import (
    HttpAuthSettings,
    HttpFailure,
    HttpMechanism,
    HttpSuccess,
    auth_scheme,
)
from gridactor.security.http_auth.basic import BasicMechanism
from gridactor.security.http_auth.bearer import BearerMechanism
from gridactor.security.http_auth.client_cert import ClientCertMechanism
from gridactor.security.http_auth.digest import (
    DigestMechanism,
    DigestSha256Mechanism,
    DigestSha512_256Mechanism,
    NonceManager,
    digest_request_algorithm,
)
from gridactor.security.identity import Identity
from gridactor.security.kerberos import gssapi_available
from gridactor.security.realm_actor import RealmClient, RealmUnavailableError
from gridactor.security.sasl.base import (
    Challenge,
    Failure,
    NeedCredentials,
    NeedPasswordCheck,
    RealmRequest,
    SaslMechanism,
    SaslSettings,
    Success,
)
from gridactor.security.sasl.registry import MECHANISMS, create_mechanism
from gridactor.security.throttle import FailureThrottle

log = logging.getLogger("gridactor.auth")

AUTH_FAILED = "ISPN006024: Authentication failed"

# HTTP mechanism names (Infinispan's `mechanisms=` tokens) → the class answering them.
HTTP_MECHANISMS: dict[str, type[HttpMechanism]] = {
    "BASIC": BasicMechanism,
    "DIGEST": DigestMechanism,
    "DIGEST-MD5": DigestMechanism,
    "DIGEST-SHA-256": DigestSha256Mechanism,
    "DIGEST-SHA-512-256": DigestSha512_256Mechanism,
    "BEARER_TOKEN": BearerMechanism,
    "CLIENT_CERT": ClientCertMechanism,
}
# Kerberos (GSSAPI, GS2-KRB5, SPNEGO) needs python-gssapi, the optional `kerberos` extra.
if gssapi_available():
    from gridactor.security.http_auth.spnego import SpnegoMechanism
    from gridactor.security.sasl import gs2, gssapi_mech  # noqa: F401  (importing them registers them)

    HTTP_MECHANISMS["SPNEGO"] = SpnegoMechanism
# Digest variants by the `algorithm` directive a client sends.
_DIGEST_BY_ALGORITHM = {
    "MD5": ("DIGEST", "DIGEST-MD5"),
    "SHA-256": ("DIGEST-SHA-256",),
    "SHA-512-256": ("DIGEST-SHA-512-256",),
}


def established_identity(mechanism: SaslMechanism | HttpMechanism) -> Identity | None:
    """The identity a mechanism built from a realm answer (token claims), if it did.

    A token realm has no user to look up by name: who the client is, and its groups, come
    with the token, so the mechanism carries them instead of ``realm.identity(name)``.
    """
    identity = getattr(mechanism, "established_identity", None)
    return identity if isinstance(identity, Identity) else None


class InvalidMechanismError(GridError):
    hotrod_status = 0x85
    http_status = 401
    exception_class = "java.lang.IllegalArgumentException"


@dataclass(slots=True)
class EndpointSecurity:
    """Everything the connections of one endpoint need to authenticate their clients."""

    realm: RealmClient
    sasl_mechanisms: tuple[str, ...]
    sasl_settings: SaslSettings
    http_mechanisms: tuple[str, ...]
    http_settings: HttpAuthSettings
    auth_timeout_s: float = 30.0
    throttle: FailureThrottle = field(default_factory=FailureThrottle)
    nonces: NonceManager = field(default_factory=NonceManager)

    def hotrod_authenticator(
        self, peer: str, *, tls: bool = False, peer_certificate: bytes | None = None
    ) -> HotRodSaslAuthenticator:
        """``peer_certificate``: the DER client certificate the TLS handshake verified (EXTERNAL)."""
        return HotRodSaslAuthenticator(self, peer, tls=tls, peer_certificate=peer_certificate)

    def rest_authenticator(self, peer: str, *, peer_certificate: bytes | None = None) -> RestAuthenticator:
        return RestAuthenticator(self, peer, peer_certificate=peer_certificate)

    async def _answer_realm(
        self, outcome: object, mechanism: SaslMechanism | HttpMechanism
    ) -> tuple[object, str | None]:
        """Feed realm answers to ``mechanism`` until it needs none; returns (outcome, username)."""
        username: str | None = None
        while True:
            if isinstance(outcome, NeedCredentials):
                username = outcome.username
                stored = await self.realm.credentials(outcome.username)
                found: list[Credential] | None = None
                if stored is not None:
                    found = [c for c in stored if isinstance(c, outcome.kinds)]
                outcome = mechanism.supply_credentials(found)
            elif isinstance(outcome, NeedPasswordCheck):
                username = outcome.username
                valid = await self.realm.verify_password(outcome.username, outcome.password)
                outcome = mechanism.supply_password_check(valid)
            elif isinstance(outcome, RealmRequest):
                outcome = mechanism.supply(await self.realm.answer(outcome))
            else:
                return outcome, username

    async def _failed(self, peer: str, username: str | None, mechanism: str, reason: str) -> None:
        # The reason may name the user (an operator needs that); it never carries a secret.
        log.info("authentication failed: mechanism=%s peer=%s user=%r: %s", mechanism, peer, username, reason)
        keys = [f"addr:{peer}"] + ([f"user:{username}"] if username else [])
        delay = self.throttle.record_failure(*keys)
        if delay > 0:
            await trio.sleep(delay)

    def _succeeded(self, username: str) -> None:
        self.throttle.record_success(f"user:{username}")


class HotRodSaslAuthenticator:
    """One connection's SASL exchange (the handler's ``SaslAuthenticator`` protocol).

    The first AUTH names the mechanism; later rounds continue it whatever name they carry
    (Infinispan ignores it too). The whole exchange has one deadline. A failed exchange
    may be started again; an authenticated connection cannot authenticate again (no
    identity switch mid-connection).
    """

    def __init__(
        self, security: EndpointSecurity, peer: str, *, tls: bool, peer_certificate: bytes | None = None
    ) -> None:
        self._security = security
        self._peer = peer
        self._peer_certificate = peer_certificate
        self._settings = security.sasl_settings
        if tls != self._settings.tls:
            self._settings = dataclasses.replace(self._settings, tls=tls)
        self._mechanism: SaslMechanism | None = None
        self._username: str | None = None  # as the client claimed it, for the log and throttle
        self._deadline = 0.0
        self.identity: Identity | None = None
        # The mechanism whose security layer (auth-int / auth-conf) wraps every later frame.
        self.security_layer: SaslMechanism | None = None

    def mechanisms(self) -> Sequence[str]:
        return self._security.sasl_mechanisms

    async def step(self, mech: str, response: bytes) -> AuthStep:
        if self.identity is not None:
            raise AuthenticationError("ISPN006026: the connection is already authenticated")
        if self._mechanism is None:
            if mech not in self._security.sasl_mechanisms:
                raise InvalidMechanismError(f"ISPN006025: Invalid mech '{mech}'")
            # Only mechanisms that ask for it (EXTERNAL) see the client certificate.
            wants_certificate = getattr(MECHANISMS.get(mech), "uses_peer_certificate", False)
            options = {"peer_certificate": self._peer_certificate} if wants_certificate else {}
            self._mechanism = create_mechanism(mech, self._settings, **options)
            self._username = None
            self._deadline = trio.current_time() + self._security.auth_timeout_s
        mechanism = self._mechanism
        outcome: object
        try:
            with trio.fail_at(self._deadline):
                outcome, username = await self._security._answer_realm(mechanism.step(response), mechanism)
                self._username = username or self._username
                if isinstance(outcome, Success):
                    identity = established_identity(mechanism) or await self._security.realm.identity(
                        outcome.username
                    )
                    if identity is None:
                        outcome = Failure("the realm has no identity for the user")
                    else:
                        self.identity = Identity(
                            name=identity.name,
                            realm=identity.realm,
                            groups=identity.groups,
                            mechanism=mechanism.name,
                            certificate_subject=identity.certificate_subject,
                        )
        except trio.TooSlowError:
            outcome = Failure("the exchange did not finish before its deadline")
        except RealmUnavailableError as exc:
            log.error("authentication could not complete: %s", exc.message)
            outcome = Failure("realm unavailable")
        if isinstance(outcome, Challenge):
            return AuthStep(challenge=outcome.data)
        if isinstance(outcome, Success) and self.identity is not None:
            self._security._succeeded(outcome.username)
            if mechanism.negotiated_qop != "auth":
                self.security_layer = mechanism
            return AuthStep(challenge=outcome.final_data, subject=self.identity)
        self._mechanism = None
        reason = outcome.reason if isinstance(outcome, Failure) else f"unexpected outcome {outcome!r}"
        await self._security._failed(self._peer, self._username, mechanism.name, reason)
        raise AuthenticationError(AUTH_FAILED)


class RestAuthenticator:
    """The HTTP authentication gate of one connection (the REST ``HttpAuthenticator``).

    Without credentials, one 401 lists a ``WWW-Authenticate`` per offered mechanism. As
    Infinispan does, a connection remembers the last successful Basic header and its
    identity, so keep-alive requests with the same header skip the realm (Digest carries a
    fresh ``nc`` per request and is always checked).
    """

    def __init__(
        self, security: EndpointSecurity, peer: str, *, peer_certificate: bytes | None = None
    ) -> None:
        self._security = security
        self._peer = peer
        self._remembered: tuple[bytes, Identity] | None = None
        self._peer_certificate = peer_certificate
        self._certificate_identity: Identity | None = None  # CLIENT_CERT: once per connection

    def _challenges(self, failed: type[HttpMechanism] | None, failure: HttpFailure | None) -> Headers:
        """One challenge per offered mechanism; the failed one's own (e.g. ``stale=true``)."""
        headers: Headers = []
        for name in self._security.http_mechanisms:
            cls = HTTP_MECHANISMS[name]
            if cls is failed and failure is not None and failure.headers:
                values = [v for k, v in failure.headers if k.lower() == "www-authenticate"]
            else:
                values = self._mechanism(cls).challenge()
            headers.extend((b"www-authenticate", v.encode("latin-1")) for v in values)
        return headers

    def _mechanism(self, cls: type[HttpMechanism]) -> HttpMechanism:
        if issubclass(cls, DigestMechanism):
            return cls(self._security.http_settings, self._security.nonces)
        return cls(self._security.http_settings)

    def _select(self, authorization: bytes) -> type[HttpMechanism] | None:
        offered = self._security.http_mechanisms
        scheme = auth_scheme(authorization)
        if scheme == "BASIC" and "BASIC" in offered:
            return BasicMechanism
        if scheme == "DIGEST":
            algorithm = digest_request_algorithm(authorization) or "MD5"
            for name in _DIGEST_BY_ALGORITHM.get(algorithm, ()):
                if name in offered:
                    return HTTP_MECHANISMS[name]
            return None
        # Any other scheme (Bearer, Negotiate…): the offered mechanism that answers it.
        for name in offered:
            cls = HTTP_MECHANISMS[name]
            if scheme is not None and cls.scheme == scheme:
                return cls
        return None

    async def _authenticate_certificate(self, request: Request) -> Response | Headers:
        """CLIENT_CERT: the connection's verified certificate, checked by the realm once."""
        if self._certificate_identity is None:
            security = self._security
            mechanism = ClientCertMechanism(security.http_settings, peer_certificate=self._peer_certificate)
            identity: Identity | None = None
            try:
                with trio.fail_after(security.auth_timeout_s):
                    first = mechanism.authenticate(request.method, "", None)
                    outcome, _ = await security._answer_realm(first, mechanism)
                    if isinstance(outcome, HttpSuccess):
                        identity = established_identity(mechanism) or await security.realm.identity(
                            outcome.username
                        )
            except (trio.TooSlowError, RealmUnavailableError) as exc:
                log.error("HTTP authentication could not complete: %s", type(exc).__name__)
                return Response.text(503, "Service Unavailable: the security realm did not answer")
            if not isinstance(outcome, HttpSuccess) or identity is None:
                reason = outcome.reason if isinstance(outcome, HttpFailure) else "no identity"
                await security._failed(self._peer, None, "CLIENT_CERT", reason)
                return self._unauthorized("Unauthorized")
            security._succeeded(outcome.username)
            self._certificate_identity = Identity(
                identity.name,
                identity.realm,
                identity.groups,
                mechanism="CLIENT_CERT",
                certificate_subject=identity.certificate_subject,
            )
        request.identity = self._certificate_identity
        return []

    def _unauthorized(
        self, reason: str, failed: type[HttpMechanism] | None = None, failure: HttpFailure | None = None
    ) -> Response:
        return Response.text(401, reason, self._challenges(failed, failure))

    async def authenticate(self, request: Request) -> Response | Headers:
        authorization = request.header(b"authorization")
        if not authorization:
            if self._peer_certificate is not None and "CLIENT_CERT" in self._security.http_mechanisms:
                return await self._authenticate_certificate(request)
            return self._unauthorized("Unauthorized")
        remembered = self._remembered
        if remembered is not None and hmac.compare_digest(remembered[0], authorization):
            request.identity = remembered[1]
            return []
        cls = self._select(authorization)
        if cls is None:
            await self._security._failed(self._peer, None, "HTTP", "scheme not offered")
            return self._unauthorized("Unauthorized: authentication mechanism not supported")
        mechanism = self._mechanism(cls)
        security = self._security
        username: str | None = None
        outcome: object
        try:
            with trio.fail_after(security.auth_timeout_s):
                target = request.target.decode("latin-1")
                first = mechanism.authenticate(request.method, target, authorization)
                outcome, username = await security._answer_realm(first, mechanism)
                identity = None
                if isinstance(outcome, HttpSuccess):
                    identity = established_identity(mechanism)
                    if identity is None:
                        identity = await security.realm.identity(outcome.username)
        except (trio.TooSlowError, RealmUnavailableError) as exc:
            log.error("HTTP authentication could not complete: %s", type(exc).__name__)
            return Response.text(503, "Service Unavailable: the security realm did not answer")
        if isinstance(outcome, HttpSuccess) and identity is not None:
            security._succeeded(outcome.username)
            identity = Identity(
                identity.name,
                identity.realm,
                identity.groups,
                mechanism=cls.name or "",
                certificate_subject=identity.certificate_subject,
            )
            request.identity = identity
            if cls is BasicMechanism:
                self._remembered = (authorization, identity)
            return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in outcome.response_headers]
        failure = outcome if isinstance(outcome, HttpFailure) else HttpFailure(401, "no identity")
        await security._failed(self._peer, username, cls.name or cls.__name__, failure.reason)
        if failure.status == 400:
            return Response.text(400, "Bad Request: malformed Authorization header")
        return self._unauthorized("Unauthorized", cls, failure)
