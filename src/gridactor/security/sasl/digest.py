"""DIGEST-MD5 (RFC 2831) and Elytron's DIGEST-SHA, -SHA-256, -SHA-384, -SHA-512, server side.

The SHA variants are RFC 2831 with H replaced by the named hash everywhere (A1, A2, KD,
the security-layer key derivation); the integrity MAC stays HMAC-MD5 and the challenge
still says ``algorithm=md5-sess``, as Elytron does, so Infinispan's Java client interoperates.

Exchange:

1. empty client response → challenge
   ``realm="…",nonce="…",qop="…",[maxbuf=…,]charset=utf-8,[cipher="…",]algorithm=md5-sess``
   (Elytron's order; the Node client parses it);
2. the client's digest-response is checked strictly, then :class:`NeedCredentials` for a
   :class:`DigestHash` of this mechanism's algorithm and realm, or a :class:`ClearPassword`;
3. :class:`Success` with ``rspauth=…``; a negotiated ``auth-int``/``auth-conf`` layer then
   protects every frame through :meth:`DigestMechanism.wrap` / :meth:`DigestMechanism.unwrap`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import ClassVar

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, modes

from gridactor.security.credentials import DIGEST_HASHES, ClearPassword, Credential, DigestHash
from gridactor.security.sasl._exchange import ExchangeMechanism, NonceFactory, RandomBytes
from gridactor.security.sasl.base import (
    Challenge,
    Failure,
    NeedCredentials,
    SaslError,
    SaslOutcome,
    SaslSettings,
    Success,
)

try:  # cryptography >= 43 keeps the legacy ciphers apart (and warns on the old path)
    from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4, TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import (  # type: ignore[attr-defined,no-redef]
        ARC4,
        TripleDES,
    )

QOP_AUTH = "auth"
QOP_AUTH_INT = "auth-int"
QOP_AUTH_CONF = "auth-conf"
QOPS = (QOP_AUTH, QOP_AUTH_INT, QOP_AUTH_CONF)
# Strongest first: the order the challenge lists them in.
CIPHERS = ("3des", "rc4", "des", "rc4-56", "rc4-40")
DEFAULT_MAXBUF = 65536
MAX_MAXBUF = 16777215  # RFC 2831 §2.1.2.1: maxbuf is at most 2^24 - 1 …
MIN_MAXBUF = 17  # … and the client "MUST NOT" send 16 or less
MAX_RESPONSE_BYTES = 4096  # RFC 2831 §2.1.2: a digest-response is under 4096 bytes
NC_FIRST = "00000001"

# Where deployments configure the DIGEST knobs (`<property name=…>` in `<sasl>`).
PROP_MAXBUF = "javax.security.sasl.maxbuffer"
PROP_CIPHERS = "wildfly.security.sasl.digest.ciphers"
PROP_ALT_PROTOCOLS = "wildfly.sasl.digest.alternative_protocols"

_MAGIC_INT_C2S = b"Digest session key to client-to-server signing key magic constant"
_MAGIC_INT_S2C = b"Digest session key to server-to-client signing key magic constant"
_MAGIC_CONF_C2S = b"Digest H(A1) to client-to-server sealing key magic constant"
_MAGIC_CONF_S2C = b"Digest H(A1) to server-to-client sealing key magic constant"
_SECURITY_MARK = b":" + b"0" * 32  # A2 suffix for auth-int/auth-conf, whatever the hash
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_LWS = " \t\r\n"


class DigestParseError(ValueError):
    """A digest-challenge or digest-response that does not follow RFC 2831 syntax."""


# -- syntax --------------------------------------------------------------------------------


def parse_directives(text: str) -> dict[str, str]:
    """Parse ``name=value`` / ``name="quoted"`` pairs; names lower-cased, duplicates refused.

    Works on text decoded as ISO 8859-1 so that every byte maps to one character; callers
    re-encode a value with ``.encode("latin-1")`` to get its original bytes.
    """
    out: dict[str, str] = {}
    pos, end = 0, len(text)

    def skip_lws(i: int) -> int:
        while i < end and text[i] in _LWS:
            i += 1
        return i

    pos = skip_lws(pos)
    if pos == end:
        raise DigestParseError("no directives")
    while True:
        match = _TOKEN.match(text, pos)
        if match is None:
            raise DigestParseError("expected a directive name")
        name = match.group().lower()
        pos = skip_lws(match.end())
        if pos >= end or text[pos] != "=":
            raise DigestParseError("expected '='")
        pos = skip_lws(pos + 1)
        if pos < end and text[pos] == '"':
            chars: list[str] = []
            pos += 1
            while True:
                if pos >= end:
                    raise DigestParseError("unterminated quoted string")
                ch = text[pos]
                if ch == "\\":
                    if pos + 1 >= end:
                        raise DigestParseError("dangling escape")
                    ch = text[pos + 1]
                    pos += 1
                elif ch == '"':
                    pos += 1
                    break
                if ord(ch) < 0x20 or ord(ch) == 0x7F:
                    raise DigestParseError("control character in a quoted value")
                chars.append(ch)
                pos += 1
            value = "".join(chars)
        else:
            match = _TOKEN.match(text, pos)
            if match is None:
                raise DigestParseError("expected a value")
            value = match.group()
            pos = match.end()
        if name in out:
            raise DigestParseError("duplicate directive")
        out[name] = value
        pos = skip_lws(pos)
        if pos == end:
            return out
        if text[pos] != ",":
            raise DigestParseError("expected ','")
        pos = skip_lws(pos + 1)
        if pos == end:
            raise DigestParseError("trailing ','")


def quote(value: str) -> str:
    """Escape a value for a quoted-string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


# -- the RFC 2831 computations (shared with the client side) ---------------------------------


def _h(hash_name: str, *parts: bytes) -> bytes:
    digest = hashlib.new(hash_name)
    for part in parts:
        digest.update(part)
    return digest.digest()


def user_realm_password_hash(hash_name: str, username: bytes, realm: bytes, password: bytes) -> bytes:
    """H(username ":" realm ":" password) — raw bytes, the value a DigestHash stores."""
    return _h(hash_name, username, b":", realm, b":", password)


def session_key(hash_name: str, urp_hash: bytes, nonce: bytes, cnonce: bytes, authzid: bytes | None) -> bytes:
    """H(A1) as raw bytes; A1 embeds the *raw* H(user:realm:password) (RFC 2831 §2.1.2.1)."""
    parts = [urp_hash, b":", nonce, b":", cnonce]
    if authzid is not None:
        parts += [b":", authzid]
    return _h(hash_name, *parts)


def response_digest(
    hash_name: str,
    ha1: bytes,
    *,
    nonce: bytes,
    nc: str,
    cnonce: bytes,
    qop: str,
    digest_uri: bytes,
    for_client: bool,
) -> bytes:
    """``response`` (``for_client``) or ``rspauth`` value: lower-case hex bytes."""
    a2 = (b"AUTHENTICATE:" if for_client else b":") + digest_uri
    if qop in (QOP_AUTH_INT, QOP_AUTH_CONF):
        a2 += _SECURITY_MARK
    kd_data = b":".join([nonce, nc.encode(), cnonce, qop.encode(), _h(hash_name, a2).hex().encode()])
    return _h(hash_name, ha1.hex().encode(), b":", kd_data).hex().encode()


# -- the security layer (RFC 2831 §2.3, §2.4) -----------------------------------------------


def _des_key(seven: bytes) -> bytes:
    """Spread 56 key bits over 8 bytes with odd parity in each low bit (as the JDK does)."""
    bits = int.from_bytes(seven, "big")
    out = bytearray()
    for i in range(8):
        byte = ((bits >> (49 - 7 * i)) & 0x7F) << 1
        out.append(byte | (bin(byte).count("1") + 1) % 2)
    return bytes(out)


class _Rc4:
    """RC4 for key lengths the cryptography package refuses (DIGEST-SHA-384/-512 keys)."""

    def __init__(self, key: bytes) -> None:
        s = list(range(256))
        j = 0
        for i in range(256):
            j = (j + s[i] + key[i % len(key)]) & 0xFF
            s[i], s[j] = s[j], s[i]
        self._s, self._i, self._j = s, 0, 0

    def update(self, data: bytes) -> bytes:
        s, i, j = self._s, self._i, self._j
        out = bytearray(len(data))
        for n, byte in enumerate(data):
            i = (i + 1) & 0xFF
            j = (j + s[i]) & 0xFF
            s[i], s[j] = s[j], s[i]
            out[n] = byte ^ s[(s[i] + s[j]) & 0xFF]
        self._i, self._j = i, j
        return bytes(out)


_StreamOrBlock = CipherContext | _Rc4


def _make_cipher(name: str, kc: bytes, *, encrypt: bool) -> tuple[_StreamOrBlock, int]:
    """The cipher context for one direction and its block size (1 for RC4)."""
    if name.startswith("rc4"):
        if len(kc) * 8 in ARC4.key_sizes:
            cipher = Cipher(ARC4(kc), mode=None)
            return (cipher.encryptor() if encrypt else cipher.decryptor()), 1
        return _Rc4(kc), 1
    if name == "des":
        key = _des_key(kc[:7]) * 3  # EDE with one key is DES; single-key TripleDES is deprecated
    elif name == "3des":
        k1, k2 = _des_key(kc[:7]), _des_key(kc[7:14])
        key = k1 + k2 + k1  # two-key EDE, as RFC 2831 and the JDK
    else:
        raise SaslError("unknown cipher")
    block = Cipher(TripleDES(key), modes.CBC(kc[8:16]))
    # One context per direction for the whole connection: CBC chains across messages.
    return (block.encryptor() if encrypt else block.decryptor()), 8


class DigestSecurityLayer:
    """Integrity (``auth-int``) or confidentiality (``auth-conf``) after a DIGEST exchange.

    ``is_server`` picks the key directions. ``send_maxbuf`` is the peer's receive limit,
    ``recv_maxbuf`` ours: :meth:`unwrap` refuses larger buffers and :meth:`wrap` refuses to
    produce them (split the data by :attr:`max_send_size`).
    """

    def __init__(
        self,
        hash_name: str,
        ha1: bytes,
        qop: str,
        cipher: str | None,
        *,
        is_server: bool,
        send_maxbuf: int = DEFAULT_MAXBUF,
        recv_maxbuf: int = DEFAULT_MAXBUF,
    ) -> None:
        if qop not in (QOP_AUTH_INT, QOP_AUTH_CONF):
            raise SaslError("no security layer for qop auth")
        self.qop = qop
        self.cipher = cipher if qop == QOP_AUTH_CONF else None
        self.send_maxbuf, self.recv_maxbuf = send_maxbuf, recv_maxbuf
        send_int, recv_int = (
            (_MAGIC_INT_S2C, _MAGIC_INT_C2S) if is_server else (_MAGIC_INT_C2S, _MAGIC_INT_S2C)
        )
        self._send_mac_key = _h(hash_name, ha1, send_int)
        self._recv_mac_key = _h(hash_name, ha1, recv_int)
        self._send_seq = 0
        self._recv_seq = 0
        self._encryptor: _StreamOrBlock | None = None
        self._decryptor: _StreamOrBlock | None = None
        self._block = 1
        if self.cipher is not None:
            if self.cipher not in CIPHERS:
                raise SaslError("unknown cipher")
            n = {"rc4-40": 5, "rc4-56": 7}.get(self.cipher, 16)
            send_conf, recv_conf = (
                (_MAGIC_CONF_S2C, _MAGIC_CONF_C2S) if is_server else (_MAGIC_CONF_C2S, _MAGIC_CONF_S2C)
            )
            self._encryptor, self._block = _make_cipher(
                self.cipher, _h(hash_name, ha1[:n], send_conf), encrypt=True
            )
            self._decryptor, _ = _make_cipher(self.cipher, _h(hash_name, ha1[:n], recv_conf), encrypt=False)

    def __repr__(self) -> str:
        return f"<DigestSecurityLayer {self.qop} {self.cipher or ''}>"

    @property
    def max_send_size(self) -> int:
        """The largest plaintext :meth:`wrap` accepts (so the wrapped buffer fits the peer)."""
        if self.cipher is None or self._block == 1:
            return self.send_maxbuf - 16
        return 8 * ((self.send_maxbuf - 6) // 8) - 11

    def _mac(self, key: bytes, seq: int, data: bytes) -> bytes:
        return hmac.new(key, seq.to_bytes(4, "big") + data, hashlib.md5).digest()[:10]

    def wrap(self, data: bytes) -> bytes:
        if len(data) > self.max_send_size:
            raise SaslError("message larger than the peer's maxbuf allows; split it")
        seq = self._send_seq
        if seq > 0xFFFFFFFF:
            raise SaslError("sequence number space exhausted")
        mac = self._mac(self._send_mac_key, seq, data)
        trailer = b"\x00\x01" + seq.to_bytes(4, "big")
        self._send_seq += 1
        if self._encryptor is None:
            return data + mac + trailer
        pad = b""
        if self._block > 1:
            pad_len = self._block - (len(data) + 10) % self._block
            pad = bytes([pad_len]) * pad_len
        return self._encryptor.update(data + pad + mac) + trailer

    def unwrap(self, data: bytes) -> bytes:
        if len(data) > self.recv_maxbuf:
            raise SaslError("wrapped buffer exceeds the negotiated maxbuf")
        if len(data) < 16:
            raise SaslError("wrapped buffer too short")
        if data[-6:-4] != b"\x00\x01":
            raise SaslError("message type must be 1")
        seq = int.from_bytes(data[-4:], "big")
        if seq != self._recv_seq:
            raise SaslError("unexpected sequence number (replayed, reordered or lost buffer)")
        body = data[:-6]
        if self._decryptor is None:
            message, mac = body[:-10], body[-10:]
        else:
            if len(body) % self._block:
                raise SaslError("ciphertext is not a whole number of blocks")
            clear = self._decryptor.update(body)
            padded, mac = clear[:-10], clear[-10:]
            message = padded
            if self._block > 1:
                pad_len = padded[-1] if padded else 0
                if not 1 <= pad_len <= self._block or padded[-pad_len:] != bytes([pad_len]) * pad_len:
                    raise SaslError("bad padding")
                message = padded[:-pad_len]
        if not hmac.compare_digest(mac, self._mac(self._recv_mac_key, seq, message)):
            raise SaslError("bad MAC")
        self._recv_seq += 1
        return message


# -- the server mechanism --------------------------------------------------------------------


def _split_list(value: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", value) if item]


class DigestMechanism(ExchangeMechanism):
    """RFC 2831 server; subclasses only name the mechanism and its credential algorithm."""

    name = "DIGEST-MD5"
    algorithm: ClassVar[str] = "digest-md5"

    def __init__(
        self,
        settings: SaslSettings,
        *,
        nonce_factory: NonceFactory | None = None,
        random_bytes: RandomBytes | None = None,
    ) -> None:
        super().__init__(settings, nonce_factory=nonce_factory, random_bytes=random_bytes)
        self._hash = DIGEST_HASHES[self.algorithm]
        extra = settings.extra
        self._maxbuf = int(extra.get(PROP_MAXBUF, DEFAULT_MAXBUF))
        if not MIN_MAXBUF <= self._maxbuf <= MAX_MAXBUF:
            raise ValueError(f"{PROP_MAXBUF} must lie in [{MIN_MAXBUF}, {MAX_MAXBUF}]")
        wanted = _split_list(extra[PROP_CIPHERS]) if PROP_CIPHERS in extra else list(CIPHERS)
        self._ciphers = tuple(c for c in CIPHERS if c in wanted)
        qops = [q for q in dict.fromkeys(settings.qop) if q in QOPS]
        if not self._ciphers and QOP_AUTH_CONF in qops:
            qops.remove(QOP_AUTH_CONF)  # auth-conf without a cipher cannot be negotiated
        self._qops = tuple(qops)
        self._protocols = {settings.protocol.lower()} | {
            p.lower() for p in _split_list(extra.get(PROP_ALT_PROTOCOLS, ""))
        }
        self._nonce: bytes | None = None
        self._fields: dict[str, str] = {}
        self._charset = "latin-1"
        self._username = ""
        self._qop = QOP_AUTH
        self._peer_maxbuf = DEFAULT_MAXBUF
        self._layer: DigestSecurityLayer | None = None

    # -- exchange ------------------------------------------------------------------------

    def _challenge(self) -> bytes:
        nonce = self._new_nonce()
        parts = [f'realm="{quote(self.settings.realm)}"', f'nonce="{quote(nonce)}"']
        if self._qops:
            parts.append(f'qop="{",".join(self._qops)}"')
        if self._maxbuf != DEFAULT_MAXBUF:
            parts.append(f"maxbuf={self._maxbuf}")
        parts.append("charset=utf-8")
        if QOP_AUTH_CONF in self._qops:
            parts.append(f'cipher="{",".join(self._ciphers)}"')
        parts.append("algorithm=md5-sess")
        self._nonce = nonce.encode()
        return ",".join(parts).encode()

    def _on_step(self, response: bytes) -> SaslOutcome:
        if self._nonce is None:
            if response:
                return Failure("DIGEST: the client must not send an initial response")
            return Challenge(self._challenge())
        return self._check_response(response)

    def _decode(self, value: str) -> str:
        return value.encode("latin-1").decode(self._charset)

    def _check_response(self, response: bytes) -> SaslOutcome:
        assert self._nonce is not None
        if not response:
            return Failure("DIGEST: empty digest-response")
        if len(response) >= MAX_RESPONSE_BYTES:
            return Failure("DIGEST: digest-response too long")
        try:
            fields = parse_directives(response.decode("latin-1"))
        except DigestParseError as exc:
            return Failure(f"DIGEST: {exc}")
        for required in ("username", "nonce", "cnonce", "nc", "digest-uri", "response"):
            if required not in fields:
                return Failure(f"DIGEST: missing directive {required}")
        if "charset" in fields:
            if fields["charset"] != "utf-8":
                return Failure("DIGEST: unsupported charset")
            self._charset = "utf-8"
        try:
            username = self._decode(fields["username"])
            realm = self._decode(fields.get("realm", ""))
            digest_uri = self._decode(fields["digest-uri"])
            authzid = self._decode(fields["authzid"]) if "authzid" in fields else None
        except UnicodeDecodeError:
            return Failure("DIGEST: directive is not valid in the declared charset")
        if not username:
            return Failure("DIGEST: empty username")
        if not hmac.compare_digest(fields["nonce"].encode("latin-1"), self._nonce):
            return Failure("DIGEST: nonce mismatch")
        if not fields["cnonce"]:
            return Failure("DIGEST: empty cnonce")
        if fields["nc"] != NC_FIRST:
            return Failure("DIGEST: nc must be 00000001 (no subsequent authentication)")
        if realm != self.settings.realm:
            return Failure("DIGEST: realm not offered")
        protocol, slash, host = digest_uri.partition("/")
        if not slash or protocol.lower() not in self._protocols:
            return Failure("DIGEST: digest-uri protocol not accepted")
        if self.settings.server_name is not None and host.lower() != self.settings.server_name.lower():
            return Failure("DIGEST: digest-uri host is not this server")
        qop = fields.get("qop", QOP_AUTH)
        if qop not in (self._qops or (QOP_AUTH,)):
            return Failure("DIGEST: qop not offered")
        if qop == QOP_AUTH_CONF:
            if fields.get("cipher") not in self._ciphers:
                return Failure("DIGEST: cipher missing or not offered")
        elif "cipher" in fields:
            return Failure("DIGEST: cipher without auth-conf")
        if "maxbuf" in fields:
            raw = fields["maxbuf"]
            if not raw.isdigit() or len(raw) > 8 or not MIN_MAXBUF <= int(raw) <= MAX_MAXBUF:
                return Failure("DIGEST: maxbuf out of range")
            self._peer_maxbuf = int(raw)
        expected_len = 2 * hashlib.new(self._hash).digest_size
        if len(fields["response"]) != expected_len:
            return Failure("DIGEST: response has the wrong length")
        # Without a run-as permission model, an authzid may only repeat the username.
        if authzid is not None and authzid != username:
            return Failure("DIGEST: authzid differs from username")
        self._fields = fields
        self._username = username
        self._qop = qop
        return NeedCredentials(username, (DigestHash, ClearPassword))

    def _urp_hash(self, credentials: Sequence[Credential]) -> bytes | None:
        for credential in credentials:
            if (
                isinstance(credential, DigestHash)
                and credential.algorithm == self.algorithm
                and credential.realm == self.settings.realm
            ):
                return credential.digest
        for credential in credentials:
            if isinstance(credential, ClearPassword):
                password = credential.password
                if self._charset == "utf-8":
                    password_bytes = password.encode("utf-8")
                else:
                    # RFC 2831 §2.1.2.1: without charset=utf-8 the strings are ISO 8859-1
                    # when representable, which is what such a client hashed.
                    try:
                        password_bytes = password.encode("latin-1")
                    except UnicodeEncodeError:
                        password_bytes = password.encode("utf-8")
                return user_realm_password_hash(
                    self._hash,
                    self._fields["username"].encode("latin-1"),
                    self._fields.get("realm", "").encode("latin-1"),
                    password_bytes,
                )
        return None

    def _on_credentials(self, credentials: Sequence[Credential] | None) -> SaslOutcome:
        assert self._nonce is not None
        urp = self._urp_hash(credentials or ())
        if urp is None:
            return Failure("DIGEST: no usable credential (or no such user)")
        fields = self._fields
        authzid = fields["authzid"].encode("latin-1") if "authzid" in fields else None
        cnonce = fields["cnonce"].encode("latin-1")
        digest_uri = fields["digest-uri"].encode("latin-1")
        ha1 = session_key(self._hash, urp, self._nonce, cnonce, authzid)

        def digest(for_client: bool) -> bytes:
            assert self._nonce is not None
            return response_digest(
                self._hash,
                ha1,
                nonce=self._nonce,
                nc=NC_FIRST,
                cnonce=cnonce,
                qop=self._qop,
                digest_uri=digest_uri,
                for_client=for_client,
            )

        if not hmac.compare_digest(digest(True), fields["response"].encode("latin-1")):
            return Failure("DIGEST: wrong response (bad password)")
        rspauth = digest(False)
        if self._qop != QOP_AUTH:
            self._layer = DigestSecurityLayer(
                self._hash,
                ha1,
                self._qop,
                fields.get("cipher"),
                is_server=True,
                send_maxbuf=self._peer_maxbuf,
                recv_maxbuf=self._maxbuf,
            )
        self._fields = {}
        return Success(self._username, b"rspauth=" + rspauth)

    def _forget(self) -> None:
        self._fields = {}
        self._layer = None

    # -- security layer ------------------------------------------------------------------

    @property
    def negotiated_qop(self) -> str:
        return self._layer.qop if self._layer is not None and self.is_complete else QOP_AUTH

    @property
    def security_layer(self) -> DigestSecurityLayer | None:
        return self._layer if self.is_complete else None

    @property
    def max_send_size(self) -> int | None:
        """Largest plaintext one :meth:`wrap` call accepts, or None without a layer."""
        layer = self.security_layer
        return None if layer is None else layer.max_send_size

    @property
    def max_receive_size(self) -> int:
        """Our advertised maxbuf: the largest wrapped buffer :meth:`unwrap` accepts."""
        return self._maxbuf

    def wrap(self, data: bytes) -> bytes:
        layer = self.security_layer
        return data if layer is None else layer.wrap(data)

    def unwrap(self, data: bytes) -> bytes:
        layer = self.security_layer
        return data if layer is None else layer.unwrap(data)


class DigestShaMechanism(DigestMechanism):
    name = "DIGEST-SHA"
    algorithm = "digest-sha"


class DigestSha256Mechanism(DigestMechanism):
    name = "DIGEST-SHA-256"
    algorithm = "digest-sha-256"


class DigestSha384Mechanism(DigestMechanism):
    name = "DIGEST-SHA-384"
    algorithm = "digest-sha-384"


class DigestSha512Mechanism(DigestMechanism):
    name = "DIGEST-SHA-512"
    algorithm = "digest-sha-512"


DIGEST_MECHANISMS: dict[str, type[DigestMechanism]] = {
    cls.name: cls
    for cls in (
        DigestMechanism,
        DigestShaMechanism,
        DigestSha256Mechanism,
        DigestSha384Mechanism,
        DigestSha512Mechanism,
    )
}
