"""PLAIN (RFC 4616), server side.

``[authzid] NUL authcid NUL passwd`` in one client message; the server asks the realm to
check the password (:class:`NeedPasswordCheck`) and completes with no final data, because
the Node Hot Rod client sends one AUTH round for PLAIN and expects ``01 00`` back.
"""

from __future__ import annotations

from gridactor.security.sasl._exchange import ExchangeMechanism
from gridactor.security.sasl.base import Failure, NeedPasswordCheck, SaslOutcome, Success
from gridactor.security.sasl.saslprep import SaslPrepError, saslprep

# RFC 4616 only requires accepting 255 octets per field; the cap stops a client from
# making the realm hash megabytes (PBKDF2 over a huge "password").
MAX_FIELD_BYTES = 1024


class PlainMechanism(ExchangeMechanism):
    name = "PLAIN"

    _username = ""

    def _on_step(self, response: bytes) -> SaslOutcome:
        fields = response.split(b"\x00")
        if len(fields) != 3:
            return Failure("PLAIN message must contain exactly two NUL separators")
        _, raw_authcid, raw_password = fields
        if not raw_authcid or not raw_password:
            return Failure("PLAIN authcid and password must not be empty")
        if any(len(f) > MAX_FIELD_BYTES for f in fields):
            return Failure("PLAIN field too long")
        try:
            authzid, authcid, password = (f.decode("utf-8") for f in fields)
        except UnicodeDecodeError:
            return Failure("PLAIN message is not valid UTF-8")
        # RFC 4616 §2: authcid and password are prepared with SASLprep; a string the
        # profile prohibits (controls, bad bidi) is refused rather than passed to the realm.
        try:
            authcid = saslprep(authcid, allow_unassigned=True)
            password = saslprep(password, allow_unassigned=True)
            authzid = saslprep(authzid, allow_unassigned=True) if authzid else ""
        except SaslPrepError as exc:
            return Failure(f"PLAIN SASLprep: {exc}")
        if not authcid or not password:
            return Failure("PLAIN authcid or password empty after SASLprep")
        # Without a run-as permission model an authzid may only name the caller itself.
        if authzid and authzid != authcid:
            return Failure("PLAIN authzid differs from authcid")
        self._username = authcid
        return NeedPasswordCheck(authcid, password)

    def _on_password_check(self, valid: bool) -> SaslOutcome:
        if not valid:
            return Failure("PLAIN password rejected by the realm")
        return Success(self._username)
