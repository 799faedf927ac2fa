"""Property realm: file formats byte-exact with Infinispan, snapshots, reload safety."""

from __future__ import annotations

import base64
import logging
import os
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridactor.security import credentials as c
from gridactor.security.credentials import ClearPassword, DigestHash, ScramSaltedPassword
from gridactor.security.identity import Identity
from gridactor.security.realms.properties import (
    DEFAULT_ALGORITHMS,
    MODE_CLEAR,
    MODE_DIGESTED,
    MODE_ENCRYPTED,
    PropertiesFileError,
    PropertiesRealm,
    atomic_write,
    decode_credential,
    encode_credential,
    escape_key,
    escape_value,
    format_encrypted,
    make_credentials,
    mismatch_warning,
    pack_unsigned,
    parse_encrypted,
    parse_java_properties,
    parse_users_text,
    render_groups_text,
    render_users_text,
    unpack_unsigned,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "properties"
SALT = bytes(range(12))

# Reference §1.2 worked examples (user admin, realm default, password "password").
DIGEST_SHA256_ITEM = "digest-sha-256:AgVhZG1pbgdkZWZhdWx0drhCva8uWFCsI8cbGgpVJZzf8mPy7l8FEDT8pByKgvg="
SCRAM_SHA256_ITEM = "scram-sha-256:BYGcIAwAAQIDBAUGBwgJCgu4chJTOSH/zsDN2L24VWbquvaPCWNaUAz77ErdKZs1hQ=="


# ---------------------------------------------------------------- encoding vectors


def test_worked_example_digest_sha256_exact() -> None:
    cred = c.make_digest("digest-sha-256", "admin", "default", "password")
    assert format_encrypted([cred]) == DIGEST_SHA256_ITEM + ";"
    assert (
        escape_value(format_encrypted([cred]))
        == DIGEST_SHA256_ITEM.replace(":", "\\:").replace("=", "\\=") + ";"
    )
    assert escape_value(format_encrypted([cred])).endswith("gvg\\=;")


def test_worked_example_scram_sha256_exact() -> None:
    cred = c.make_scram("scram-sha-256", "password", SALT)
    assert format_encrypted([cred]) == SCRAM_SHA256_ITEM + ";"
    raw = encode_credential(cred)
    assert raw[:5] == bytes.fromhex("05819c200c")


@pytest.mark.parametrize(
    ("value", "packed"),
    [(0, "00"), (12, "0c"), (63, "3f"), (64, "8040"), (127, "807f"), (128, "8100"), (20000, "819c20")],
)
def test_packed_unsigned_java_form(value: int, packed: str) -> None:
    assert pack_unsigned(value).hex() == packed
    assert unpack_unsigned(bytes.fromhex(packed), 0) == (value, len(packed) // 2)


def test_packed_unsigned_accepts_minimal_form() -> None:
    assert unpack_unsigned(bytes.fromhex("40"), 0) == (64, 1)
    assert unpack_unsigned(bytes.fromhex("7f"), 0) == (127, 1)
    assert unpack_unsigned(bytes.fromhex("819c20"), 0) == (20000, 3)


def test_packed_unsigned_rejects_truncated_and_overlong() -> None:
    with pytest.raises(ValueError, match="truncated"):
        unpack_unsigned(b"\x81", 0)
    with pytest.raises(ValueError):
        unpack_unsigned(b"\xff" * 7 + b"\x00", 0)


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_packed_round_trip(value: int) -> None:
    assert unpack_unsigned(pack_unsigned(value), 0) == (value, len(pack_unsigned(value)))


def test_decode_scram_with_minimal_packed_iterations() -> None:
    # Same credential as the worked example, lengths packed without Java's redundant 0x80.
    cred = c.make_scram("scram-sha-256", "password", SALT, iterations=64)
    java = encode_credential(cred)
    assert java[1:3] == b"\x80\x40"
    minimal = java[:1] + b"\x40" + java[3:]
    assert decode_credential("scram-sha-256", minimal) == cred


def test_decode_worked_examples() -> None:
    creds = parse_encrypted(DIGEST_SHA256_ITEM + ";" + SCRAM_SHA256_ITEM + ";")
    digest, scram = creds
    assert isinstance(digest, DigestHash)
    assert (digest.algorithm, digest.username, digest.realm) == ("digest-sha-256", "admin", "default")
    assert digest.digest == c.digest_hash("digest-sha-256", "admin", "default", "password")
    assert isinstance(scram, ScramSaltedPassword)
    assert (scram.iterations, scram.salt) == (20000, SALT)
    assert c.verify_password([scram], "admin", "default", "password")


def test_clear_spec_round_trip() -> None:
    item = format_encrypted([ClearPassword("pä:ss")])
    assert item.startswith("clear:AX")
    assert parse_encrypted(item) == (ClearPassword("pä:ss"),)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("digest-sha-256", "expected 'algorithm:base64'"),
        ("digest-sha-256:!!!", "invalid base64"),
        ("md4:AQID", "unsupported algorithm 'md4'"),
        ("scram-sha-256:" + base64.b64encode(b"\x02\x01a\x01b" + bytes(32)).decode(), "does not match"),
        (
            "digest-sha-256:" + base64.b64encode(b"\x02\x05admin\x07default" + bytes(5)).decode(),
            "wrong digest",
        ),
        ("digest-sha-256:" + base64.b64encode(b"\x02\x7fadmin").decode(), "truncated"),
        ("scram-sha-256:" + base64.b64encode(b"\x05\x00\x00" + bytes(32)).decode(), "iteration"),
        (";", "no credential"),
    ],
)
def test_parse_encrypted_rejects(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_encrypted(value)


def test_make_credentials_default_set() -> None:
    creds = make_credentials("admin", "default", "password", salt_source=lambda n: SALT)
    assert [c.algorithm for c in creds if not isinstance(c, ClearPassword)] == list(DEFAULT_ALGORITHMS)
    assert format_encrypted(creds).split(";")[1] == SCRAM_SHA256_ITEM
    assert DIGEST_SHA256_ITEM in format_encrypted(creds).split(";")


# ---------------------------------------------------------------- Java properties text


def test_escape_like_properties_store() -> None:
    assert escape_key("a b:c=d#e!f\\g") == "a\\ b\\:c\\=d\\#e\\!f\\\\g"
    assert escape_value(" lead mid") == "\\ lead mid"
    assert escape_value("tab\there\n") == "tab\\there\\n"
    assert escape_value("naïve 領域") == "naïve 領域"  # the Writer variant does not \\u-escape


def test_render_users_header_exact() -> None:
    text = render_users_text([("admin", "x")], "default", "encrypted", date="Tue Mar 24 18:01:35 CET 2026")
    assert text == ("#$REALM_NAME=default$\n#$ALGORITHM=encrypted$\n#Tue Mar 24 18:01:35 CET 2026\nadmin=x\n")


def test_render_groups_exact() -> None:
    text = render_groups_text([("a:b", "g1,g2"), ("c", "")], date="Tue Mar 24 18:01:35 CET 2026")
    assert text == "#Tue Mar 24 18:01:35 CET 2026\na\\:b=g1,g2\nc=\n"


def test_users_parser_infinispan_rules() -> None:
    parsed = parse_users_text((DATA / "clear_users.properties").read_text("utf-8"))
    assert parsed.realm == "default"
    assert parsed.algorithm == "clear"
    got = {e.username: e.value for e in parsed.entries}
    assert got == {
        "alice": "open=sesame:#1",
        "bob": " spaces around",  # username trimmed; the realm trims values
        "café": "crème",
        "weird\\name": "back\\slash",  # \i → i (Infinispan's parser), \\ → \
        "carol": "p=a:s",
    }
    assert [e.line for e in parsed.entries] == [5, 6, 7, 8, 9]


def test_users_parser_crlf_and_unicode_line_separators() -> None:
    parsed = parse_users_text("#$ALGORITHM=clear$\r\na=b\u2028c\r\nd=e")
    assert [(e.username, e.value) for e in parsed.entries] == [("a", "b\u2028c"), ("d", "e")]


def test_groups_parser_java_load_semantics() -> None:
    text = "# c\n  ! c2\nkey1 value1\nkey2:value2\nkey3 = v3 \\\n    continued\nk\\ 4=a\\tb\\u0041\nlonely\n"
    got = {k: v for k, v, _ in parse_java_properties(text)}
    assert got == {
        "key1": "value1",
        "key2": "value2",
        "key3": "v3 continued",
        "k 4": "a\tbA",
        "lonely": "",
    }


# ---------------------------------------------------------------- realm over files


def _realm(tmp_path: Path, users: str, groups: str | None = None, **kwargs: object) -> PropertiesRealm:
    users_file = tmp_path / "users.properties"
    users_file.write_text(users, "utf-8")
    groups_file = tmp_path / "groups.properties"
    if groups is not None:
        groups_file.write_text(groups, "utf-8")
    return PropertiesRealm(users_file, groups_file, check_interval=0, **kwargs)  # type: ignore[arg-type]


def test_infinispan_encrypted_file(tmp_path: Path) -> None:
    realm = PropertiesRealm(
        DATA / "encrypted_users.properties", DATA / "encrypted_groups.properties", check_interval=0
    )
    snap = realm.load()
    assert snap.mode == MODE_ENCRYPTED
    assert realm.realm_name == "default"
    assert realm.verify_password("admin", "password")
    assert not realm.verify_password("admin", "Password")
    assert realm.verify_password("us:er=1", "s3cret")
    assert realm.groups("admin") == frozenset({"admin", "observer"})
    assert realm.groups("us:er=1") == frozenset()
    assert realm.groups("onlygroups") == frozenset({"deployer", "reader"})
    creds = realm.credentials("admin")
    assert creds is not None
    assert [type(x).__name__ for x in creds] == ["ScramSaltedPassword", "DigestHash", "DigestHash"]
    assert realm.credentials("onlygroups") == ()
    assert realm.credentials("nobody") is None
    assert realm.identity("admin", mechanism="PLAIN") == Identity(
        "admin", "default", frozenset({"admin", "observer"}), "PLAIN"
    )
    assert realm.identity("onlygroups") is not None
    assert realm.identity("nobody") is None
    assert realm.credential_algorithms == frozenset({"scram-sha-256", "digest-md5", "digest-sha-256"})
    assert realm.supports_mechanism("SCRAM-SHA-256-PLUS")
    assert realm.supports_mechanism("DIGEST")  # HTTP Digest MD5
    assert realm.supports_mechanism("PLAIN")
    assert not realm.supports_mechanism("CRAM-MD5")
    assert not realm.supports_mechanism("SCRAM-SHA-512")
    assert snap.warnings == ()


def test_clear_file(tmp_path: Path) -> None:
    realm = PropertiesRealm(DATA / "clear_users.properties", None, check_interval=0)
    assert realm.load().mode == MODE_CLEAR
    assert realm.verify_password("alice", "open=sesame:#1")
    assert realm.verify_password("bob", "spaces around")
    assert realm.verify_password("café", "crème")
    assert realm.supports_mechanism("CRAM-MD5")
    assert realm.credentials("carol") == (ClearPassword("p=a:s"),)


def test_plain_text_without_algorithm_header_is_clear(tmp_path: Path) -> None:
    realm = _realm(tmp_path, "myuser=a_password\n", plain_text=True, security_realm="default")
    assert realm.load().mode == MODE_CLEAR
    assert realm.verify_password("myuser", "a_password")


def test_pre_digested_md5(tmp_path: Path) -> None:
    digest = c.digest_hash("digest-md5", "admin", "default", "password").hex()
    realm = _realm(tmp_path, f"#$REALM_NAME=default$\nadmin={digest}\n")
    assert realm.load().mode == MODE_DIGESTED
    assert realm.credentials("admin") == (
        DigestHash("digest-md5", "admin", "default", bytes.fromhex(digest)),
    )
    assert realm.verify_password("admin", "password")
    assert not realm.verify_password("admin", digest)  # the hash is not a password


def test_pre_digested_uses_digest_realm_name(tmp_path: Path) -> None:
    digest = c.digest_hash("digest-md5", "admin", "legacy", "pw").hex()
    realm = _realm(tmp_path, f"admin={digest.upper()}\n", digest_realm_name="legacy")
    assert realm.realm_name == "legacy"
    assert realm.verify_password("admin", "pw")


def test_pre_digested_rejects_clear_value(tmp_path: Path) -> None:
    realm = _realm(tmp_path, "#$REALM_NAME=default$\nadmin=Tr0ub4dor\n")
    with pytest.raises(PropertiesFileError) as info:
        realm.load()
    assert str(info.value).startswith(f"{tmp_path / 'users.properties'}:2: user 'admin': not a pre-digested")
    assert "Tr0ub4dor" not in str(info.value)


def test_realm_name_fallbacks(tmp_path: Path) -> None:
    assert _realm(tmp_path, "#$ALGORITHM=clear$\n", security_realm="sec").realm_name == "sec"
    assert (
        _realm(tmp_path, "#$ALGORITHM=clear$\n", digest_realm_name="d", security_realm="sec").realm_name
        == "d"
    )
    assert _realm(tmp_path, "#$REALM_NAME=f$\n#$ALGORITHM=clear$\n", security_realm="f").realm_name == "f"


def test_realm_mismatch_warning_exact(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    realm = _realm(tmp_path, "#$REALM_NAME=other$\n#$ALGORITHM=clear$\na=b\n", security_realm="default")
    with caplog.at_level(logging.WARNING):
        snap = realm.load()
    path = str(tmp_path / "users.properties")
    expected = (
        f"{path}: the users file belongs to realm 'other' but the security realm is named 'default': "
        "DIGEST hashes embed the realm, so DIGEST logins will fail; re-create the users with "
        "'-r default' or rename the security realm"
    )
    assert mismatch_warning(path, "other", "default") == expected
    assert snap.warnings == (expected,)
    assert expected in caplog.text
    assert realm.realm_name == "other"


@pytest.mark.parametrize(
    ("users", "line", "message"),
    [
        ("#$ALGORITHM=clear$\nok=1\nno separator here\n", 3, "expected 'username=value'"),
        ("#$ALGORITHM=clear$\n=nouser\n", 2, "empty username"),
        ("#$ALGORITHM=clear$\nbad\\u00zz=x\n", 2, "invalid Unicode sequence"),
        ("#$ALGORITHM=rot13$\n", 1, "unknown $ALGORITHM$ 'rot13'"),
        (
            "#$REALM_NAME=default$\n#$ALGORITHM=encrypted$\n\nadmin=digest-sha-256\\:%%%;\n",
            4,
            "invalid base64",
        ),
    ],
)
def test_malformed_names_file_and_line(tmp_path: Path, users: str, line: int, message: str) -> None:
    realm = _realm(tmp_path, users)
    with pytest.raises(PropertiesFileError) as info:
        realm.load()
    assert info.value.line == line
    assert str(info.value).startswith(f"{tmp_path / 'users.properties'}:{line}: ")
    assert message in str(info.value)


def test_invalid_utf8_names_line(tmp_path: Path) -> None:
    users = tmp_path / "users.properties"
    users.write_bytes(b"#$ALGORITHM=clear$\na=b\nc=\xff\n")
    with pytest.raises(PropertiesFileError, match=r":3: not valid UTF-8"):
        PropertiesRealm(users, None).load()


def test_secret_never_in_error(tmp_path: Path) -> None:
    realm = _realm(
        tmp_path, "#$REALM_NAME=default$\n#$ALGORITHM=encrypted$\nadmin=clear\\:AXN1cGVyc2VjcmV0;x\n"
    )
    with pytest.raises(PropertiesFileError) as info:
        realm.load()
    assert "supersecret" not in str(info.value)
    assert "AXN1cGVyc2VjcmV0" not in str(info.value)
    assert "supersecret" not in repr(ClearPassword("supersecret"))


def test_missing_users_file_is_empty_realm(tmp_path: Path) -> None:
    realm = PropertiesRealm(tmp_path / "none.properties", tmp_path / "g.properties", check_interval=0)
    snap = realm.load()
    assert snap.users == {}
    assert "users file not found" in snap.warnings[0]
    assert not realm.verify_password("admin", "x")
    assert realm.supports_mechanism("DIGEST-SHA-256")  # what `user create` will write


# ---------------------------------------------------------------- reload


def _bump(path: Path, text: str) -> None:
    path.write_text(text, "utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_reload_if_changed(tmp_path: Path) -> None:
    realm = _realm(tmp_path, "#$ALGORITHM=clear$\na=1\n", "a=g1\n")
    realm.load()
    assert not realm.reload_if_changed().changed
    _bump(tmp_path / "users.properties", "#$ALGORITHM=clear$\na=2\nb=3\n")
    assert realm.reload_if_changed().changed
    assert realm.verify_password("a", "2")
    _bump(tmp_path / "groups.properties", "a=g2\n")
    assert realm.groups("a") == frozenset({"g2"})  # lookups reload by themselves


def test_malformed_reload_keeps_last_good(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    realm = _realm(tmp_path, "#$ALGORITHM=clear$\na=1\n", "a=g1\n")
    realm.load()
    _bump(tmp_path / "users.properties", "#$ALGORITHM=clear$\na=2\noops\n")
    with caplog.at_level(logging.ERROR):
        result = realm.reload_if_changed()
    assert not result.changed
    assert result.error is not None
    assert result.error.line == 3
    assert f"{tmp_path / 'users.properties'}:3:" in caplog.text
    assert realm.verify_password("a", "1")  # nobody locked out
    assert realm.groups("a") == frozenset({"g1"})
    # Same bad content is not re-parsed and re-reported on every lookup.
    assert realm.reload_if_changed() == type(result)(False)
    _bump(tmp_path / "users.properties", "#$ALGORITHM=clear$\na=3\n")
    assert realm.reload_if_changed().changed
    assert realm.verify_password("a", "3")


def test_vanished_users_file_keeps_last_good(tmp_path: Path) -> None:
    realm = _realm(tmp_path, "#$ALGORITHM=clear$\na=1\n")
    realm.load()
    (tmp_path / "users.properties").unlink()
    result = realm.reload_if_changed()
    assert result.error is not None
    assert realm.verify_password("a", "1")


def test_first_load_error_raises(tmp_path: Path) -> None:
    realm = _realm(tmp_path, "garbage\n")
    with pytest.raises(PropertiesFileError):
        realm.reload_if_changed()


def test_check_interval_throttles_stat(tmp_path: Path) -> None:
    now = [0.0]
    users = tmp_path / "users.properties"
    users.write_text("#$ALGORITHM=clear$\na=1\n")
    realm = PropertiesRealm(users, None, check_interval=5.0, clock=lambda: now[0])
    realm.load()
    _bump(users, "#$ALGORITHM=clear$\na=2\n")
    assert realm.verify_password("a", "1")
    now[0] = 6.0
    assert realm.verify_password("a", "2")


def test_unknown_user_does_same_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    realm = PropertiesRealm(DATA / "encrypted_users.properties", None, check_interval=0)
    realm.load()
    calls: list[tuple[str, int]] = []
    real = c.scram_salted_password

    def spy(algorithm: str, password: str, salt: bytes, iterations: int) -> bytes:
        calls.append((algorithm, iterations))
        return real(algorithm, password, salt, iterations)

    monkeypatch.setattr(c, "scram_salted_password", spy)
    assert not realm.verify_password("admin", "wrong")
    assert not realm.verify_password("ghost", "wrong")
    assert not realm.verify_password("onlygroups", "wrong")
    assert calls == [("scram-sha-256", 20000)] * 3


def test_snapshot_repr_has_no_secret(tmp_path: Path) -> None:
    realm = _realm(tmp_path, "#$ALGORITHM=clear$\na=topsecret\n")
    assert "topsecret" not in repr(realm.load())


# ---------------------------------------------------------------- atomic writes


def test_atomic_write_permissions(tmp_path: Path) -> None:
    target = tmp_path / "new.properties"
    atomic_write(target, b"x")
    assert target.stat().st_mode & 0o777 == 0o600
    target.chmod(0o640)
    atomic_write(target, b"y")
    assert target.stat().st_mode & 0o777 == 0o640
    assert target.read_bytes() == b"y"
    assert [p.name for p in tmp_path.iterdir()] == ["new.properties"]  # no temp left


def test_concurrent_rewrite_never_half_read(tmp_path: Path) -> None:
    users = tmp_path / "users.properties"
    big = {f"user{i}": f"password-{i}-" + "x" * 200 for i in range(300)}
    versions = [
        render_users_text([(u, p + str(v)) for u, p in big.items()], "default", "clear").encode()
        for v in range(2)
    ]
    atomic_write(users, versions[0])
    realm = PropertiesRealm(users, None, check_interval=0)
    realm.load()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            atomic_write(users, versions[n % 2])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(200):
            result = realm.reload_if_changed()
            if result.error is not None:
                errors.append(result.error)
            assert len(realm.snapshot.users) == 300
    finally:
        stop.set()
        thread.join()
    assert errors == []
