"""SCRAM-SHA-1/-256/-384/-512 (RFC 5802, RFC 7677), server side, without channel binding.

Implemented from the RFC rather than on ``scramp``: the server has to stop between
client-first and server-first to ask the realm actor (:class:`NeedCredentials`), to serve
unknown users a plausible fake server-first, and to derive from a clear password with
Elytron's iteration rules — none of which fit scramp's synchronous lookup callback.

Failure reasons start with the RFC 5802 §7 ``server-error-value`` that applies
(``e=invalid-proof`` …) so logs read like the RFC. The client only ever learns
"authentication failed": the Hot Rod AUTH error carries no ``e=`` data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from typing import ClassVar

from gridactor.security.credentials import (
    SCRAM_DEFAULT_ITERATIONS,
    SCRAM_HASHES,
    SCRAM_SALT_BYTES,
    ClearPassword,
    Credential,
    ScramSaltedPassword,
    scram_salted_password,
)
from gridactor.security.sasl._exchange import ExchangeMechanism, NonceFactory, RandomBytes
from gridactor.security.sasl.base import (
    Challenge,
    Failure,
    NeedCredentials,
    SaslOutcome,
    SaslSettings,
    Success,
)
from gridactor.security.sasl.saslprep import SaslPrepError, saslprep

# A fake salt must look the same for an unknown user on every attempt (else probing twice
# reveals the user is unknown) and differ between processes only by this secret.
_PROCESS_SECRET = secrets.token_bytes(32)
MAX_MESSAGE_BYTES = 4096
_NONCE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")  # printable ASCII except ','
_SASLNAME_ESCAPE = re.compile(r"=(?!2C|3D)")


def b64decode_canonical(text: str) -> bytes:
    """Strict base64: also refuses non-zero padding bits, so one value has one spelling."""
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("non-canonical base64")
    return raw


class ScramFormatError(ValueError):
    """A SCRAM message that breaks RFC 5802 syntax; ``args[0]`` is the RFC error value."""


def decode_saslname(value: str) -> str:
    """Undo ``=2C``/``=3D`` escaping (RFC 5802 §5.1); any other ``=`` is an error."""
    if _SASLNAME_ESCAPE.search(value):
        raise ScramFormatError("invalid-username-encoding")
    return value.replace("=2C", ",").replace("=3D", "=")


def encode_saslname(value: str) -> str:
    return value.replace("=", "=3D").replace(",", "=2C")


def clamp_iterations(minimum: int, maximum: int, wanted: int = SCRAM_DEFAULT_ITERATIONS) -> int:
    """Elytron's iteration count for clear passwords: max(min, min(max, wanted))."""
    return max(minimum, min(maximum, wanted))


def scram_keys(hash_name: str, salted_password: bytes) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) from SaltedPassword."""
    client_key = hmac.new(salted_password, b"Client Key", hash_name).digest()
    server_key = hmac.new(salted_password, b"Server Key", hash_name).digest()
    return hashlib.new(hash_name, client_key).digest(), server_key


class ScramMechanism(ExchangeMechanism):
    name = "SCRAM-SHA-256"
    algorithm: ClassVar[str] = "scram-sha-256"

    def __init__(
        self,
        settings: SaslSettings,
        *,
        nonce_factory: NonceFactory | None = None,
        random_bytes: RandomBytes | None = None,
        server_secret: bytes | None = None,
    ) -> None:
        super().__init__(settings, nonce_factory=nonce_factory, random_bytes=random_bytes)
        self._hash = SCRAM_HASHES[self.algorithm]
        self._digest_size = hashlib.new(self._hash).digest_size
        self._secret = server_secret if server_secret is not None else _PROCESS_SECRET
        self._gs2_header = ""
        self._client_first_bare = ""
        self._client_nonce = ""
        self._server_first = ""
        self._nonce = ""
        self._username = ""
        self._stored_key = b""
        self._server_key = b""
        self._fake = False

    # -- client-first ----------------------------------------------------------------------

    def _parse_client_first(self, message: str) -> str:
        """Validate client-first; return the prepared user name."""
        parts = message.split(",")
        if len(parts) < 4:
            raise ScramFormatError("invalid-encoding")
        cb_flag, authzid_part = parts[0], parts[1]
        if cb_flag.startswith("p="):
            # We offer no -PLUS mechanism, so a client asking for binding is refused.
            raise ScramFormatError("channel-binding-not-supported")
        if cb_flag not in ("n", "y"):
            # 'y' (client could bind, thinks we cannot) is right: we advertise no -PLUS.
            raise ScramFormatError("invalid-encoding")
        authzid = ""
        if authzid_part:
            if not authzid_part.startswith("a=") or len(authzid_part) == 2:
                raise ScramFormatError("invalid-encoding")
            authzid = decode_saslname(authzid_part[2:])
        bare = parts[2:]
        if bare[0].startswith("m="):
            raise ScramFormatError("extensions-not-supported")
        if len(bare) != 2 or not bare[0].startswith("n=") or not bare[1].startswith("r="):
            # Attributes out of order, unknown letters and optional extensions alike.
            raise ScramFormatError("invalid-encoding")
        nonce = bare[1][2:]
        if not _NONCE.fullmatch(nonce):
            raise ScramFormatError("invalid-encoding")
        try:
            username = saslprep(decode_saslname(bare[0][2:]), allow_unassigned=True)
            if authzid:
                authzid = saslprep(authzid, allow_unassigned=True)
        except SaslPrepError:
            raise ScramFormatError("invalid-username-encoding") from None
        if not username:
            raise ScramFormatError("invalid-username-encoding")
        if authzid and authzid != username:
            # No run-as permission model: an authzid may only repeat the user itself.
            raise ScramFormatError("other-error")
        self._gs2_header = f"{cb_flag},{authzid_part},"
        self._client_first_bare = ",".join(bare)
        self._client_nonce = nonce
        return username

    def _on_step(self, response: bytes) -> SaslOutcome:
        if len(response) > MAX_MESSAGE_BYTES:
            return Failure("e=other-error: SCRAM message too long")
        if not self._server_first:
            try:
                self._username = self._parse_client_first(response.decode("utf-8"))
            except UnicodeDecodeError:
                return Failure("e=invalid-encoding: client-first is not UTF-8")
            except ScramFormatError as exc:
                return Failure(f"e={exc.args[0]}: bad client-first-message")
            return NeedCredentials(self._username, (ScramSaltedPassword, ClearPassword))
        return self._check_client_final(response)

    # -- server-first ----------------------------------------------------------------------

    def _fake_salt(self) -> bytes:
        mac = hmac.new(self._secret, f"{self.algorithm}\x00{self._username}".encode(), hashlib.sha256)
        return mac.digest()[:SCRAM_SALT_BYTES]

    def _on_credentials(self, credentials: Sequence[Credential] | None) -> SaslOutcome:
        lo, hi = self.settings.scram_min_iterations, self.settings.scram_max_iterations
        salted: bytes | None = None
        salt, iterations = b"", 0
        for credential in credentials or ():
            if isinstance(credential, ScramSaltedPassword) and credential.algorithm == self.algorithm:
                if not lo <= credential.iterations <= hi:
                    return Failure("e=other-error: stored iteration count outside the configured bounds")
                salt, iterations, salted = credential.salt, credential.iterations, credential.salted_password
                break
        else:
            for credential in credentials or ():
                if isinstance(credential, ClearPassword):
                    # Elytron derives per exchange with a fresh salt: nothing is cached.
                    salt, iterations = self._random_bytes(SCRAM_SALT_BYTES), clamp_iterations(lo, hi)
                    salted = scram_salted_password(self.algorithm, credential.password, salt, iterations)
                    break
        if salted is None:
            # Unknown user, or no credential SCRAM can use: continue with a plausible
            # server-first and fail only at the end, so the answer reveals nothing.
            self._fake = True
            salt, iterations = self._fake_salt(), clamp_iterations(lo, hi)
            salted = self._random_bytes(self._digest_size)
        self._stored_key, self._server_key = scram_keys(self._hash, salted)
        server_nonce = self._new_nonce()
        if not _NONCE.fullmatch(server_nonce):
            return Failure("e=other-error: nonce factory produced an invalid nonce")
        self._nonce = self._client_nonce + server_nonce
        self._server_first = f"r={self._nonce},s={base64.b64encode(salt).decode()},i={iterations}"
        return Challenge(self._server_first.encode())

    # -- client-final ----------------------------------------------------------------------

    def _check_client_final(self, response: bytes) -> SaslOutcome:
        try:
            message = response.decode("ascii")
        except UnicodeDecodeError:
            return Failure("e=invalid-encoding: client-final is not ASCII")
        without_proof, sep, proof_attr = message.rpartition(",p=")
        parts = without_proof.split(",")
        if not sep or len(parts) != 2 or not parts[0].startswith("c=") or not parts[1].startswith("r="):
            return Failure("e=invalid-encoding: bad client-final-message")
        try:
            cbind = b64decode_canonical(parts[0][2:])
            proof = b64decode_canonical(proof_attr)
        except (binascii.Error, ValueError):
            return Failure("e=invalid-encoding: bad base64")
        if not hmac.compare_digest(cbind, self._gs2_header.encode("utf-8")):
            return Failure("e=channel-bindings-dont-match: c= differs from the gs2 header")
        if not hmac.compare_digest(parts[1][2:].encode(), self._nonce.encode()):
            return Failure("e=other-error: nonce mismatch")
        if len(proof) != self._digest_size:
            return Failure("e=invalid-proof: proof has the wrong length")
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        client_signature = hmac.new(self._stored_key, auth_message, self._hash).digest()
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        proof_ok = hmac.compare_digest(hashlib.new(self._hash, client_key).digest(), self._stored_key)
        if self._fake or not proof_ok:
            return Failure("e=invalid-proof: authentication failed")
        server_signature = hmac.new(self._server_key, auth_message, self._hash).digest()
        self._forget()
        return Success(self._username, b"v=" + base64.b64encode(server_signature))

    def _forget(self) -> None:
        self._stored_key = self._server_key = b""


class ScramSha1Mechanism(ScramMechanism):
    name = "SCRAM-SHA-1"
    algorithm = "scram-sha-1"


class ScramSha256Mechanism(ScramMechanism):
    name = "SCRAM-SHA-256"
    algorithm = "scram-sha-256"


class ScramSha384Mechanism(ScramMechanism):
    name = "SCRAM-SHA-384"
    algorithm = "scram-sha-384"


class ScramSha512Mechanism(ScramMechanism):
    name = "SCRAM-SHA-512"
    algorithm = "scram-sha-512"


SCRAM_MECHANISMS: dict[str, type[ScramMechanism]] = {
    cls.name: cls
    for cls in (ScramSha1Mechanism, ScramSha256Mechanism, ScramSha384Mechanism, ScramSha512Mechanism)
}
