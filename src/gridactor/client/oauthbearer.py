"""OAUTHBEARER (RFC 7628), client side, for :class:`gridactor.client.hotrod.HotRodClient`.

Sends ``gs2-header %x01 [host=… %x01 port=… %x01] auth=Bearer <token> %x01 %x01`` as the
initial response. If the server rejects the token it sends a JSON error as a challenge
(RFC 7628 §3.2.2); the client keeps it in :attr:`OAuthBearerClient.server_error` and answers
the single ``%x01`` the RFC requires, after which the server fails the exchange. The token
never appears in a repr.

Usage::

    async with open_hotrod_client(host, port, sasl=OAuthBearerClient(access_token)) as client:
        ...
"""

from __future__ import annotations

import json
import re

from gridactor.client.hotrod import HotRodAuthenticationError

__all__ = ["OAuthBearerClient"]

_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _saslname(name: str) -> str:
    # RFC 5801: "," and "=" in an authzid are sent as "=2C" and "=3D".
    return name.replace("=", "=3D").replace(",", "=2C")


class OAuthBearerClient:
    name = "OAUTHBEARER"

    def __init__(
        self, token: str, *, authzid: str | None = None, host: str | None = None, port: int | None = None
    ) -> None:
        if not _B64TOKEN.fullmatch(token):
            raise ValueError("an OAuth 2.0 bearer token is a b64token (RFC 6750 §2.1)")
        header = f"n,{'a=' + _saslname(authzid) if authzid else ''},"
        pairs = []
        if host is not None:
            pairs.append(f"host={host}")
        if port is not None:
            pairs.append(f"port={port}")
        pairs.append(f"auth=Bearer {token}")
        self._message = (header + "\x01" + "".join(p + "\x01" for p in pairs) + "\x01").encode()
        self._sent = False
        self.server_error: dict[str, object] | None = None

    def __repr__(self) -> str:
        return "OAuthBearerClient(token=***)"

    def initial_response(self) -> bytes:
        self._sent = True
        return self._message

    def evaluate(self, challenge: bytes) -> bytes | None:
        if not self._sent:  # the server asked for the message instead of taking it first
            self._sent = True
            return self._message
        if self.server_error is not None:
            raise HotRodAuthenticationError(0, "OAUTHBEARER: a second challenge after the error")
        try:
            error = json.loads(challenge)
        except ValueError:
            error = None
        if not isinstance(error, dict):
            raise HotRodAuthenticationError(0, "OAUTHBEARER: the server challenge is not a JSON error")
        self.server_error = error
        return b"\x01"  # RFC 7628 §3.2.3: acknowledge; the server then fails the exchange

    def complete(self, final: bytes) -> None:
        if self.server_error is not None:
            raise HotRodAuthenticationError(0, f"OAUTHBEARER: the server reported {self.server_error}")
