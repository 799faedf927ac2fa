"""TLS server identities: keystores of every format, self-signed generation, SSL contexts.

A security realm with ``<server-identities><ssl><keystore …/>`` makes every endpoint that
uses it TLS-only (spec 4.2.1): Hot Rod and REST share the port, REST negotiates ``h2`` or
``http/1.1`` by ALPN. This module turns that configuration into an :class:`ssl.SSLContext`:

* **Keystores** are read in the formats Infinispan accepts: PKCS12 (``cryptography``), JKS and
  JCEKS (``pyjks``), BKS and UBER (``pyjks``), and PEM files holding a private key and its
  certificate chain. The format is taken from ``type`` when given, else detected from the
  file's first bytes. BCFKS (BouncyCastle FIPS) cannot be read in Python: it is refused with
  the ``keytool`` command that converts it. A wrong password, a missing alias or a key that
  does not match its certificate is a :class:`ConfigError` naming the file, raised at start
  (and reported by ``gridactor config check``), never at the first connection.
* **Self-signed keystores** (``generate-self-signed-certificate-host``) are created once when
  the file is missing (RSA-2048, SHA-256, SAN for the host, ten years) and then reused, so a
  restart keeps the same certificate that clients were told to trust.
* **Protocols** are TLSv1.2 and TLSv1.3 only. Anything older that a configuration lists (the
  spec's example names TLSv1.1) is reported and left out, never silently widened to.
* **Cipher suites** may be written as Java/IANA names (``TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384``,
  or the historical ``SSL_`` prefix) or as OpenSSL names/keywords; unknown names are a
  configuration error. They restrict TLSv1.2 (as Elytron's ``enabled-ciphersuites`` does);
  Python's ``ssl`` cannot restrict the TLSv1.3 suites, so a configuration that tries to is
  refused rather than ignored.
* **Client certificates**: with a trust-store realm the server asks for one. It is *required*
  when the realm has no password backend (the certificate is the only way in) or the endpoint
  says ``require-ssl-client-auth="true"``; it is *requested* (``CERT_OPTIONAL``) when the
  realm also serves passwords, so password clients without a certificate still get in. Every
  certificate of the trust stores is a trust anchor (partial chains allowed), as in Java.
  Without a trust-store realm, ``<ssl><truststore>`` is only used with
  ``require-ssl-client-auth`` ("validate" mode); otherwise no certificate is asked for.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import re
import secrets
import ssl
import struct
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from gridactor.config.model import (
    EndpointConfig,
    KeyStoreConfig,
    SecurityRealmConfig,
    ServerConfig,
    SslEngineConfig,
)
from gridactor.errors import ConfigError
from gridactor.server.tls_cipher_names import IANA_TO_OPENSSL

log = logging.getLogger("gridactor.tls")

__all__ = [
    "ALPN_PROTOCOLS",
    "KeyMaterial",
    "TlsProtocols",
    "certificate_subject",
    "check_tls_material",
    "detect_keystore_format",
    "ensure_self_signed_keystore",
    "generate_self_signed_keystore",
    "load_key_material",
    "load_trusted_certificates",
    "resolve_cipher_suites",
    "resolve_protocols",
    "server_ssl_context",
    "tls_realm_name",
]

ALPN_PROTOCOLS = ("h2", "http/1.1")
KEYSTORE_FORMATS = ("PKCS12", "JKS", "JCEKS", "BKS", "UBER", "PEM")
_SUPPORTED_PROTOCOLS: dict[str, ssl.TLSVersion] = {"TLSv1.2": ssl.TLSVersion.TLSv1_2}
if ssl.HAS_TLSv1_3:
    _SUPPORTED_PROTOCOLS["TLSv1.3"] = ssl.TLSVersion.TLSv1_3
_PROTOCOL_ORDER = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
TLS13_SUITES = frozenset(
    {
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_128_CCM_SHA256",
        "TLS_AES_128_CCM_8_SHA256",
    }
)
_BCFKS_HINT = (
    "BCFKS (BouncyCastle FIPS) keystores cannot be read by this server; convert it to PKCS12 with "
    "`keytool -importkeystore -srckeystore FILE -srcstoretype BCFKS -providerpath bc-fips.jar "
    "-provider org.bouncycastle.jcajce.provider.BouncyCastleFipsProvider -destkeystore FILE.p12 "
    "-deststoretype PKCS12`"
)
_JKS_MAGIC = 0xFEEDFEED
_JCEKS_MAGIC = 0xCECECECE
SELF_SIGNED_DAYS = 3650


@dataclass(frozen=True, slots=True, repr=False)
class KeyMaterial:
    """A private key and its certificate chain (leaf first), as read from a keystore."""

    private_key: PrivateKeyTypes
    chain: tuple[x509.Certificate, ...]
    alias: str | None

    def __repr__(self) -> str:  # never the key
        subject = self.chain[0].subject.rfc4514_string() if self.chain else "?"
        return f"KeyMaterial(alias={self.alias!r}, subject={subject!r}, chain={len(self.chain)})"


@dataclass(frozen=True, slots=True)
class TlsProtocols:
    minimum: ssl.TLSVersion
    maximum: ssl.TLSVersion
    enabled: tuple[str, ...]
    refused: tuple[str, ...]  # listed in the configuration, left out (too old / unavailable)


class _Where:
    """Where a keystore is configured, so every error names the file and the line."""

    def __init__(self, source: str, line: int, element: str) -> None:
        self.source = source
        self.line = line
        self.element = element

    def error(self, message: str) -> ConfigError:
        return ConfigError(message, file=self.source, line=self.line, element=self.element)


def certificate_subject(certificate: x509.Certificate) -> str:
    """The subject DN as a string in RFC 4514 order (``CN=admin,OU=server,O=org``), as Java's
    ``X500Principal.getName()`` prints it; this is the principal of a certificate login."""
    return certificate.subject.rfc4514_string()


# ---------------------------------------------------------------- keystore formats


def detect_keystore_format(data: bytes, declared: str | None = None) -> str:
    """``PKCS12``, ``JKS``, ``JCEKS``, ``BKS``, ``UBER``, ``PEM`` or ``BCFKS`` (which we refuse).

    ``declared`` (the ``type`` attribute) wins; otherwise the first bytes decide. BKS and UBER
    share their header (a version number): ``BKS`` is returned and the loader tries UBER too.
    """
    if declared:
        kind = declared.strip().upper()
        if kind in ("PKCS#12", "P12", "PFX"):
            kind = "PKCS12"
        if kind in KEYSTORE_FORMATS or kind == "BCFKS":
            return kind
        known = ", ".join(KEYSTORE_FORMATS)
        raise ValueError(f"keystore type '{declared}' is not supported (use one of {known})")
    if b"-----BEGIN " in data[:4096]:
        return "PEM"
    if len(data) >= 4:
        magic = struct.unpack(">I", data[:4])[0]
        if magic == _JKS_MAGIC:
            return "JKS"
        if magic == _JCEKS_MAGIC:
            return "JCEKS"
        if magic in (1, 2):
            return "BKS"
    if data[:1] == b"\x30":
        # A PKCS#12 PFX is SEQUENCE { INTEGER 3, … }; BCFKS is SEQUENCE { SEQUENCE …, … }.
        return "PKCS12" if _der_pfx_version(data) == 3 else "BCFKS"
    raise ValueError("not a keystore in a format this server reads (PKCS12, JKS, JCEKS, BKS, UBER, PEM)")


def _der_pfx_version(data: bytes) -> int | None:
    """The INTEGER that opens a DER SEQUENCE, if it is one (the PFX version)."""
    pos = 1
    if len(data) < 2:
        return None
    first = data[pos]
    pos += 1
    if first & 0x80:
        pos += first & 0x7F
    if pos + 2 >= len(data) or data[pos] != 0x02:
        return None
    length = data[pos + 1]
    if length != 1:
        return None
    return data[pos + 2]


def _read(path: Path, what: str, where: _Where) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise where.error(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise where.error(f"cannot read {what} {path}: {exc.strerror}") from None


def _same_alias(a: str | None, b: str | None) -> bool:
    # Java keystores treat aliases case-insensitively (keytool lowercases JKS aliases).
    return a is not None and b is not None and a.lower() == b.lower()


def _pick_alias(
    aliases: Sequence[str | None], alias: str | None, path: Path, where: _Where
) -> int:
    """Index of the key entry to use: the named alias, or the only key."""
    shown = ", ".join(repr(a) if a is not None else "(unnamed)" for a in aliases) or "none"
    if not aliases:
        raise where.error(f"keystore {path} holds no private key entry")
    if alias is None:
        if len(aliases) > 1:
            raise where.error(f"keystore {path} holds several keys ({shown}): set alias=\"…\"")
        return 0
    for index, candidate in enumerate(aliases):
        if _same_alias(candidate, alias):
            return index
    raise where.error(f"alias '{alias}' not found in keystore {path} (key aliases: {shown})")


def _password_bytes(password: str | None) -> bytes | None:
    return password.encode("utf-8") if password else None


def _load_pkcs12_keys(
    data: bytes, path: Path, passwords: Sequence[str | None], where: _Where
) -> pkcs12.PKCS12KeyAndCertificates:
    last: Exception | None = None
    for password in dict.fromkeys(passwords):
        try:
            return pkcs12.load_pkcs12(data, _password_bytes(password))
        except ValueError as exc:
            last = exc
    raise where.error(f"cannot open PKCS12 keystore {path}: wrong password, or the file is damaged") from last


def _pem_private_key(block: bytes, passwords: Sequence[str | None]) -> PrivateKeyTypes:
    last: Exception | None = None
    for password in [*dict.fromkeys(passwords), None]:
        try:
            return serialization.load_pem_private_key(block, _password_bytes(password))
        except TypeError as exc:  # encrypted without a password, or a password for a clear key
            last = exc
        except ValueError as exc:
            last = exc
    raise ValueError("cannot decrypt the private key: wrong key password") from last


_PEM_KEY = re.compile(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.S)


def _public_bytes(key: Any) -> bytes:
    return bytes(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _order_chain(key: PrivateKeyTypes, certificates: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """Leaf (the certificate of ``key``) first, then its issuers in order, then the rest."""
    wanted = _public_bytes(key.public_key())
    leaf = next((c for c in certificates if _public_bytes(c.public_key()) == wanted), None)
    if leaf is None:
        return list(certificates)
    ordered = [leaf]
    rest = [c for c in certificates if c is not leaf]
    while rest:
        issuer = next((c for c in rest if c.subject == ordered[-1].issuer), None)
        if issuer is None or issuer.subject == ordered[-1].subject:
            break
        ordered.append(issuer)
        rest.remove(issuer)
    return ordered + rest


def _jks_module() -> Any:
    import jks  # type: ignore[import-untyped]  # pyjks ships no type information

    # pyjks decrypts UBER stores with the `twofish` package, which still imports the
    # deprecated `imp` module: import it once here with that warning silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import twofish  # type: ignore[import-untyped]  # noqa: F401
    return jks


def _load_java_keystore(data: bytes, kind: str, path: Path, password: str | None, where: _Where) -> Any:
    jks = _jks_module()
    store_password = password or ""
    try:
        if kind in ("JKS", "JCEKS"):
            return jks.KeyStore.loads(data, store_password, try_decrypt_keys=True)
        try:
            return jks.bks.BksKeyStore.loads(data, store_password, try_decrypt_keys=True)
        except jks.util.KeystoreException:
            if struct.unpack(">I", data[:4])[0] != 1:
                raise
            return jks.bks.UberKeyStore.loads(data, store_password, try_decrypt_keys=True)
    except jks.util.KeystoreException as exc:
        label = kind if kind in ("JKS", "JCEKS") else "BKS/UBER"
        raise where.error(
            f"cannot open {label} keystore {path}: wrong password, or the file is damaged"
        ) from exc


def load_key_material(
    path: Path,
    password: str | None,
    *,
    alias: str | None = None,
    key_password: str | None = None,
    store_type: str | None = None,
    source: str = "",
    line: int = 0,
) -> KeyMaterial:
    """Read the server key and certificate chain from a keystore (any supported format)."""
    where = _Where(source, line, "keystore")
    data = _read(path, "keystore", where)
    try:
        kind = detect_keystore_format(data, store_type)
    except ValueError as exc:
        raise where.error(f"keystore {path}: {exc}") from None
    if kind == "BCFKS":
        raise where.error(f"keystore {path}: {_BCFKS_HINT.replace('FILE', str(path))}")
    key: PrivateKeyTypes
    chain: list[x509.Certificate]
    name: str | None
    if kind == "PKCS12":
        bundle = _load_pkcs12_keys(data, path, [password, key_password], where)
        if bundle.key is None or bundle.cert is None:
            raise where.error(f"keystore {path} holds no private key entry")
        name = bundle.cert.friendly_name.decode("utf-8", "replace") if bundle.cert.friendly_name else None
        _pick_alias([name], alias, path, where)
        key = bundle.key
        others = [c.certificate for c in bundle.additional_certs]
        chain = _order_chain(key, [bundle.cert.certificate, *others])
    elif kind == "PEM":
        match = _PEM_KEY.search(data)
        if match is None:
            raise where.error(f"PEM keystore {path} holds no private key")
        try:
            key = _pem_private_key(match.group(0), [key_password, password])
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise where.error(f"PEM keystore {path}: {exc}") from None
        name = alias
        chain = _order_chain(key, certificates)
    else:
        store = _load_java_keystore(data, kind, path, password, where)
        entries = _java_private_keys(store)
        aliases = [entry_alias for entry_alias, _ in entries]
        entry = entries[_pick_alias(aliases, alias, path, where)][1]
        name = entry.alias
        if not entry.is_decrypted():
            try:
                entry.decrypt(key_password or password or "")
            except _jks_module().util.KeystoreException:
                raise where.error(
                    f"cannot decrypt key '{name}' of keystore {path}: wrong key-password"
                ) from None
        pkcs8 = bytes(entry.pkey_pkcs8)
        key = serialization.load_der_private_key(pkcs8, None)
        chain = _order_chain(key, [x509.load_der_x509_certificate(bytes(c)) for c in _java_chain(entry)])
    if not chain:
        raise where.error(f"keystore {path}: the key '{name}' has no certificate")
    if _public_bytes(chain[0].public_key()) != _public_bytes(key.public_key()):
        raise where.error(f"keystore {path}: the private key does not match its certificate")
    return KeyMaterial(key, tuple(chain), name)


def _java_private_keys(store: Any) -> list[tuple[str, Any]]:
    """(alias, entry) of every private-key entry of a pyjks JKS/JCEKS/BKS/UBER store."""
    if hasattr(store, "private_keys"):
        return sorted(store.private_keys.items())
    keys = []
    for entry_alias, entry in sorted(store.entries.items()):
        if type(entry).__name__ in ("BksSealedKeyEntry", "BksKeyEntry"):
            if entry.is_decrypted() and getattr(entry, "type", 0) != 0:
                continue  # a public or secret key, not a private key
            keys.append((entry_alias, entry))
    return keys


def _java_chain(entry: Any) -> list[bytes]:
    chain = []
    for item in entry.cert_chain:
        chain.append(item[1] if isinstance(item, tuple) else item.cert)
    return chain


def load_trusted_certificates(
    path: Path,
    password: str | None,
    *,
    store_type: str | None = None,
    source: str = "",
    line: int = 0,
    element: str = "truststore",
) -> tuple[x509.Certificate, ...]:
    """Every certificate of a trust store (PKCS12, JKS, JCEKS, BKS, UBER or PEM)."""
    where = _Where(source, line, element)
    data = _read(path, "trust store", where)
    try:
        kind = detect_keystore_format(data, store_type)
    except ValueError as exc:
        raise where.error(f"trust store {path}: {exc}") from None
    if kind == "BCFKS":
        raise where.error(f"trust store {path}: {_BCFKS_HINT.replace('FILE', str(path))}")
    found: list[x509.Certificate] = []
    if kind == "PEM":
        try:
            found = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise where.error(f"PEM trust store {path}: {exc}") from None
    elif kind == "PKCS12":
        try:
            bundle = pkcs12.load_pkcs12(data, _password_bytes(password))
        except ValueError:
            raise where.error(
                f"cannot open PKCS12 trust store {path}: wrong password, or the file is damaged"
            ) from None
        if bundle.cert is not None:
            found.append(bundle.cert.certificate)
        found += [c.certificate for c in bundle.additional_certs]
    else:
        store = _load_java_keystore(data, kind, path, password, where)
        for entry in store.certs.values():
            found.append(x509.load_der_x509_certificate(bytes(entry.cert)))
        for _, key_entry in _java_private_keys(store):
            found += [x509.load_der_x509_certificate(bytes(c)) for c in _java_chain(key_entry)[:1]]
    if not found:
        raise where.error(f"trust store {path} holds no certificate")
    return tuple(dict.fromkeys(found))


# ---------------------------------------------------------------- self-signed keystores


def generate_self_signed_keystore(
    path: Path, host: str, password: str, alias: str | None, key_password: str | None = None
) -> KeyMaterial:
    """Write a new PKCS12 keystore with a self-signed certificate for ``host`` (mode 0600)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    alt: x509.GeneralName
    try:
        alt = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(8), "big") >> 1 or 1)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    blob = pkcs12.serialize_key_and_certificates(
        (alias or "server").encode("utf-8"),
        key,
        certificate,
        None,
        serialization.BestAvailableEncryption((key_password or password).encode("utf-8")),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed, so a crash never leaves half a keystore
    # that the next start would refuse.
    fd, tmp = tempfile.mkstemp(prefix=".keystore-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(blob)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return KeyMaterial(key, (certificate,), alias)


def ensure_self_signed_keystore(keystore: KeyStoreConfig, source: str) -> bool:
    """Generate the keystore of ``generate-self-signed-certificate-host`` if it is missing.

    Returns True when a keystore was written. An existing file is always reused.
    """
    host = keystore.generate_self_signed_certificate_host
    if not host or keystore.path is None or keystore.path.exists():
        return False
    password = keystore.password
    if not password:
        raise ConfigError(
            "generate-self-signed-certificate-host needs a keystore password",
            file=source,
            line=keystore.line,
            element="keystore",
        )
    generate_self_signed_keystore(keystore.path, host, password, keystore.alias, keystore.key_password)
    log.warning(
        "generated a self-signed certificate for '%s' in %s: for testing only, NOT for production "
        "(clients must trust this certificate explicitly)",
        host,
        keystore.path,
    )
    return True


# ---------------------------------------------------------------- protocols and cipher suites


def resolve_protocols(engine: SslEngineConfig | None) -> TlsProtocols:
    """The TLS versions to enable: the configured ones this server allows (TLSv1.2, TLSv1.3).

    Raises ValueError when none of the configured protocols is allowed."""
    requested = engine.enabled_protocols if engine is not None and engine.enabled_protocols else ()
    if not requested:
        enabled = tuple(_SUPPORTED_PROTOCOLS)
        return TlsProtocols(
            _SUPPORTED_PROTOCOLS[enabled[0]], _SUPPORTED_PROTOCOLS[enabled[-1]], enabled, ()
        )
    enabled = tuple(p for p in _PROTOCOL_ORDER if p in requested and p in _SUPPORTED_PROTOCOLS)
    refused = tuple(p for p in requested if p not in _SUPPORTED_PROTOCOLS)
    if not enabled:
        raise ValueError(
            f"enabled-protocols '{' '.join(requested)}': none is allowed; this server speaks "
            f"{' and '.join(_SUPPORTED_PROTOCOLS)} only"
        )
    return TlsProtocols(_SUPPORTED_PROTOCOLS[enabled[0]], _SUPPORTED_PROTOCOLS[enabled[-1]], enabled, refused)


_OPENSSL_NAMES = frozenset(IANA_TO_OPENSSL.values())


def _openssl_token_known(token: str) -> bool:
    """Does OpenSSL understand ``token`` (a suite name or a keyword such as HIGH, aNULL)?"""
    if token in _OPENSSL_NAMES:
        return True
    scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # Security level 0 only for this probe: the question is whether the name exists,
        # whether it is allowed is decided on the real context.
        scratch.set_ciphers(f"{token}:@SECLEVEL=0")
    except ssl.SSLError:
        return False
    return True


def resolve_cipher_suites(spec: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Translate ``enabled-ciphersuites`` into (OpenSSL cipher string for ≤TLSv1.2,
    IANA names of the suites named explicitly, TLSv1.3 suite names).

    Names are separated by spaces, commas or colons. ``TLS_…``/``SSL_…`` names are Java/IANA
    names and must be known; other tokens are OpenSSL names or keywords (``DEFAULT``,
    ``ECDHE+AESGCM``, ``!aNULL``…) and must be understood by OpenSSL. Raises ValueError.
    """
    openssl_parts: list[str] = []
    named: list[str] = []
    tls13: list[str] = []
    for token in (t for t in re.split(r"[\s,:]+", spec.strip()) if t):
        upper = token.upper()
        if upper in TLS13_SUITES:
            tls13.append(upper)
            continue
        if upper.startswith(("TLS_", "SSL_")):
            iana = "TLS_" + upper[4:]
            mapped = IANA_TO_OPENSSL.get(iana)
            if mapped is None:
                raise ValueError(f"unknown cipher suite '{token}'")
            openssl_parts.append(mapped)
            named.append(iana)
            continue
        if token.startswith("@"):
            raise ValueError(f"cipher directive '{token}' is not allowed (it could lower the security level)")
        bare = token.lstrip("!+-")
        if not bare or not _openssl_token_known(bare):
            raise ValueError(f"unknown cipher suite '{token}'")
        openssl_parts.append(token)
    return ":".join(openssl_parts), tuple(named), tuple(tls13)


def _apply_engine(context: ssl.SSLContext, engine: SslEngineConfig | None, where: _Where) -> TlsProtocols:
    try:
        protocols = resolve_protocols(engine)
    except ValueError as exc:
        raise where.error(str(exc)) from None
    for refused in protocols.refused:
        log.warning(
            "%s:%d: protocol %s is not enabled: this server speaks %s only (older protocols are insecure)",
            where.source,
            where.line,
            refused,
            " and ".join(_SUPPORTED_PROTOCOLS),
        )
    context.minimum_version = protocols.minimum
    context.maximum_version = protocols.maximum
    tls13_wanted: tuple[str, ...] = ()
    if engine is not None and engine.enabled_ciphersuites:
        try:
            cipher_string, named, tls13_wanted = resolve_cipher_suites(engine.enabled_ciphersuites)
        except ValueError as exc:
            raise where.error(f"enabled-ciphersuites: {exc}") from None
        if cipher_string:
            try:
                context.set_ciphers(cipher_string)
            except ssl.SSLError:
                raise where.error(
                    f"enabled-ciphersuites '{engine.enabled_ciphersuites}': none of these suites is "
                    "available on this platform"
                ) from None
            available = {c["name"] for c in context.get_ciphers()}
            for iana in named:
                if IANA_TO_OPENSSL[iana] not in available:
                    log.warning(
                        "%s:%d: cipher suite %s is refused by this platform's TLS policy: left out",
                        where.source,
                        where.line,
                        iana,
                    )
            if "TLSv1.2" in protocols.enabled and not any(
                c["protocol"] == "TLSv1.2" for c in context.get_ciphers()
            ):
                raise where.error("enabled-ciphersuites: no usable TLSv1.2 cipher suite remains")
    if engine is not None and engine.enabled_ciphersuites_tls13:
        try:
            _, _, extra = resolve_cipher_suites(engine.enabled_ciphersuites_tls13)
        except ValueError as exc:
            raise where.error(f"enabled-ciphersuites-tls13: {exc}") from None
        tls13_wanted += extra
    if tls13_wanted and "TLSv1.3" in protocols.enabled:
        platform = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.3"}
        missing = platform - set(tls13_wanted)
        if missing:
            raise where.error(
                "TLSv1.3 cipher suites cannot be restricted by this server (Python's ssl module has "
                f"no way to); list all of {' '.join(sorted(platform))}, or leave TLSv1.3 out of "
                "enabled-protocols"
            )
    return protocols


# ---------------------------------------------------------------- contexts


def tls_realm_name(endpoint: EndpointConfig) -> str | None:
    """The realm whose SSL identity secures ``endpoint``."""
    return endpoint.security_realm or endpoint.hotrod_realm or endpoint.rest_realm


def _has_password_backend(realm: SecurityRealmConfig) -> bool:
    return realm.properties_realm is not None or realm.ldap_realm is not None or realm.token_realm is not None


def trust_anchors(realm: SecurityRealmConfig, source: str) -> tuple[x509.Certificate, ...]:
    """Certificates that client certificates are verified against (trust-store realm and
    ``<ssl><truststore>``)."""
    found: list[x509.Certificate] = []
    trust = realm.truststore_realm
    if trust is not None and trust.path is not None:
        found += load_trusted_certificates(
            trust.path, trust.password, source=source, line=trust.line, element="truststore-realm"
        )
    ssl_identity = realm.server_identities.ssl if realm.server_identities else None
    ts = ssl_identity.truststore if ssl_identity is not None else None
    if ts is not None and ts.path is not None:
        found += load_trusted_certificates(
            ts.path, ts.password, store_type=ts.type, source=source, line=ts.line
        )
    return tuple(dict.fromkeys(found))


def _load_into_context(context: ssl.SSLContext, material: KeyMaterial) -> None:
    """``SSLContext`` only loads keys from files: hand it a temporary file whose key is
    encrypted with a one-time password that exists only in this process, then delete it."""
    one_time = secrets.token_urlsafe(32)
    pem = material.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time.encode("ascii")),
    )
    for certificate in material.chain:
        pem += certificate.public_bytes(serialization.Encoding.PEM)
    fd, name = tempfile.mkstemp(prefix="gridactor-tls-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        context.load_cert_chain(name, password=one_time)
    finally:
        os.unlink(name)


def _warn_without_san(material: KeyMaterial, path: Path) -> None:
    try:
        material.chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        log.warning(
            "ISPN080075: the certificate '%s' of keystore %s does not have the subjectAltName extension "
            "as recommended by RFC2818: clients that verify host names will refuse it",
            material.alias or certificate_subject(material.chain[0]),
            path,
        )


def server_ssl_context(
    config: ServerConfig, endpoint: EndpointConfig, *, alpn: Iterable[str] = ALPN_PROTOCOLS
) -> ssl.SSLContext | None:
    """The SSL context of ``endpoint``, or None when its realm has no SSL identity."""
    realm = config.realm(tls_realm_name(endpoint))
    if realm is None or not realm.has_tls:
        return None
    source = str(config.source)
    ssl_identity = realm.server_identities.ssl if realm.server_identities else None
    assert ssl_identity is not None
    keystore = ssl_identity.keystore
    assert keystore is not None
    if keystore.path is None:
        raise ConfigError(
            f"keystore of type '{keystore.type}' without a path (PKCS#11) is not supported",
            file=source,
            line=keystore.line,
            element="keystore",
        )
    ensure_self_signed_keystore(keystore, source)
    material = load_key_material(
        keystore.path,
        keystore.password,
        alias=keystore.alias,
        key_password=keystore.key_password,
        store_type=keystore.type,
        source=source,
        line=keystore.line,
    )
    _warn_without_san(material, keystore.path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    engine_line = ssl_identity.engine.line if ssl_identity.engine else ssl_identity.line
    protocols = _apply_engine(context, ssl_identity.engine, _Where(source, engine_line, "engine"))
    _load_into_context(context, material)
    anchors = trust_anchors(realm, source)
    wants_certificates = realm.truststore_realm is not None or endpoint.require_ssl_client_auth
    if wants_certificates:
        if not anchors:
            raise ConfigError(
                "client certificates are asked for but no trust store is configured: give "
                "<truststore-realm path=…> or <ssl><truststore path=…>",
                file=source,
                line=(realm.truststore_realm.line if realm.truststore_realm else endpoint.line),
                element="truststore-realm" if realm.truststore_realm else "endpoints",
            )
        context.load_verify_locations(
            cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in anchors)
        )
        # Every trusted certificate is an anchor, including client certificates that are
        # listed themselves rather than through their CA (Java trust managers do the same).
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        required = endpoint.require_ssl_client_auth or not _has_password_backend(realm)
        context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    else:
        context.verify_mode = ssl.CERT_NONE
    alpn_list = list(alpn)
    if alpn_list and endpoint.rest is not None:
        context.set_alpn_protocols(alpn_list)
    log.info(
        "endpoint %s: TLS %s with certificate %s (%s), client certificates %s",
        endpoint.socket_binding,
        "/".join(protocols.enabled),
        certificate_subject(material.chain[0]),
        keystore.path.name,
        {ssl.CERT_NONE: "not asked for", ssl.CERT_OPTIONAL: "requested", ssl.CERT_REQUIRED: "required"}[
            context.verify_mode
        ],
    )
    return context


def check_tls_material(config: ServerConfig) -> list[str]:
    """Problems with keystores and trust stores (wrong password, missing alias, BCFKS,
    protocol/cipher settings) for ``gridactor config check``; empty when all load."""
    problems: list[str] = []
    source = str(config.source)
    for realm in config.security_realms.values():
        ssl_identity = realm.server_identities.ssl if realm.server_identities else None
        try:
            if ssl_identity is not None and ssl_identity.keystore is not None:
                ks = ssl_identity.keystore
                generated_later = ks.generate_self_signed_certificate_host and (
                    ks.path is None or not ks.path.exists()
                )
                if ks.path is not None and ks.path.exists() and not generated_later:
                    load_key_material(
                        ks.path,
                        ks.password,
                        alias=ks.alias,
                        key_password=ks.key_password,
                        store_type=ks.type,
                        source=source,
                        line=ks.line,
                    )
                engine_line = ssl_identity.engine.line if ssl_identity.engine else ssl_identity.line
                scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                _apply_engine(scratch, ssl_identity.engine, _Where(source, engine_line, "engine"))
            trust = realm.truststore_realm
            if trust is not None and trust.path is not None and trust.path.exists():
                load_trusted_certificates(
                    trust.path, trust.password, source=source, line=trust.line, element="truststore-realm"
                )
            if ssl_identity is not None and ssl_identity.truststore is not None:
                ts = ssl_identity.truststore
                if ts.path is not None and ts.path.exists():
                    load_trusted_certificates(
                        ts.path, ts.password, store_type=ts.type, source=source, line=ts.line
                    )
        except ConfigError as exc:
            problems.append(str(exc))
    return problems
