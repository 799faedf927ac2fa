"""Client-side Kerberos SASL mechanisms for :class:`gridactor.client.hotrod.HotRodClient`.

:class:`GssapiClient` (RFC 4752, with the auth-int/auth-conf security layer) and
:class:`Gs2Krb5Client` (RFC 5801), sans-IO, over python-gssapi (the ``kerberos`` extra).
Both verify the server's mutual-authentication token before they report success, so a
server without the service key cannot pass as authenticated.

``target`` names the service: a principal (``hotrod/datagrid@INFINISPAN.ORG``) or a
host-based name (``hotrod@datagrid``). ``credentials`` are the initiator credentials
(e.g. from ``gssapi.raw.acquire_cred_with_password``); None uses the default ccache.
"""

from __future__ import annotations

import gssapi
import gssapi.raw

from gridactor.client.hotrod import HotRodAuthenticationError

__all__ = ["Gs2Krb5Client", "GssapiClient", "service_name"]

_LAYERS = {"auth": 1, "auth-int": 2, "auth-conf": 4}
_QOPS = {v: k for k, v in _LAYERS.items()}
KRB5_OID_DER = bytes.fromhex("06092a864886f712010202")
_FLAGS = (
    gssapi.RequirementFlag.mutual_authentication
    | gssapi.RequirementFlag.integrity
    | gssapi.RequirementFlag.confidentiality
)


def service_name(target: str) -> gssapi.Name:
    if "/" in target:
        return gssapi.Name(target, gssapi.NameType.kerberos_principal)
    return gssapi.Name(target, gssapi.NameType.hostbased_service)


class GssapiClient:
    """GSSAPI: context establishment, then the wrapped layer negotiation.

    ``qop``: acceptable layers in preference order; the first one the server offers is used.
    """

    name = "GSSAPI"

    def __init__(
        self,
        target: str,
        credentials: gssapi.Credentials | None = None,
        *,
        qop: tuple[str, ...] = ("auth-conf", "auth-int", "auth"),
        authzid: str = "",
        max_buffer: int = 65536,
    ) -> None:
        unknown = [q for q in qop if q not in _LAYERS]
        if unknown or not qop:
            raise ValueError(f"unknown qop {unknown or qop!r}")
        self._context = gssapi.SecurityContext(
            name=service_name(target), creds=credentials, usage="initiate", flags=_FLAGS
        )
        self._qop = qop
        self._authzid = authzid.encode("utf-8")
        self._max_buffer = max_buffer
        self._layer = 0
        self.max_send_size: int | None = None
        self.max_receive_size = max_buffer

    def initial_response(self) -> bytes:
        return bytes(self._context.step())

    def evaluate(self, challenge: bytes) -> bytes | None:
        context = self._context
        if not context.complete:
            output = context.step(challenge)
            return b"" if context.complete else bytes(output or b"")
        if self._layer:
            raise HotRodAuthenticationError(0, "GSSAPI: unexpected challenge after the layer choice")
        offer = context.unwrap(challenge).message
        if len(offer) != 4:
            raise HotRodAuthenticationError(0, "GSSAPI: the layer offer is not 4 octets")
        offered, server_max = offer[0], int.from_bytes(offer[1:4], "big")
        chosen = next((_LAYERS[q] for q in self._qop if _LAYERS[q] & offered), 0)
        if not chosen:
            raise HotRodAuthenticationError(0, f"GSSAPI: no acceptable layer among {offered:#x}")
        if chosen != 1:
            if server_max == 0:
                raise HotRodAuthenticationError(0, "GSSAPI: a layer with a maximum buffer of 0")
            self.max_send_size = context.get_wrap_size_limit(server_max, chosen == 4)
        self._layer = chosen
        our_max = self._max_buffer if chosen != 1 else 0
        reply = bytes([chosen]) + our_max.to_bytes(3, "big") + self._authzid
        return bytes(context.wrap(reply, False).message)

    def complete(self, final: bytes) -> None:
        if final:
            self.evaluate(final)
        if not self._context.complete or not self._layer:
            raise HotRodAuthenticationError(0, "GSSAPI: the server completed before the exchange did")

    @property
    def negotiated_qop(self) -> str:
        return _QOPS.get(self._layer, "auth")

    def wrap(self, data: bytes) -> bytes:
        if self._layer in (0, 1):
            return data
        return bytes(self._context.wrap(data, self._layer == 4).message)

    def unwrap(self, data: bytes) -> bytes:
        if self._layer in (0, 1):
            return data
        result = self._context.unwrap(data)
        if self._layer == 4 and not result.encrypted:
            raise HotRodAuthenticationError(0, "GSSAPI: unencrypted buffer on a confidentiality layer")
        return bytes(result.message)


def _unframe(token: bytes) -> bytes:
    """Strip the RFC 2743 §3.1 framing (``60 len 06 09 <krb5 OID>``) of an initial token."""
    if len(token) < 2 or token[0] != 0x60:
        raise ValueError("not an RFC 2743 initial context token")
    pos = 2
    if token[1] & 0x80:
        pos += token[1] & 0x7F
    if not token[pos:].startswith(KRB5_OID_DER):
        raise ValueError("not a Kerberos V5 token")
    return token[pos + len(KRB5_OID_DER) :]


class Gs2Krb5Client:
    """GS2-KRB5: ``n,[a=authzid],`` + the unframed initial token, then the server's AP-REP.

    ``bind=False`` omits the GSS channel bindings, and ``bound_header`` binds a header
    other than the one sent: both exist for tests of servers that must refuse them.
    """

    name = "GS2-KRB5"

    def __init__(
        self,
        target: str,
        credentials: gssapi.Credentials | None = None,
        *,
        authzid: str = "",
        bind: bool = True,
        bound_header: bytes | None = None,
    ) -> None:
        escaped = authzid.replace("=", "=3D").replace(",", "=2C")
        self._header = b"n," + (b"a=" + escaped.encode("utf-8") if authzid else b"") + b","
        bindings = None
        if bind:
            bindings = gssapi.raw.ChannelBindings(application_data=bound_header or self._header)
        self._context = gssapi.SecurityContext(
            name=service_name(target),
            creds=credentials,
            usage="initiate",
            flags=gssapi.RequirementFlag.mutual_authentication,
            channel_bindings=bindings,
        )

    def initial_response(self) -> bytes:
        return self._header + _unframe(bytes(self._context.step()))

    def evaluate(self, challenge: bytes) -> bytes | None:
        self._context.step(challenge)
        if not self._context.complete:
            raise HotRodAuthenticationError(0, "GS2-KRB5: the context needs more than one round trip")
        return None

    def complete(self, final: bytes) -> None:
        if final and not self._context.complete:
            self.evaluate(final)
        if not self._context.complete:
            raise HotRodAuthenticationError(0, "GS2-KRB5: the server did not authenticate itself")
