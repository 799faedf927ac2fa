"""CRAM-MD5 (RFC 2195), server side.

The server sends a unique ``<random.timestamp@server-name>`` challenge; the client answers
``user SP hex(HMAC-MD5(password, challenge))``. Only a clear-text password can check that,
so the realm is asked for :class:`ClearPassword` alone.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence

from gridactor.security.credentials import ClearPassword, Credential
from gridactor.security.sasl._exchange import ExchangeMechanism
from gridactor.security.sasl.base import Challenge, Failure, NeedCredentials, SaslOutcome, Success

_DIGEST = re.compile(rb"[0-9a-f]{32}")
MAX_RESPONSE_BYTES = 1024
DEFAULT_SERVER_NAME = "gridactor"


def default_cram_nonce() -> str:
    # RFC 2195 suggests "random.timestamp"; the random part makes challenges unique even
    # when two connections start within one clock tick.
    return f"{secrets.randbelow(2**63)}.{time.time_ns()}"


class CramMd5Mechanism(ExchangeMechanism):
    name = "CRAM-MD5"

    _challenge = b""
    _username = ""
    _digest = b""

    def _on_step(self, response: bytes) -> SaslOutcome:
        if not self._challenge:
            if response:
                return Failure("CRAM-MD5 has no initial response")
            host = self.settings.server_name or DEFAULT_SERVER_NAME
            nonce = self._new_nonce(default_cram_nonce)
            self._challenge = f"<{nonce}@{host}>".encode()
            return Challenge(self._challenge)
        if len(response) > MAX_RESPONSE_BYTES:
            return Failure("CRAM-MD5 response too long")
        user_part, sep, digest = response.rpartition(b" ")
        if not sep or not user_part or not _DIGEST.fullmatch(digest):
            return Failure("CRAM-MD5 response is not 'user SP 32-lowercase-hex'")
        if b"\x00" in user_part:
            return Failure("CRAM-MD5 user name contains NUL")
        try:
            username = user_part.decode("utf-8")
        except UnicodeDecodeError:
            return Failure("CRAM-MD5 user name is not valid UTF-8")
        self._username, self._digest = username, digest
        return NeedCredentials(username, (ClearPassword,))

    def _on_credentials(self, credentials: Sequence[Credential] | None) -> SaslOutcome:
        password = next((c for c in credentials or () if isinstance(c, ClearPassword)), None)
        if password is None:
            return Failure("CRAM-MD5: no clear-text password for this user (or no such user)")
        expected = hmac.new(password.password.encode(), self._challenge, hashlib.md5).hexdigest().encode()
        if not hmac.compare_digest(expected, self._digest):
            return Failure("CRAM-MD5 digest mismatch")
        return Success(self._username)
