"""Keystores of every format, their errors, self-signed generation, protocol/cipher mapping."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from gridactor.config.model import KeyStoreConfig, SslEngineConfig
from gridactor.errors import ConfigError
from gridactor.server.tls import (
    detect_keystore_format,
    ensure_self_signed_keystore,
    load_key_material,
    load_trusted_certificates,
    resolve_cipher_suites,
    resolve_protocols,
)
from tests.unit.tls.helpers import (
    PASSWORD,
    Pki,
    make_pki,
    write_bcfks_lookalike,
    write_bks,
    write_java_keystore,
    write_pem_keystore,
    write_pkcs12,
    write_pkcs12_truststore,
    write_uber,
    write_with_keytool,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


WRITERS = {
    "PKCS12": lambda path, leaf: write_pkcs12(path, leaf),
    "JKS": lambda path, leaf: write_java_keystore(path, leaf, "jks"),
    "BKS": lambda path, leaf: write_bks(path, leaf),
    "UBER": lambda path, leaf: write_uber(path, leaf),
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_every_format_loads_key_and_chain(pki: Pki, tmp_path: Path, kind: str) -> None:
    path = WRITERS[kind](tmp_path / f"server.{kind.lower()}", pki.server)
    assert detect_keystore_format(path.read_bytes()) in (kind, "BKS" if kind == "UBER" else kind)
    material = load_key_material(path, PASSWORD, alias="server")
    assert material.chain[0] == pki.server.certificate
    assert material.alias is not None
    assert material.alias.lower() == "server"
    assert "PRIVATE" not in repr(material)


@pytest.mark.skipif(shutil.which("keytool") is None, reason="no JDK keytool")
def test_jceks_written_by_keytool(pki: Pki, tmp_path: Path) -> None:
    source = write_pkcs12(tmp_path / "server.p12", pki.server)
    path = write_with_keytool(tmp_path / "server.jceks", source, "JCEKS")
    assert detect_keystore_format(path.read_bytes()) == "JCEKS"
    assert load_key_material(path, PASSWORD, alias="SERVER").chain[0] == pki.server.certificate


def test_pem_keystore_with_and_without_key_password(pki: Pki, tmp_path: Path) -> None:
    clear = write_pem_keystore(tmp_path / "clear.pem", pki.server)
    assert load_key_material(clear, "").chain[0] == pki.server.certificate
    locked = write_pem_keystore(tmp_path / "locked.pem", pki.server, password="kp")
    assert load_key_material(locked, None, key_password="kp").chain[0] == pki.server.certificate
    with pytest.raises(ConfigError, match=r"locked.pem"):
        load_key_material(locked, None, key_password="wrong")


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_wrong_password_names_the_file(pki: Pki, tmp_path: Path, kind: str) -> None:
    path = WRITERS[kind](tmp_path / f"server.{kind.lower()}", pki.server)
    with pytest.raises(ConfigError, match=rf"{path.name}: wrong password") as info:
        load_key_material(path, "not-the-password", alias="server", source="conf.xml", line=7)
    assert str(info.value).startswith("conf.xml:7: keystore:")
    assert "not-the-password" not in str(info.value)


def test_missing_alias_lists_the_aliases(pki: Pki, tmp_path: Path) -> None:
    path = write_java_keystore(tmp_path / "server.jks", pki.server, alias="main")
    with pytest.raises(
        ConfigError, match=r"alias 'server' not found in keystore .*server.jks \(key aliases: 'main'\)"
    ):
        load_key_material(path, PASSWORD, alias="server")
    p12 = write_pkcs12(tmp_path / "server.p12", pki.server, alias="main")
    with pytest.raises(ConfigError, match="alias 'server' not found"):
        load_key_material(p12, PASSWORD, alias="server")


def test_missing_file_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_key_material(tmp_path / "nope.p12", PASSWORD)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x99garbage")
    with pytest.raises(ConfigError, match="not a keystore"):
        load_key_material(junk, PASSWORD)


def test_bcfks_is_refused_with_the_conversion_command(tmp_path: Path) -> None:
    path = write_bcfks_lookalike(tmp_path / "server.bcfks")
    with pytest.raises(ConfigError, match=r"keytool -importkeystore .*-srcstoretype BCFKS"):
        load_key_material(path, PASSWORD)
    with pytest.raises(ConfigError, match="BCFKS"):
        load_key_material(path, PASSWORD, store_type="BCFKS")


def test_key_that_does_not_match_the_certificate(pki: Pki, tmp_path: Path) -> None:
    pem = tmp_path / "mixed.pem"
    write_pem_keystore(pem, pki.server)
    other_cert = pki.alice.cert_pem.read_bytes()
    key_only = pem.read_bytes()[pem.read_bytes().index(b"-----BEGIN PRIVATE KEY") :]
    pem.write_bytes(other_cert + key_only)
    with pytest.raises(ConfigError, match="does not match"):
        load_key_material(pem, "")


def test_truststores(pki: Pki, tmp_path: Path) -> None:
    certs = [
        pki.alice.certificate,
        pki.ca.cert_pem.bytes() and x509.load_pem_x509_certificate(pki.ca.cert_pem.bytes()),
    ]
    p12 = write_pkcs12_truststore(tmp_path / "trust.p12", certs)
    assert set(load_trusted_certificates(p12, PASSWORD)) == set(certs)
    jks_store = write_java_keystore(tmp_path / "trust.jks", None, trusted=certs)  # type: ignore[arg-type]
    assert set(load_trusted_certificates(jks_store, PASSWORD)) == set(certs)
    assert load_trusted_certificates(pki.ca_pem, None)[0] == certs[1]
    with pytest.raises(ConfigError, match=r"trust.p12: wrong password"):
        load_trusted_certificates(p12, "bad")


def test_self_signed_keystore_is_generated_once(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "server.p12"
    config = KeyStoreConfig(path, None, "secret", "server", None, None, None, "localhost", 3)
    assert ensure_self_signed_keystore(config, "x.xml") is True
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    first = load_key_material(path, "secret", alias="server")
    san = first.chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ensure_self_signed_keystore(config, "x.xml") is False  # a restart keeps it
    assert load_key_material(path, "secret", alias="server").chain[0] == first.chain[0]


def test_protocols_older_than_tls12_are_left_out() -> None:
    chosen = resolve_protocols(SslEngineConfig(("TLSv1.2", "TLSv1.1"), None, None, 1))
    assert chosen.enabled == ("TLSv1.2",)
    assert chosen.refused == ("TLSv1.1",)
    assert chosen.minimum == chosen.maximum == ssl.TLSVersion.TLSv1_2
    default = resolve_protocols(None)
    assert default.minimum == ssl.TLSVersion.TLSv1_2
    assert default.maximum == ssl.TLSVersion.TLSv1_3
    with pytest.raises(ValueError, match="none is allowed"):
        resolve_protocols(SslEngineConfig(("TLSv1", "SSLv3"), None, None, 1))


def test_java_cipher_names_map_to_openssl() -> None:
    cipher_string, named, tls13 = resolve_cipher_suites(
        "SSL_RSA_WITH_AES_128_GCM_SHA256 SSL_RSA_WITH_AES_128_CBC_SHA256,"
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"
    )
    assert cipher_string == "AES128-GCM-SHA256:AES128-SHA256:ECDHE-RSA-AES256-GCM-SHA384"
    assert named[0] == "TLS_RSA_WITH_AES_128_GCM_SHA256"
    assert tls13 == ("TLS_AES_128_GCM_SHA256",)
    assert resolve_cipher_suites("ECDHE+AESGCM:!aNULL")[0] == "ECDHE+AESGCM:!aNULL"
    for bad in ("TLS_MADE_UP_WITH_ROT13", "NOT-A-CIPHER", "@SECLEVEL=0"):
        with pytest.raises(ValueError, match=r"unknown cipher suite|not allowed"):
            resolve_cipher_suites(bad)
