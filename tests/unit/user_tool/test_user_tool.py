"""`gridactor user …`: Infinispan's formats and messages, read back by the realm."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gridactor.security.credentials import ClearPassword, DigestHash, ScramSaltedPassword
from gridactor.security.realms.properties import PropertiesRealm
from gridactor.security.user_tool import (
    UserStore,
    UserToolError,
    add_user_subcommands,
    build_parser,
    encrypt_password,
    resolve_paths,
    run_user_command,
)

DATE = "Tue Mar 24 18:01:35 CET 2026"
SALT = bytes(range(12))


class Console:
    def __init__(self, answers: list[str] | None = None) -> None:
        self.out: list[str] = []
        self.err: list[str] = []
        self.prompts: list[str] = []
        self.answers = list(answers or [])

    def prompt(self, text: str) -> str:
        self.prompts.append(text)
        return self.answers.pop(0)


def run(tmp_path: Path, *argv: str, console: Console | None = None) -> tuple[int, Console]:
    con = console or Console()
    args = build_parser().parse_args(
        ["user", *argv, "-f", str(tmp_path / "users.properties"), "-w", str(tmp_path / "groups.properties")]
    )
    code = run_user_command(
        args, out=con.out.append, err=con.err.append, prompt_password=con.prompt, prompt_line=con.prompt
    )
    return code, con


def realm_for(tmp_path: Path, name: str = "default") -> PropertiesRealm:
    realm = PropertiesRealm(
        tmp_path / "users.properties", tmp_path / "groups.properties", security_realm=name, check_interval=0
    )
    realm.load()
    return realm


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ISPN_PASSWORD", raising=False)
    monkeypatch.delenv("ISPN_USERNAME", raising=False)


def test_create_writes_infinispan_format_exactly(tmp_path: Path) -> None:
    store = UserStore(
        tmp_path / "users.properties", tmp_path / "groups.properties", salt_source=lambda n: SALT, date=DATE
    )
    store.create_user(
        "admin", "password", groups=["admin", "observer"], algorithms=["scram-sha-256", "digest-sha-256"]
    )
    assert (tmp_path / "users.properties").read_text() == (
        "#$REALM_NAME=default$\n#$ALGORITHM=encrypted$\n#" + DATE + "\n"
        "admin=scram-sha-256\\:BYGcIAwAAQIDBAUGBwgJCgu4chJTOSH/zsDN2L24VWbquvaPCWNaUAz77ErdKZs1hQ\\=\\=;"
        "digest-sha-256\\:AgVhZG1pbgdkZWZhdWx0drhCva8uWFCsI8cbGgpVJZzf8mPy7l8FEDT8pByKgvg\\=;\n"
    )
    assert (tmp_path / "groups.properties").read_text() == f"#{DATE}\nadmin=admin,observer\n"
    assert (tmp_path / "users.properties").stat().st_mode & 0o777 == 0o600


def test_round_trip_default_algorithms(tmp_path: Path) -> None:
    code, con = run(tmp_path, "create", "admin", "-p", "pä ss", "-g", "admin,observer")
    assert (code, con.out, con.err) == (0, [], [])
    realm = realm_for(tmp_path)
    creds = realm.credentials("admin")
    assert creds is not None
    names = [x.algorithm for x in creds if isinstance(x, DigestHash | ScramSaltedPassword)]
    assert names == [
        "scram-sha-1", "scram-sha-256", "scram-sha-384", "scram-sha-512",
        "digest-md5", "digest-sha", "digest-sha-256", "digest-sha-384", "digest-sha-512",
    ]  # fmt: skip
    scram = creds[1]
    assert isinstance(scram, ScramSaltedPassword)
    assert (scram.iterations, len(scram.salt)) == (20000, 12)
    assert realm.verify_password("admin", "pä ss")
    assert realm.groups("admin") == frozenset({"admin", "observer"})
    for mech in ("SCRAM-SHA-1", "SCRAM-SHA-512", "DIGEST-MD5", "DIGEST-SHA-384", "DIGEST", "PLAIN"):
        assert realm.supports_mechanism(mech)


def test_nfkc_password(tmp_path: Path) -> None:
    run(tmp_path, "create", "u", "-p", "\u2168", "-a", "scram-sha-256")  # ROMAN NUMERAL NINE
    assert realm_for(tmp_path).verify_password("u", "IX")


def test_plain_text_round_trip(tmp_path: Path) -> None:
    run(tmp_path, "create", "bob", "-p", "a=b:c#d", "--plain-text")
    text = (tmp_path / "users.properties").read_text()
    assert "#$ALGORITHM=clear$\n" in text
    assert text.endswith("bob=a\\=b\\:c\\#d\n")
    realm = realm_for(tmp_path)
    assert realm.credentials("bob") == (ClearPassword("a=b:c#d"),)
    # A second user on a clear file stays clear (Infinispan would store a hash there).
    run(tmp_path, "create", "carol", "-p", "pw")
    assert realm_for(tmp_path).credentials("carol") == (ClearPassword("pw"),)


def test_escaped_username_round_trip(tmp_path: Path) -> None:
    run(tmp_path, "create", "us:er=1 x", "-p", "pw", "-g", "g")
    assert "us\\:er\\=1\\ x=" in (tmp_path / "users.properties").read_text()
    realm = realm_for(tmp_path)
    assert realm.verify_password("us:er=1 x", "pw")
    assert realm.groups("us:er=1 x") == frozenset({"g"})


def test_describe_and_ls_exact(tmp_path: Path) -> None:
    run(tmp_path, "create", "zed", "-p", "pw", "-g", "writer,admin")
    run(tmp_path, "create", "amy", "-p", "pw")
    run(tmp_path, "create", "kim", "-p", "pw", "-g", "admin,reader")
    assert run(tmp_path, "describe", "zed")[1].out == [
        '{ username: "zed", realm: "default", groups = [writer, admin] }'
    ]
    assert run(tmp_path, "describe", "amy")[1].out == ['{ username: "amy", realm: "default", groups = [] }']
    assert run(tmp_path, "ls")[1].out == ['["amy","kim","zed"]']
    assert run(tmp_path, "ls", "--groups")[1].out == ['["admin","reader","writer"]']
    assert run(tmp_path, "ls", "-g")[1].out == ['["admin","reader","writer"]']


def test_messages_exact(tmp_path: Path) -> None:
    run(tmp_path, "create", "admin", "-p", "pw")
    assert run(tmp_path, "create", "admin", "-p", "pw")[1].err == ["User `admin` already exists"]
    code, con = run(tmp_path, "describe", "ghost")
    assert (code, con.err) == (1, ["User `ghost` does not exist"])
    assert run(tmp_path, "create", "x", "-p", "pw", "-a", "md4")[1].err == [
        "Unkown password encryption algorithm: 'md4'"
    ]
    assert run(tmp_path, "create", "y", "-p", "pw", "-r", "other")[1].err == [
        "Attempted to use a different realm 'other' than the already existing one 'default'"
    ]
    assert run(tmp_path, "create", "z", "-p", "pw", "--plain-text")[1].err == [
        "Attempt to use CLEAR passwords, but only ENCRYPTED passwords are allowed"
    ]
    assert run(tmp_path, "password", "ghost", "-p", "pw")[1].err == ["User `ghost` does not exist"]


def test_clear_file_refuses_algorithms(tmp_path: Path) -> None:
    run(tmp_path, "create", "a", "-p", "pw", "--plain-text")
    assert run(tmp_path, "create", "b", "-p", "pw", "-a", "scram-sha-256")[1].err == [
        "Attempt to use ENCRYPTED passwords, but only CLEAR passwords are allowed"
    ]


def test_realm_option(tmp_path: Path) -> None:
    run(tmp_path, "create", "a", "-p", "pw", "-r", "myrealm")
    assert (tmp_path / "users.properties").read_text().startswith("#$REALM_NAME=myrealm$\n")
    assert run(tmp_path, "create", "b", "-p", "pw")[0] == 0  # -r defaults to the file's realm
    realm = realm_for(tmp_path, "myrealm")
    creds = realm.credentials("b")
    assert creds is not None
    assert {x.realm for x in creds if isinstance(x, DigestHash)} == {"myrealm"}


def test_remove_password_groups(tmp_path: Path) -> None:
    run(tmp_path, "create", "a", "-p", "old", "-g", "g1")
    run(tmp_path, "create", "b", "-p", "pw")
    assert run(tmp_path, "password", "a", "-p", "new")[0] == 0
    realm = realm_for(tmp_path)
    assert realm.verify_password("a", "new")
    assert not realm.verify_password("a", "old")
    assert realm.groups("a") == frozenset({"g1"})
    assert run(tmp_path, "groups", "a", "-g", "x,y")[0] == 0
    assert realm_for(tmp_path).groups("a") == frozenset({"x", "y"})
    assert run(tmp_path, "rm", "a")[0] == 0
    realm = realm_for(tmp_path)
    assert realm.credentials("a") is None
    assert "a=" not in (tmp_path / "groups.properties").read_text().splitlines()[1:]


def test_encrypt_all(tmp_path: Path) -> None:
    run(tmp_path, "create", "a", "-p", "pw1", "--plain-text")
    run(tmp_path, "create", "b", "-p", "pw2", "--plain-text")
    assert run(tmp_path, "encrypt-all", "-a", "scram-sha-256,digest-sha-256")[0] == 0
    text = (tmp_path / "users.properties").read_text()
    assert "#$ALGORITHM=encrypted$" in text
    assert "pw1" not in text
    realm = realm_for(tmp_path)
    assert realm.verify_password("a", "pw1")
    assert realm.verify_password("b", "pw2")
    assert realm.credential_algorithms == frozenset({"scram-sha-256", "digest-sha-256"})
    before = (tmp_path / "users.properties").read_bytes()
    assert run(tmp_path, "encrypt-all")[0] == 0  # already encrypted: nothing to do
    assert (tmp_path / "users.properties").read_bytes() == before


def test_password_from_env_and_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISPN_PASSWORD", "fromenv")
    run(tmp_path, "create", "a")
    assert realm_for(tmp_path).verify_password("a", "fromenv")
    monkeypatch.delenv("ISPN_PASSWORD")
    con = Console(["typed", "typed"])
    assert run(tmp_path, "create", "b", console=con)[0] == 0
    assert con.prompts == ["Set a password for the user: ", "Confirm the password for the user: "]
    assert realm_for(tmp_path).verify_password("b", "typed")
    con = Console(["one", "two"])
    code, con = run(tmp_path, "create", "c", console=con)
    assert (code, con.err) == (1, ["The passwords do not match"])
    con = Console(["named", "pw", "pw"])
    assert run(tmp_path, "create", console=con)[0] == 0
    assert con.prompts[0] == "Specify a username: "


def test_password_never_printed(tmp_path: Path) -> None:
    outputs: list[str] = []
    for argv in (
        ("create", "a", "-p", "S3cr3t!"),
        ("create", "a", "-p", "S3cr3t!"),
        ("create", "b", "-p", "S3cr3t!", "-a", "nope"),
        ("password", "a", "-p", "S3cr3t!", "--plain-text"),
        ("describe", "a"),
        ("ls",),
    ):
        _, con = run(tmp_path, *argv)
        outputs += con.out + con.err
    assert outputs
    assert not any("S3cr3t!" in line for line in outputs)


def test_empty_password_refused(tmp_path: Path) -> None:
    assert run(tmp_path, "create", "a", "-p", "")[1].err == ["The password must not be empty"]


def test_random_with_echo(tmp_path: Path) -> None:
    code, con = run(tmp_path, "create", "--random", "--echo")
    assert code == 0
    user = con.out[0].removeprefix("Generated username: ")
    password = con.out[1].removeprefix("Generated password: ")
    assert len(user) == len(password) == 8
    assert realm_for(tmp_path).verify_password(user, password)


def test_headerless_file_with_users_not_rewritten(tmp_path: Path) -> None:
    (tmp_path / "users.properties").write_text("admin=secret\n")
    assert "no '#$ALGORITHM=clear$'" in run(tmp_path, "create", "b", "-p", "pw")[1].err[0]
    assert (tmp_path / "users.properties").read_text() == "admin=secret\n"


def test_empty_shipped_file_gets_headers(tmp_path: Path) -> None:
    (tmp_path / "users.properties").write_text("")
    (tmp_path / "groups.properties").write_text("")
    assert run(tmp_path, "create", "a", "-p", "pw")[0] == 0
    assert (
        (tmp_path / "users.properties")
        .read_text()
        .startswith("#$REALM_NAME=default$\n#$ALGORITHM=encrypted$\n")
    )


def test_keeps_existing_order_and_permissions(tmp_path: Path) -> None:
    run(tmp_path, "create", "zz", "-p", "pw", "--plain-text")
    (tmp_path / "users.properties").chmod(0o640)
    run(tmp_path, "create", "aa", "-p", "pw")
    lines = (tmp_path / "users.properties").read_text().splitlines()
    assert [line.split("=")[0] for line in lines[3:]] == ["zz", "aa"]
    assert (tmp_path / "users.properties").stat().st_mode & 0o777 == 0o640


def test_resolve_paths() -> None:
    assert resolve_paths() == (Path("config/users.properties"), Path("config/groups.properties"))
    assert resolve_paths("server") == (
        Path("server/conf/users.properties"),
        Path("server/conf/groups.properties"),
    )
    assert resolve_paths("server", "u.p", "/abs/g.p") == (Path("server/conf/u.p"), Path("/abs/g.p"))


def test_encrypt_password_unknown() -> None:
    with pytest.raises(UserToolError, match="Unkown password encryption algorithm: 'digest-sha-512-256'"):
        encrypt_password("a", "default", "pw", ["digest-sha-512-256"])


def test_mount_on_parent_parser(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="gridactor")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run")
    add_user_subcommands(commands)
    args = parser.parse_args(["user", "add", "a", "-p", "pw", "-s", str(tmp_path)])
    assert args.command == "user"
    assert run_user_command(args, out=print, err=print) == 0
    assert (tmp_path / "conf" / "users.properties").exists()
    assert (tmp_path / "conf" / "groups.properties").read_text().splitlines()[1:] == ["a="]
