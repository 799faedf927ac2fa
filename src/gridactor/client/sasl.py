"""Client side of the password SASL mechanisms (for gridactor's own Hot Rod client).

Sans-IO like the server side: the caller moves bytes between the AUTH exchange and
these objects. Usage, whatever the mechanism::

    mech = create_client_mechanism("SCRAM-SHA-256", username, password)
    response = mech.initial_response()            # AUTH round 1 payload
    while the server answers "not complete" with a challenge:
        response = mech.respond(challenge)        # next AUTH payload
    mech.complete(final_data)                     # checks rspauth / v= (None if none)

After :meth:`ClientMechanism.complete`, :meth:`wrap` / :meth:`unwrap` protect frames if a
DIGEST security layer was negotiated (framing: ``gridactor.security.sasl.framing``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable

from gridactor.security.credentials import DIGEST_HASHES, SCRAM_HASHES, scram_salted_password
from gridactor.security.sasl.digest import (
    CIPHERS,
    DEFAULT_MAXBUF,
    NC_FIRST,
    QOP_AUTH,
    QOP_AUTH_CONF,
    DigestParseError,
    DigestSecurityLayer,
    parse_directives,
    quote,
    response_digest,
    session_key,
    user_realm_password_hash,
)
from gridactor.security.sasl.scram import encode_saslname, scram_keys


class SaslClientError(Exception):
    """The server's messages are malformed or fail verification (possible impostor)."""


class ClientMechanism:
    name = ""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password
        self.completed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} user={self.username!r}>"

    def initial_response(self) -> bytes:
        return b""

    def respond(self, challenge: bytes) -> bytes:
        raise SaslClientError(f"{self.name} expects no challenge")

    def complete(self, final_data: bytes | None) -> None:
        if final_data:
            raise SaslClientError(f"{self.name} expects no final data")
        self.completed = True

    @property
    def negotiated_qop(self) -> str:
        return QOP_AUTH

    def wrap(self, data: bytes) -> bytes:
        return data

    def unwrap(self, data: bytes) -> bytes:
        return data


class PlainClient(ClientMechanism):
    name = "PLAIN"

    def __init__(self, username: str, password: str, authzid: str = "") -> None:
        super().__init__(username, password)
        self.authzid = authzid

    def initial_response(self) -> bytes:
        return b"\x00".join(s.encode() for s in (self.authzid, self.username, self._password))


class CramMd5Client(ClientMechanism):
    name = "CRAM-MD5"

    def respond(self, challenge: bytes) -> bytes:
        digest = hmac.new(self._password.encode(), challenge, hashlib.md5).hexdigest()
        return f"{self.username} {digest}".encode()


class DigestClient(ClientMechanism):
    """RFC 2831 client for DIGEST-MD5 and the DIGEST-SHA-* variants."""

    def __init__(
        self,
        name: str,
        username: str,
        password: str,
        *,
        protocol: str = "hotrod",
        server_name: str = "infinispan",
        qop: tuple[str, ...] = (QOP_AUTH,),
        ciphers: tuple[str, ...] = CIPHERS,
        maxbuf: int = DEFAULT_MAXBUF,
        authzid: str | None = None,
        cnonce_factory: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(username, password)
        if not name.startswith("DIGEST-") or name.lower() not in DIGEST_HASHES:
            raise ValueError(f"not a DIGEST mechanism: {name}")
        self.name = name
        self._hash = DIGEST_HASHES[name.lower()]
        self._digest_uri = f"{protocol}/{server_name}".encode()
        self._qop_prefs, self._cipher_prefs, self._maxbuf = qop, ciphers, maxbuf
        self._authzid = authzid
        self._cnonce = (cnonce_factory or (lambda: secrets.token_hex(16)))()
        self._expected_rspauth = b""
        self._pending_layer: DigestSecurityLayer | None = None
        self._layer: DigestSecurityLayer | None = None

    def respond(self, challenge: bytes) -> bytes:
        try:
            fields = parse_directives(challenge.decode("latin-1"))
        except DigestParseError as exc:
            raise SaslClientError(f"bad digest-challenge: {exc}") from None
        if "nonce" not in fields or fields.get("algorithm") != "md5-sess":
            raise SaslClientError("digest-challenge lacks nonce or algorithm=md5-sess")
        offered = fields.get("qop", QOP_AUTH).split(",")
        qop = next((q for q in self._qop_prefs if q in offered), None)
        if qop is None:
            raise SaslClientError("no acceptable qop offered")
        cipher = None
        if qop == QOP_AUTH_CONF:
            offered_ciphers = fields.get("cipher", "").split(",")
            cipher = next((c for c in self._cipher_prefs if c in offered_ciphers), None)
            if cipher is None:
                raise SaslClientError("no acceptable cipher offered")
        realm = fields.get("realm", "")
        nonce = fields["nonce"].encode("latin-1")
        cnonce = self._cnonce.encode()
        urp = user_realm_password_hash(
            self._hash, self.username.encode(), realm.encode("latin-1"), self._password.encode()
        )
        authzid = self._authzid.encode() if self._authzid is not None else None
        ha1 = session_key(self._hash, urp, nonce, cnonce, authzid)

        def digest(for_client: bool) -> bytes:
            return response_digest(
                self._hash,
                ha1,
                nonce=nonce,
                nc=NC_FIRST,
                cnonce=cnonce,
                qop=qop,
                digest_uri=self._digest_uri,
                for_client=for_client,
            )

        self._expected_rspauth = b"rspauth=" + digest(False)
        parts = [f'username="{quote(self.username)}"']
        if "realm" in fields:
            parts.append(f'realm="{quote(realm)}"')
        parts += [
            f'nonce="{quote(fields["nonce"])}"',
            f'cnonce="{quote(self._cnonce)}"',
            f"nc={NC_FIRST}",
            f"qop={qop}",
        ]
        if cipher is not None:
            parts.append(f"cipher={cipher}")
        if qop != QOP_AUTH and self._maxbuf != DEFAULT_MAXBUF:
            parts.append(f"maxbuf={self._maxbuf}")
        parts.append(f'digest-uri="{quote(self._digest_uri.decode())}"')
        parts.append(f"response={digest(True).decode()}")
        if self._authzid is not None:
            parts.append(f'authzid="{quote(self._authzid)}"')
        parts.append("charset=utf-8")
        if qop != QOP_AUTH:
            server_maxbuf = int(fields.get("maxbuf", DEFAULT_MAXBUF))
            self._pending_layer = DigestSecurityLayer(
                self._hash,
                ha1,
                qop,
                cipher,
                is_server=False,
                send_maxbuf=server_maxbuf,
                recv_maxbuf=self._maxbuf,
            )
        return ",".join(parts).encode()

    def complete(self, final_data: bytes | None) -> None:
        if not self._expected_rspauth:
            raise SaslClientError("completion before the digest-challenge")
        if final_data is None or not hmac.compare_digest(final_data, self._expected_rspauth):
            raise SaslClientError("server's rspauth does not verify")
        self._layer = self._pending_layer
        self.completed = True

    @property
    def negotiated_qop(self) -> str:
        return self._layer.qop if self._layer is not None else QOP_AUTH

    @property
    def max_send_size(self) -> int | None:
        return None if self._layer is None else self._layer.max_send_size

    def wrap(self, data: bytes) -> bytes:
        return data if self._layer is None else self._layer.wrap(data)

    def unwrap(self, data: bytes) -> bytes:
        return data if self._layer is None else self._layer.unwrap(data)


class ScramClient(ClientMechanism):
    """RFC 5802 client without channel binding (gs2 flag ``n``)."""

    def __init__(
        self,
        name: str,
        username: str,
        password: str,
        *,
        min_iterations: int = 4096,
        cnonce_factory: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(username, password)
        if name.lower() not in SCRAM_HASHES:
            raise ValueError(f"not a SCRAM mechanism: {name}")
        self.name = name
        self._algorithm = name.lower()
        self._hash = SCRAM_HASHES[self._algorithm]
        self._min_iterations = min_iterations
        self._cnonce = (cnonce_factory or (lambda: secrets.token_urlsafe(24)))()
        self._bare = f"n={encode_saslname(username)},r={self._cnonce}"
        self._expected_v = b""

    def initial_response(self) -> bytes:
        return b"n,," + self._bare.encode()

    def respond(self, challenge: bytes) -> bytes:
        try:
            server_first = challenge.decode("ascii")
            attrs = dict(part.split("=", 1) for part in server_first.split(","))
            nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"], validate=True), int(attrs["i"])
        except (UnicodeDecodeError, ValueError, KeyError) as exc:
            raise SaslClientError(f"bad server-first-message ({type(exc).__name__})") from None
        if not nonce.startswith(self._cnonce) or len(nonce) == len(self._cnonce):
            raise SaslClientError("server nonce does not extend ours")
        if iterations < self._min_iterations:
            raise SaslClientError("iteration count below the accepted minimum")
        salted = scram_salted_password(self._algorithm, self._password, salt, iterations)
        stored_key, server_key = scram_keys(self._hash, salted)
        client_key = hmac.new(salted, b"Client Key", self._hash).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, self._hash).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._expected_v = b"v=" + base64.b64encode(hmac.new(server_key, auth_message, self._hash).digest())
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def complete(self, final_data: bytes | None) -> None:
        if not self._expected_v or final_data is None:
            raise SaslClientError("missing server-final-message")
        if not hmac.compare_digest(final_data, self._expected_v):
            raise SaslClientError("server signature does not verify")
        self.completed = True


def create_client_mechanism(name: str, username: str, password: str, **options: object) -> ClientMechanism:
    """A client mechanism by SASL name; ``options`` go to the DIGEST/SCRAM constructors."""
    if name == "PLAIN":
        return PlainClient(username, password, **options)  # type: ignore[arg-type]
    if name == "CRAM-MD5":
        return CramMd5Client(username, password)
    if name.lower() in DIGEST_HASHES and name.startswith("DIGEST-"):
        return DigestClient(name, username, password, **options)  # type: ignore[arg-type]
    if name.lower() in SCRAM_HASHES:
        return ScramClient(name, username, password, **options)  # type: ignore[arg-type]
    raise ValueError(f"unsupported SASL mechanism {name!r}")
