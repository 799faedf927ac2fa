"""Kerberos server identities and the realm built from them: keytab loading, names, groups."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gridactor.config.loader import load_config
from gridactor.errors import ConfigError
from gridactor.security.kerberos import (
    AcceptorCredentials,
    AcceptorCredentialsRequest,
    AcceptorUnavailable,
    KerberosRealm,
    KerberosServerIdentity,
    strip_realm_rewriter,
)
from gridactor.security.realms.properties import PropertiesRealm
from gridactor.security.setup import build_realm
from tests.conftest import ROOT
from tests.fixtures.kerberos import HOTROD_PRINCIPAL, HTTP_PRINCIPAL, KerberosTestRealm

EXAMPLES = ROOT / "config" / "examples"


def example_root(
    tmp_path: Path, kerberos_realm: KerberosTestRealm, name: str = "kerberos-identity.xml"
) -> Path:
    shutil.copy(EXAMPLES / name, tmp_path / "infinispan.xml")
    shutil.copy(kerberos_realm.hotrod_keytab, tmp_path / "hotrod.keytab")
    shutil.copy(kerberos_realm.http_keytab, tmp_path / "http.keytab")
    return tmp_path / "infinispan.xml"


@pytest.mark.parametrize("name", ["kerberos-identity.xml", "hotrod-kerberos.xml", "rest-kerberos.xml"])
def test_spec_examples_load(name: str) -> None:
    config = load_config(EXAMPLES / name)
    realm = config.realm("default")
    assert realm is not None


def test_required_identities_load_at_start(tmp_path: Path, kerberos_realm: KerberosTestRealm) -> None:
    config = load_config(example_root(tmp_path, kerberos_realm))
    realm = build_realm(config.security_realms["default"], str(config.source))
    assert isinstance(realm, KerberosRealm)
    assert [i.principal for i in realm.identities] == [HOTROD_PRINCIPAL, HTTP_PRINCIPAL]
    assert realm.authorization is None
    got = realm.answer(AcceptorCredentialsRequest("hotrod", None, "datagrid"))
    assert isinstance(got, AcceptorCredentials)
    assert got.principal == HOTROD_PRINCIPAL
    assert realm.identity("carol") is not None
    assert realm.identity("carol").groups == frozenset()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "does not exist"),
        ("empty", "is empty or not a keytab"),
        ("directory", "is a directory"),
        ("wrong-key", "has no usable key for hotrod/datagrid@INFINISPAN.ORG"),
    ],
)
def test_required_keytab_problems_stop_the_start(
    tmp_path: Path, kerberos_realm: KerberosTestRealm, damage: str, message: str
) -> None:
    config_file = example_root(tmp_path, kerberos_realm)
    keytab = tmp_path / "hotrod.keytab"
    keytab.unlink()
    if damage == "empty":
        keytab.write_bytes(b"")
    elif damage == "directory":
        keytab.mkdir()
    elif damage == "wrong-key":
        shutil.copy(kerberos_realm.other_keytab, keytab)
    config = load_config(config_file)
    with pytest.raises(ConfigError) as caught:
        build_realm(config.security_realms["default"], str(config.source))
    assert message in str(caught.value)
    assert str(keytab) in str(caught.value)
    assert f"{config_file}:" in str(caught.value)


def test_optional_keytab_loads_at_first_use(tmp_path: Path, kerberos_realm: KerberosTestRealm) -> None:
    keytab = tmp_path / "later.keytab"
    realm = KerberosRealm("default", [KerberosServerIdentity(HOTROD_PRINCIPAL, keytab, required=False)])
    unavailable = realm.answer(AcceptorCredentialsRequest("hotrod"))
    assert isinstance(unavailable, AcceptorUnavailable)
    assert "does not exist" in unavailable.reason
    shutil.copy(kerberos_realm.hotrod_keytab, keytab)
    assert isinstance(realm.answer(AcceptorCredentialsRequest("hotrod")), AcceptorCredentials)


def test_groups_come_from_the_properties_realm(tmp_path: Path) -> None:
    users = tmp_path / "users.properties"
    groups = tmp_path / "groups.properties"
    users.write_text("alice=alice-pw\n")
    groups.write_text("alice=admin,writer\n")
    props = PropertiesRealm(users, groups, security_realm="default", plain_text=True)
    realm = KerberosRealm("default", [], props)
    alice = realm.identity("alice")
    assert alice is not None
    assert alice.groups == frozenset({"admin", "writer"})
    carol = realm.identity("carol")  # authenticated by Kerberos, unknown to the properties realm
    assert carol is not None
    assert carol.groups == frozenset()
    assert carol.realm == "default"
    assert realm.verify_password("alice", "alice-pw")  # password mechanisms still use the realm


def test_rewriter_strips_only_the_servers_own_realm() -> None:
    rewrite = strip_realm_rewriter("INFINISPAN.ORG")
    assert rewrite("alice@INFINISPAN.ORG") == "alice"
    assert rewrite("alice@OTHER.ORG") == "alice@OTHER.ORG"
    assert rewrite("@INFINISPAN.ORG") == "@INFINISPAN.ORG"


def test_find_by_principal_host_or_service() -> None:
    identities = [
        KerberosServerIdentity(HOTROD_PRINCIPAL, Path("/nonexistent"), required=False),
        KerberosServerIdentity(HTTP_PRINCIPAL, Path("/nonexistent"), required=False),
    ]
    realm = KerberosRealm("default", identities)
    assert realm.find("hotrod") is identities[0]
    assert realm.find("http") is identities[1]
    assert realm.find("hotrod", host="datagrid") is identities[0]
    assert realm.find("hotrod", host="infinispan") is None
    assert realm.find("hotrod", principal="hotrod/other@INFINISPAN.ORG") is None
    assert realm.unservable_reason("GSSAPI") is None
    assert "no Kerberos identity" in (KerberosRealm("r", []).unservable_reason("SPNEGO") or "")
