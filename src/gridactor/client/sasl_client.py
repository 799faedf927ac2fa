"""Client-side SASL mechanisms for :class:`gridactor.client.hotrod.HotRodClient`.

Sans-IO objects that follow :class:`gridactor.client.hotrod.SaslClientMechanism`:
PLAIN (RFC 4616) and SCRAM-SHA-1/256/384/512 (RFC 5802, RFC 7677). No third-party
dependency: SCRAM is a handful of HMACs over ``hashlib.pbkdf2_hmac``.

SCRAM here verifies the server's signature (``v=``) before it reports success, so a
server that does not know the password cannot pass as authenticated; it offers no
channel binding (gs2 header ``n,,``), as the Node and Java Hot Rod clients do without TLS
binding.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import stringprep
import unicodedata

from gridactor.client.hotrod import HotRodAuthenticationError
from gridactor.client.sasl import ClientMechanism, create_client_mechanism

__all__ = ["PlainClient", "ScramClient", "client_mechanism", "saslprep"]


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep (stored strings profile) of a user name or password.

    ASCII text comes back unchanged; this matters for non-ASCII passwords, which a
    server that prepares them (Elytron does) would otherwise reject.
    """
    if text.isascii():
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
            raise ValueError("SASLprep: control characters are prohibited")
        return text
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21,
        stringprep.in_table_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    for ch in prepared:
        if any(table(ch) for table in prohibited):
            raise ValueError(f"SASLprep: prohibited character U+{ord(ch):04X}")
    # Bidi rule: RandALCat text must start and end with RandALCat and hold no LCat.
    if any(stringprep.in_table_d1(ch) for ch in prepared) and (
        any(stringprep.in_table_d2(ch) for ch in prepared)
        or not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1]))
    ):
        raise ValueError("SASLprep: invalid bidirectional text")
    return prepared


class PlainClient:
    """PLAIN: one message ``authzid NUL authcid NUL password``; the server answers completed."""

    name = "PLAIN"

    def __init__(self, username: str, password: str, *, authzid: str = "") -> None:
        self._message = "\0".join((authzid, username, password)).encode()
        self._sent = False

    def initial_response(self) -> bytes:
        self._sent = True
        return self._message

    def evaluate(self, challenge: bytes) -> bytes | None:
        if not self._sent:  # a server that asked for the message instead of taking it first
            self._sent = True
            return self._message
        raise HotRodAuthenticationError(0, "PLAIN: unexpected challenge after the credentials")

    def complete(self, final: bytes) -> None:
        return None


_SCRAM_HASHES = {"SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _escape_name(name: str) -> str:
    # RFC 5802 §5.1: "," and "=" in a user name are sent as "=2C" and "=3D".
    return name.replace("=", "=3D").replace(",", "=2C")


def _attributes(message: bytes) -> dict[str, str]:
    try:
        text = message.decode()
    except UnicodeDecodeError:
        raise HotRodAuthenticationError(0, "SCRAM: server message is not UTF-8") from None
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and len(key) == 1:
            out.setdefault(key, value)
    return out


class ScramClient:
    """SCRAM-SHA-1/256/384/512 without channel binding.

    ``nonce`` and ``min_iterations`` are for tests and policy: a server asking for fewer
    iterations than ``min_iterations`` is refused (a downgrade of the stored key's cost).
    ``salted_passwords``: a dict the caller owns, to reuse the PBKDF2 result across
    connections (keyed by hash, password, salt and iterations), as long-lived clients do:
    the key derivation is deliberately slow and would otherwise dominate a connection.
    """

    def __init__(
        self,
        mechanism: str,
        username: str,
        password: str,
        *,
        nonce: str | None = None,
        min_iterations: int = 4096,
        max_iterations: int = 1_000_000,
        salted_passwords: dict[tuple[str, bytes, bytes, int], bytes] | None = None,
    ) -> None:
        prefix, _, hash_name = mechanism.upper().partition("SCRAM-")
        digest = _SCRAM_HASHES.get(hash_name)
        if prefix or digest is None:
            raise ValueError(f"unsupported SCRAM mechanism {mechanism!r}")
        self.name = mechanism.upper()
        self._digest = digest
        self._username = saslprep(username)
        self._password = saslprep(password).encode()
        self._nonce = nonce or secrets.token_hex(16)
        self._min_iterations = min_iterations
        self._max_iterations = max_iterations
        self._salted_passwords = salted_passwords
        self._client_first_bare = f"n={_escape_name(self._username)},r={self._nonce}"
        self._server_signature: bytes | None = None
        self._verified = False

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self._digest).digest()

    def initial_response(self) -> bytes:
        return ("n,," + self._client_first_bare).encode()

    def evaluate(self, challenge: bytes) -> bytes | None:
        if self._server_signature is None:
            return self._client_final(challenge)
        self._verify(challenge)
        return None

    def complete(self, final: bytes) -> None:
        if final and not self._verified:
            self._verify(final)
        if not self._verified:
            raise HotRodAuthenticationError(0, f"{self.name}: the server never proved it knows the password")

    def _client_final(self, server_first: bytes) -> bytes:
        attrs = _attributes(server_first)
        if "e" in attrs:
            raise HotRodAuthenticationError(0, f"{self.name}: server error {attrs['e']}")
        nonce = attrs.get("r", "")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise HotRodAuthenticationError(0, f"{self.name}: the server nonce does not extend ours")
        try:
            salt = base64.b64decode(attrs["s"], validate=True)
            iterations = int(attrs["i"])
        except (KeyError, ValueError):
            raise HotRodAuthenticationError(0, f"{self.name}: malformed server-first message") from None
        if not self._min_iterations <= iterations <= self._max_iterations:
            raise HotRodAuthenticationError(0, f"{self.name}: iteration count {iterations} refused")
        cache_key = (self._digest, self._password, salt, iterations)
        cache = self._salted_passwords
        salted = cache.get(cache_key) if cache is not None else None
        if salted is None:
            salted = hashlib.pbkdf2_hmac(self._digest, self._password, salt, iterations)
            if cache is not None:
                cache[cache_key] = salted
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self._digest, client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._client_first_bare},{server_first.decode()},{without_proof}".encode()
        client_signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, client_signature, strict=True))
        server_key = self._hmac(salted, b"Server Key")
        self._server_signature = self._hmac(server_key, auth_message)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def _verify(self, server_final: bytes) -> None:
        attrs = _attributes(server_final)
        if "e" in attrs:
            raise HotRodAuthenticationError(0, f"{self.name}: server error {attrs['e']}")
        try:
            signature = base64.b64decode(attrs["v"], validate=True)
        except (KeyError, ValueError):
            raise HotRodAuthenticationError(0, f"{self.name}: malformed server-final message") from None
        if self._server_signature is None or not hmac.compare_digest(signature, self._server_signature):
            raise HotRodAuthenticationError(0, f"{self.name}: wrong server signature")
        self._verified = True


def client_mechanism(
    mechanism: str, username: str, password: str
) -> PlainClient | ScramClient | ClientMechanism:
    """The client mechanism for an IANA name.

    PLAIN and SCRAM-SHA-* from this module; DIGEST-* and CRAM-MD5 from
    ``gridactor.client.sasl`` (the Hot Rod client adapts their interface).
    """
    name = mechanism.upper()
    if name == "PLAIN":
        return PlainClient(username, password)
    if name.startswith("SCRAM-"):
        return ScramClient(name, username, password)
    try:
        return create_client_mechanism(name, username, password)
    except ValueError:
        raise ValueError(f"no client implementation of SASL mechanism {mechanism!r}") from None
