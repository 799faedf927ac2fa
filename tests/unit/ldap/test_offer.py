"""Which mechanisms an endpoint with an LDAP realm offers (spec 4.3.1 tables + what the realm can serve)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.conftest import ROOT

from gridactor.config.loader import load_config
from gridactor.errors import ConfigError
from gridactor.security.realms.ldap import LdapRealm
from gridactor.security.setup import build_realm, http_offer, sasl_offer

TEMPLATE = ROOT / "tests" / "data" / "ldap" / "server.xml"
MAPPER = '<user-password-mapper from="userPassword"/>'


def offers(tmp_path: Path, *, mapper: bool, explicit: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    text = TEMPLATE.read_text().replace("@URL@", "ldap://127.0.0.1:1").replace("@DIRECT@", "true")
    text = text.replace("@MAPPER@", MAPPER if mapper else "")
    if not explicit:
        text = re.sub(r"<authentication>.*?</authentication>", "", text, flags=re.DOTALL)
        text = text.replace('<authentication mechanisms="BASIC DIGEST"/>', "")
    path = tmp_path / "infinispan.xml"
    path.write_text(text)
    config = load_config(path)
    realm_config = config.realm("default")
    assert realm_config is not None
    realm = build_realm(realm_config, str(path))
    assert isinstance(realm, LdapRealm)
    endpoint = config.endpoints[0]
    return sasl_offer(config, endpoint, realm).mechanisms, http_offer(config, endpoint, realm).mechanisms


def test_password_mapper_serves_every_password_mechanism(tmp_path: Path) -> None:
    sasl, http = offers(tmp_path, mapper=True, explicit=True)
    assert sasl == ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "DIGEST-MD5")
    assert http == ("BASIC", "DIGEST")


def test_implicit_offer_without_tls_has_no_plain(tmp_path: Path) -> None:
    sasl, http = offers(tmp_path, mapper=True, explicit=False)
    assert "PLAIN" not in sasl
    assert "SCRAM-SHA-256" in sasl
    assert "DIGEST-MD5" in sasl
    assert http == ("DIGEST",)


def test_direct_verification_alone_serves_password_guesses_only(tmp_path: Path) -> None:
    sasl, http = offers(tmp_path, mapper=False, explicit=True)
    assert sasl == ("PLAIN",)
    assert http == ("BASIC",)
    # Implicitly: nothing at all (Infinispan: no password mapper, no implicit mechanism).
    assert offers(tmp_path, mapper=False, explicit=False) == ((), ())


def test_unsafe_rewriter_pattern_is_a_configuration_error(tmp_path: Path) -> None:
    text = (
        TEMPLATE.read_text().replace("@URL@", "ldap://h").replace("@DIRECT@", "true").replace("@MAPPER@", "")
    )
    path = tmp_path / "infinispan.xml"
    path.write_text(text.replace(r"(.*)@INFINISPAN\.ORG", "(a+)+@X"))
    realm_config = load_config(path).realm("default")
    assert realm_config is not None
    with pytest.raises(ConfigError, match=r"infinispan.xml:\d+: name-rewriter: .*repeat inside a repeat"):
        build_realm(realm_config, str(path))
