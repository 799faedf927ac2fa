"""HTTP Basic (RFC 7617): ``Authorization: Basic base64(user ":" password)``.

The password is checked by the realm (:class:`NeedPasswordCheck`), so it works with any
stored credential. Anything malformed is a 401 with a fresh challenge, never a 500.
Only over TLS in practice: Infinispan offers BASIC implicitly only with a TLS identity.
"""

from __future__ import annotations

import base64
import binascii
import re

from gridactor.security.http_auth.base import (
    MAX_AUTHORIZATION_LENGTH,
    HttpAuthOutcome,
    HttpMechanism,
    HttpSuccess,
    NeedPasswordCheck,
    header_text,
    quote,
)

_BASIC = re.compile(r"^[ \t]*basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BasicMechanism(HttpMechanism):
    name = "BASIC"
    scheme = "BASIC"

    _username: str | None = None

    def challenge(self) -> list[str]:
        value = f"Basic realm={quote(self.settings.realm)}"
        if self.settings.basic_charset:
            value += f", charset={quote(self.settings.basic_charset)}"
        return [value]

    def authenticate(self, method: str, uri: str, authorization: str | bytes | None) -> HttpAuthOutcome:
        text = header_text(authorization)
        if not text:
            return self._fail(401, "no credentials")
        if len(text) > MAX_AUTHORIZATION_LENGTH:
            return self._fail(401, "Authorization header too long")
        match = _BASIC.match(text)
        if match is None:
            return self._fail(401, "not a Basic credentials header")
        try:
            decoded = base64.b64decode(match.group(1), validate=True)
        except (binascii.Error, ValueError):
            return self._fail(401, "credentials are not valid base64")
        try:
            pair = decoded.decode("utf-8")
        except UnicodeDecodeError:
            return self._fail(401, "credentials are not valid UTF-8")
        username, sep, password = pair.partition(":")
        if not sep:
            return self._fail(401, "credentials without ':'")
        if not username or _CONTROL.search(username) or _CONTROL.search(password):
            return self._fail(401, "empty username or control characters in credentials")
        if not password:
            # Some realms (LDAP) treat an empty password as an anonymous bind: refuse early.
            return self._fail(401, "empty password")
        self._username = username
        return NeedPasswordCheck(username, password)

    def supply_password_check(self, valid: bool) -> HttpAuthOutcome:
        username, self._username = self._username, None
        if username is None:
            return self._fail(401, "password check answered without a request")
        if not valid:
            return self._fail(401, "wrong username or password")
        return HttpSuccess(username, (), self.name)
