"""RFC 4515 filter escaping, filter templates and userPassword values (no directory needed)."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridactor.config.model import LdapIdentityMappingConfig
from gridactor.security.credentials import ClearPassword
from gridactor.security.realms.ldap import (
    HashedUserPassword,
    check_password,
    escape_filter_value,
    format_filter,
    parse_urls,
    parse_user_password,
    user_filter,
)


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("*", "\\2a"),
        ("admin)(uid=*", "admin\\29\\28uid=\\2a"),
        ("*)(|(uid=*", "\\2a\\29\\28|\\28uid=\\2a"),
        ("back\\slash", "back\\5cslash"),
        ("nul\x00byte", "nul\\00byte"),
        ("ключ", "ключ"),
        ("plain", "plain"),
    ],
)
def test_filter_values_are_escaped_per_rfc4515(name: str, escaped: str) -> None:
    assert escape_filter_value(name) == escaped


def _unescape(value: str) -> str:
    return re.sub(r"\\([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


@given(st.text(max_size=64))
def test_an_escaped_value_has_no_filter_syntax_left_and_round_trips(value: str) -> None:
    escaped = escape_filter_value(value)
    assert not set(escaped) & {"*", "(", ")", "\x00"}
    assert re.fullmatch(r"(?:[^\\]|\\[0-9a-f]{2})*", escaped, re.DOTALL)
    assert _unescape(escaped) == value


def test_templates_take_escaped_name_and_dn() -> None:
    template = "(&(objectClass=groupOfNames)(member={1})(cn={0}))"
    assert format_filter(template, "a*", "uid=x(1),dc=o") == (
        "(&(objectClass=groupOfNames)(member=uid=x\\281\\29,dc=o)(cn=a\\2a))"
    )
    assert format_filter("(x={2})", "a") == "(x={2})"


def _mapping(rdn: str | None, filter_name: str | None) -> LdapIdentityMappingConfig:
    return LdapIdentityMappingConfig(rdn, "dc=o", False, 10_000, filter_name, (), None, 1)


def test_filter_name_defaults_to_the_rdn_identifier() -> None:
    assert user_filter(_mapping("uid", None), "uid") == "(uid={0})"
    assert user_filter(
        _mapping("sAMAccountName", "(&(objectClass=person)(rdn_identifier={0}))"), "sAMAccountName"
    ) == ("(&(objectClass=person)(sAMAccountName={0}))")


def test_urls_failover_lists_and_default_ports() -> None:
    urls = parse_urls("ldap://a.example ldaps://b.example:10636  ldap://[::1]:389")
    assert [(u.host, u.port, u.use_ssl) for u in urls] == [
        ("a.example", 389, False),
        ("b.example", 10636, True),
        ("::1", 389, False),
    ]
    for bad in ("http://x", "ldap://x/dc=o", "", "ldap://x:99999"):
        with pytest.raises(ValueError, match=r"."):
            parse_urls(bad)


def slappasswd(scheme: str, secret: str) -> bytes:
    done = subprocess.run(
        ["slappasswd", "-h", scheme, "-s", secret], capture_output=True, check=True, timeout=10
    )
    return done.stdout.strip()


@pytest.mark.parametrize("scheme", ["{SSHA}", "{SHA}", "{MD5}", "{SMD5}"])
def test_hashes_written_by_slappasswd_check_password_guesses(scheme: str) -> None:
    stored = parse_user_password(slappasswd(scheme, "pässwörd"))
    assert isinstance(stored, HashedUserPassword)
    assert "***" in repr(stored)
    assert check_password([stored], "pässwörd")
    assert not check_password([stored], "passwörd")
    assert not check_password([stored], "")


def test_sha2_schemes() -> None:
    salt = b"0123"
    value = b"{SSHA512}" + base64.b64encode(hashlib.sha512(b"pw" + salt).digest() + salt)
    stored = parse_user_password(value)
    assert isinstance(stored, HashedUserPassword)
    assert check_password([stored], "pw")
    unsalted = b"{SHA256}" + base64.b64encode(hashlib.sha256(b"pw").digest())
    assert check_password([parse_user_password(unsalted)], "pw")  # type: ignore[list-item]


def test_clear_and_unusable_values() -> None:
    assert parse_user_password(b"secret") == ClearPassword("secret")
    assert parse_user_password(b"{CLEARTEXT}se{cr}et") == ClearPassword("se{cr}et")
    assert parse_user_password("pässwörd".encode()) == ClearPassword("pässwörd")
    assert parse_user_password(slappasswd("{CRYPT}", "x")) is None
    assert parse_user_password(b"{SSHA}not base64!") is None
    assert parse_user_password(b"{SHA}" + base64.b64encode(b"short")) is None
    assert parse_user_password(b"\xff\xfe") is None
