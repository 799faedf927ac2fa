"""Certificates and keystores for the TLS tests, made with trustme and cryptography.

Keystores in every format the server reads are written here: PKCS12 and PEM with
cryptography, JKS/JCEKS with pyjks, and BKS/UBER with a small writer of the BouncyCastle
layout (pyjks reads those formats but cannot write them).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

PASSWORD = "secret"


@dataclass
class Leaf:
    name: str
    key: PrivateKeyTypes
    chain: list[x509.Certificate]
    cert_pem: Path
    key_pem: Path

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def _leaf(directory: Path, name: str, issued: trustme.LeafCert) -> Leaf:
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), None)
    chain = [x509.load_pem_x509_certificate(blob.bytes()) for blob in issued.cert_chain_pems]
    cert_pem, key_pem = directory / f"{name}.crt", directory / f"{name}.key"
    issued.private_key_pem.write_to_path(str(key_pem))
    cert_pem.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems[:1]))
    return Leaf(name, key, chain, cert_pem, key_pem)


@dataclass
class Pki:
    directory: Path
    ca: trustme.CA
    ca_pem: Path
    server: Leaf
    alice: Leaf  # client, listed in the trust store
    carol: Leaf  # client signed by the CA, not listed
    stranger: Leaf  # client of another CA
    expired: Leaf  # listed, but expired
    future: Leaf  # listed, not valid yet


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(key_type=trustme.KeyType.RSA, organization_name="gridactor tests")
    other = trustme.CA(key_type=trustme.KeyType.RSA, organization_name="strangers")
    ca_pem = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    now = datetime.datetime.now(datetime.UTC)
    rsa = trustme.KeyType.RSA

    def client(issuer: trustme.CA, name: str, **kw: datetime.datetime) -> Leaf:
        issued = issuer.issue_cert(
            f"{name}@clients.test", common_name=name, organization_unit_name="clients", key_type=rsa, **kw
        )
        return _leaf(directory, name, issued)

    return Pki(
        directory=directory,
        ca=ca,
        ca_pem=ca_pem,
        server=_leaf(directory, "server", ca.issue_cert("localhost", "127.0.0.1", key_type=rsa)),
        alice=client(ca, "alice"),
        carol=client(ca, "carol"),
        stranger=client(other, "stranger"),
        expired=client(
            ca,
            "expired",
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        ),
        future=client(
            ca,
            "future",
            not_before=now + datetime.timedelta(days=1),
            not_after=now + datetime.timedelta(days=30),
        ),
    )


# ---------------------------------------------------------------- keystore writers


def write_pkcs12(path: Path, leaf: Leaf, password: str = PASSWORD, alias: str = "server") -> Path:
    blob = pkcs12.serialize_key_and_certificates(
        alias.encode(),
        leaf.key,  # type: ignore[arg-type]
        leaf.chain[0],
        leaf.chain[1:] or None,
        serialization.BestAvailableEncryption(password.encode()),
    )
    path.write_bytes(blob)
    return path


def write_pkcs12_truststore(
    path: Path, certificates: list[x509.Certificate], password: str = PASSWORD
) -> Path:
    entries = [pkcs12.PKCS12Certificate(c, f"trusted-{i}".encode()) for i, c in enumerate(certificates)]
    path.write_bytes(
        pkcs12.serialize_java_truststore(entries, serialization.BestAvailableEncryption(password.encode()))
    )
    return path


def write_pem_keystore(path: Path, leaf: Leaf, password: str | None = None) -> Path:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    key = leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)  # type: ignore[union-attr]
    certs = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in leaf.chain)
    path.write_bytes(certs + key)
    return path


def _pkcs8(leaf: Leaf) -> bytes:
    return leaf.key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_java_keystore(
    path: Path,
    leaf: Leaf,
    kind: str = "jks",
    password: str = PASSWORD,
    alias: str = "server",
    trusted: list[x509.Certificate] = (),  # type: ignore[assignment]
) -> Path:
    import jks  # type: ignore[import-untyped]

    entries = []
    if leaf is not None:
        chain = [c.public_bytes(serialization.Encoding.DER) for c in leaf.chain]
        entries.append(jks.PrivateKeyEntry.new(alias, chain, _pkcs8(leaf), "pkcs8"))
    for i, certificate in enumerate(trusted):
        entries.append(
            jks.TrustedCertEntry.new(f"trusted-{i}", certificate.public_bytes(serialization.Encoding.DER))
        )
    path.write_bytes(jks.KeyStore.new(kind, entries).saves(password))
    return path


def write_with_keytool(path: Path, source_p12: Path, kind: str, password: str = PASSWORD) -> Path:
    """Convert a PKCS12 keystore with the JDK's keytool (JCEKS, which pyjks cannot write)."""
    import subprocess

    subprocess.run(
        [
            "keytool",
            "-importkeystore",
            "-noprompt",
            "-srckeystore",
            str(source_p12),
            "-srcstoretype",
            "PKCS12",
            "-srcstorepass",
            password,
            "-destkeystore",
            str(path),
            "-deststoretype",
            kind,
            "-deststorepass",
            password,
            "-destkeypass",
            password,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path


def _utf(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def _data(blob: bytes) -> bytes:
    return struct.pack(">I", len(blob)) + blob


def _bks_entries(leaf: Leaf, password: str, alias: str) -> bytes:
    from Cryptodome.Cipher import DES3
    from jks import rfc7292
    from jks.util import add_pkcs7_padding

    chain = b"".join(_utf("X.509") + _data(c.public_bytes(serialization.Encoding.DER)) for c in leaf.chain)
    key_entry = bytes([0]) + _utf("PKCS#8") + _utf("RSA") + _data(_pkcs8(leaf))
    salt, iterations = os.urandom(20), 1024
    key = rfc7292.derive_key(hashlib.sha1, rfc7292.PURPOSE_KEY_MATERIAL, password, salt, iterations, 24)
    iv = rfc7292.derive_key(hashlib.sha1, rfc7292.PURPOSE_IV_MATERIAL, password, salt, iterations, 8)
    sealed = DES3.new(key, DES3.MODE_CBC, iv=iv).encrypt(add_pkcs7_padding(key_entry, 8))
    sealed_blob = _data(salt) + struct.pack(">I", iterations) + sealed
    entry = bytes([4]) + _utf(alias) + struct.pack(">q", 0) + struct.pack(">I", len(leaf.chain)) + chain
    return entry + _data(sealed_blob) + bytes([0])


def write_bks(path: Path, leaf: Leaf, password: str = PASSWORD, alias: str = "server") -> Path:
    import hmac

    from jks import rfc7292

    salt, iterations = os.urandom(20), 1024
    store = _bks_entries(leaf, password, alias)
    mac_key = rfc7292.derive_key(hashlib.sha1, rfc7292.PURPOSE_MAC_MATERIAL, password, salt, iterations, 20)
    mac = hmac.new(mac_key, store, hashlib.sha1).digest()
    path.write_bytes(struct.pack(">I", 2) + _data(salt) + struct.pack(">I", iterations) + store + mac)
    return path


def write_uber(path: Path, leaf: Leaf, password: str = PASSWORD, alias: str = "server") -> Path:
    from jks import rfc7292

    salt, iterations = os.urandom(20), 1024
    store = _bks_entries(leaf, password, alias)
    encrypted = rfc7292.encrypt_PBEWithSHAAndTwofishCBC(
        store + hashlib.sha1(store).digest(), password, salt, iterations
    )
    path.write_bytes(struct.pack(">I", 1) + _data(salt) + struct.pack(">I", iterations) + bytes(encrypted))
    return path


def write_bcfks_lookalike(path: Path) -> Path:
    """A DER structure shaped like a BCFKS store (SEQUENCE of SEQUENCE), not a PKCS12 PFX."""
    path.write_bytes(bytes.fromhex("3008300602010102010a"))
    return path
