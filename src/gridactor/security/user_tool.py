"""``gridactor user …``: edit ``users.properties`` / ``groups.properties`` like Infinispan's CLI.

Same file formats, option names and messages as ``bin/cli.sh user``. Files live in the
configuration directory: ``config/users.properties`` and ``config/groups.properties`` by
default; ``-s ROOT`` means ``ROOT/conf/…`` as in Infinispan; ``-f``/``-w`` name the files
(relative names are resolved in that directory, as Infinispan does).

Deliberate differences from Infinispan (its behaviour there is a bug):
* ``create``/``password`` without ``--plain-text`` on a ``$ALGORITHM=clear$`` file store the
  password in clear (the file's mode) instead of a hash the server would read as a password;
  asking for ``-a`` algorithms on such a file is refused like ``--plain-text`` on an encrypted one.
* ``-r`` defaults to the file's realm, so a file of realm ``x`` can be edited without ``-r x``.
* A file with users but no ``$ALGORITHM$`` header is not rewritten (its mode is unknown).
* ``remove`` of an unknown user is an error; an empty password is refused.
* Files are replaced atomically (temp file, fsync, rename); new files get mode 0600.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import getpass
import json
import os
import secrets
import string
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from gridactor.security.credentials import DIGEST_HASHES, SCRAM_HASHES
from gridactor.security.realms.properties import (
    DEFAULT_ALGORITHMS,
    MODE_CLEAR,
    MODE_ENCRYPTED,
    PropertiesFileError,
    atomic_write,
    format_encrypted,
    make_credentials,
    parse_java_properties,
    parse_users_text,
    render_groups_text,
    render_users_text,
)

DEFAULT_CONFIG_DIR = "config"
DEFAULT_REALM_NAME = "default"
USERS_FILE = "users.properties"
GROUPS_FILE = "groups.properties"

# The algorithms `-a` accepts (Infinispan's list; digest-sha-512-256 is not offered by its CLI).
ACCEPTED_ALGORITHMS = tuple(SCRAM_HASHES) + tuple(a for a in DIGEST_HASHES if a != "digest-sha-512-256")

# Prompts and messages, verbatim from Infinispan's CLI message bundle.
PROMPT_USERNAME = "Specify a username: "
PROMPT_PASSWORD = "Set a password for the user: "
PROMPT_CONFIRM = "Confirm the password for the user: "


class UserToolError(Exception):
    """A user-facing failure; ``str()`` is the message printed (never a password)."""


def msg_user_exists(username: str) -> str:
    return f"User `{username}` already exists"


def msg_no_such_user(username: str) -> str:
    return f"User `{username}` does not exist"


def msg_unknown_algorithm(algorithm: str) -> str:
    return f"Unkown password encryption algorithm: '{algorithm}'"  # sic, as Infinispan


def msg_wrong_realm(requested: str, existing: str) -> str:
    return f"Attempted to use a different realm '{requested}' than the already existing one '{existing}'"


def msg_incompatible_encryption(requested: str, existing: str) -> str:
    return f"Attempt to use {requested} passwords, but only {existing} passwords are allowed"


def msg_describe(username: str, realm: str, groups: Sequence[str]) -> str:
    return f'{{ username: "{username}", realm: "{realm}", groups = [{", ".join(groups)}] }}'


def resolve_paths(
    server_root: str | None = None, users_file: str | None = None, groups_file: str | None = None
) -> tuple[Path, Path]:
    """Where the files are: ``config/`` by default, ``ROOT/conf/`` with ``-s ROOT``."""
    conf = Path(server_root) / "conf" if server_root else Path(DEFAULT_CONFIG_DIR)
    users = Path(users_file) if users_file else Path(USERS_FILE)
    groups = Path(groups_file) if groups_file else Path(GROUPS_FILE)
    return (users if users.is_absolute() else conf / users, groups if groups.is_absolute() else conf / groups)


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    # Two tool runs at once would each rewrite the files from their own read and lose the
    # other's change; an advisory lock on the directory serialises them.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class UserStore:
    """Both files in memory, edited and written back the way Infinispan's ``UserTool`` does."""

    def __init__(
        self,
        users_file: Path,
        groups_file: Path,
        *,
        salt_source: Callable[[int], bytes] = secrets.token_bytes,
        date: str | None = None,
    ) -> None:
        self.users_file = users_file
        self.groups_file = groups_file
        self.salt_source = salt_source
        self.date = date  # fixed date comment (tests); None: now
        self.users: dict[str, str] = {}  # username → stored value (unescaped)
        self.groups: dict[str, str] = {}  # username → "g1,g2"
        self.realm: str | None = None
        self.encryption: str | None = None  # MODE_CLEAR / MODE_ENCRYPTED / None (no header)
        self.load()

    def load(self) -> None:
        self.users, self.groups, self.realm, self.encryption = {}, {}, None, None
        if self.users_file.exists():
            text = self._read(self.users_file)
            try:
                parsed = parse_users_text(text, str(self.users_file))
            except PropertiesFileError as exc:
                raise UserToolError(str(exc)) from None
            self.realm = parsed.realm
            if parsed.algorithm is not None:
                if parsed.algorithm not in (MODE_CLEAR, MODE_ENCRYPTED):
                    raise UserToolError(
                        f"{self.users_file}:{parsed.algorithm_line}: unknown $ALGORITHM$ '{parsed.algorithm}'"
                    )
                self.encryption = parsed.algorithm
            for entry in parsed.entries:
                self.users[entry.username] = entry.value
        if self.groups_file.exists():
            text = self._read(self.groups_file)
            try:
                for user, value, _line in parse_java_properties(text, str(self.groups_file)):
                    self.groups[user] = value
            except PropertiesFileError as exc:
                raise UserToolError(str(exc)) from None

    @staticmethod
    def _read(path: Path) -> str:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UserToolError(f"Error accessing file '{path}'") from exc
        try:
            return data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            raise UserToolError(f"Error accessing file '{path}': not valid UTF-8") from None

    # -- consistency checks

    def check_realm(self, realm: str | None) -> str:
        if realm is None:
            return self.realm if self.realm is not None else DEFAULT_REALM_NAME
        if self.realm is None or self.realm == realm:
            return realm
        raise UserToolError(msg_wrong_realm(realm, self.realm))

    def _check_editable(self) -> None:
        if self.encryption is None and self.users:
            raise UserToolError(
                f"{self.users_file} has users but no '#$ALGORITHM=clear$' or '#$ALGORITHM=encrypted$' "
                "header: add the one that describes its passwords before editing it"
            )

    def _mode_for(self, plain_text: bool, algorithms: Sequence[str] | None) -> str:
        """The mode to write in; refuses a request that contradicts the file's header."""
        if plain_text:
            if self.encryption == MODE_ENCRYPTED:
                raise UserToolError(msg_incompatible_encryption("CLEAR", "ENCRYPTED"))
            return MODE_CLEAR
        if self.encryption == MODE_CLEAR and algorithms:
            raise UserToolError(msg_incompatible_encryption("ENCRYPTED", "CLEAR"))
        return self.encryption or MODE_ENCRYPTED

    def _value(
        self, username: str, realm: str, password: str, mode: str, algorithms: Sequence[str] | None
    ) -> str:
        if mode == MODE_CLEAR:
            return password
        return encrypt_password(username, realm, password, algorithms, salt_source=self.salt_source)

    # -- operations

    def create_user(
        self,
        username: str,
        password: str,
        *,
        realm: str | None = None,
        plain_text: bool = False,
        groups: Sequence[str] | None = None,
        algorithms: Sequence[str] | None = None,
    ) -> None:
        if username in self.users:
            raise UserToolError(msg_user_exists(username))
        self._check_editable()
        _check_password(password)
        realm = self.check_realm(realm)
        mode = self._mode_for(plain_text, algorithms)
        self.users[username] = self._value(username, realm, password, mode, algorithms)
        self.groups[username] = ",".join(groups or ())
        self.store(realm, mode)

    def describe_user(self, username: str) -> str:
        if username not in self.users:
            raise UserToolError(msg_no_such_user(username))
        raw = self.groups.get(username, "").strip()
        groups = [part.strip() for part in raw.split(",")] if raw else []
        while groups and not groups[-1]:  # Java's String.split drops trailing empty strings
            groups.pop()
        return msg_describe(username, self.check_realm(None), groups)

    def remove_user(self, username: str) -> None:
        if username not in self.users and username not in self.groups:
            raise UserToolError(msg_no_such_user(username))
        self._check_editable()
        self.users.pop(username, None)
        self.groups.pop(username, None)
        self.store(self.check_realm(None), self.encryption or MODE_ENCRYPTED)

    def modify_user(
        self,
        username: str,
        *,
        password: str | None = None,
        realm: str | None = None,
        plain_text: bool = False,
        groups: Sequence[str] | None = None,
        algorithms: Sequence[str] | None = None,
    ) -> None:
        if username not in self.users:
            raise UserToolError(msg_no_such_user(username))
        self._check_editable()
        realm = self.check_realm(realm)
        mode = self._mode_for(plain_text, algorithms if password is not None else None)
        if password is not None:
            _check_password(password)
            self.users[username] = self._value(username, realm, password, mode, algorithms)
        if groups is not None:
            self.groups[username] = ",".join(groups)
        self.store(realm, mode)

    def encrypt_all(self, algorithms: Sequence[str] | None = None) -> bool:
        """Hash every clear password. Does nothing (False) unless the file is ``clear``."""
        if self.encryption != MODE_CLEAR:
            return False
        realm = self.check_realm(None)
        for username, password in list(self.users.items()):
            self.users[username] = encrypt_password(
                username, realm, password, algorithms, salt_source=self.salt_source
            )
        self.encryption = MODE_ENCRYPTED
        self.store(realm, MODE_ENCRYPTED)
        return True

    def list_users(self) -> list[str]:
        return sorted(self.users)

    def list_groups(self) -> list[str]:
        found = {g.strip() for value in self.groups.values() for g in value.split(",")}
        return sorted(g for g in found if g)

    def store(self, realm: str, mode: str) -> None:
        # users first: a crash between the two writes leaves a user with fewer groups, never
        # a removed user's credentials still valid.
        users_text = render_users_text(self.users.items(), realm, mode, date=self.date)
        groups_text = render_groups_text(self.groups.items(), date=self.date)
        for path, text in ((self.users_file, users_text), (self.groups_file, groups_text)):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, text.encode("utf-8"))
            except OSError as exc:
                raise UserToolError(f"Error accessing file '{path}'") from exc
        self.realm, self.encryption = realm, mode


def _check_password(password: str) -> None:
    if not password:
        raise UserToolError("The password must not be empty")


def encrypt_password(
    username: str,
    realm: str,
    password: str,
    algorithms: Sequence[str] | None = None,
    *,
    salt_source: Callable[[int], bytes] = secrets.token_bytes,
) -> str:
    """The ``encrypted`` value for one user: ``alg:base64;`` per algorithm, in the order given."""
    chosen = list(algorithms) if algorithms else list(DEFAULT_ALGORITHMS)
    for algorithm in chosen:
        if algorithm not in ACCEPTED_ALGORITHMS:
            raise UserToolError(msg_unknown_algorithm(algorithm))
    return format_encrypted(make_credentials(username, realm, password, chosen, salt_source=salt_source))


# ---------------------------------------------------------------- argparse glue


def _list_arg(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _add_file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-s",
        "--server-root",
        dest="server_root",
        help="server root: files in ROOT/conf/ (default: the config/ directory)",
    )
    parser.add_argument("-f", "--users-file", dest="users_file", help="path of users.properties")
    parser.add_argument("-w", "--groups-file", dest="groups_file", help="path of groups.properties")


def _add_password_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--password", help="the password (else $ISPN_PASSWORD, else a prompt)")
    parser.add_argument("-r", "--realm", help="the realm (default: the file's, else 'default')")
    parser.add_argument("-a", "--algorithms", type=_list_arg, help="comma-separated hash algorithms")
    parser.add_argument(
        "--plain-text",
        dest="plain_text",
        action="store_true",
        help="store the password in clear (not recommended)",
    )


def add_user_subcommands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Mount ``user`` on a parent parser's subparsers; dispatch with :func:`run_user_command`."""
    user = subparsers.add_parser("user", help="manage users.properties / groups.properties")
    commands = user.add_subparsers(dest="user_command", required=True)

    create = commands.add_parser("create", aliases=["add"], help="creates a user")
    create.add_argument("username", nargs="?")
    _add_password_options(create)
    create.add_argument("-g", "--groups", type=_list_arg, help="comma-separated groups")
    create.add_argument(
        "--random", action="store_true", help="generate username and/or password if unspecified"
    )
    create.add_argument("--echo", action="store_true", help="echo generated identifiers")
    create.add_argument("--random-length", dest="random_length", type=int, default=8)
    _add_file_options(create)

    describe = commands.add_parser("describe", help="describes a user")
    describe.add_argument("username")
    _add_file_options(describe)

    remove = commands.add_parser("remove", aliases=["rm"], help="removes a user")
    remove.add_argument("username")
    _add_file_options(remove)

    password = commands.add_parser("password", help="changes a user's password")
    password.add_argument("username")
    _add_password_options(password)
    _add_file_options(password)

    groups = commands.add_parser("groups", help="sets a user's groups")
    groups.add_argument("username")
    groups.add_argument("-g", "--groups", type=_list_arg, required=True, help="comma-separated groups")
    _add_file_options(groups)

    ls = commands.add_parser("ls", help="lists all users/groups")
    ls.add_argument("-g", "--groups", action="store_true", help="list all unique groups instead of users")
    _add_file_options(ls)

    encrypt = commands.add_parser("encrypt-all", help="encrypts all of the passwords in a property file")
    encrypt.add_argument("-a", "--algorithms", type=_list_arg, help="comma-separated hash algorithms")
    _add_file_options(encrypt)
    return user


_ALIASES = {"add": "create", "rm": "remove"}


def _ask_password(prompt: Callable[[str], str]) -> str:
    env = os.environ.get("ISPN_PASSWORD")
    if env:
        return env
    first = prompt(PROMPT_PASSWORD)
    if prompt(PROMPT_CONFIRM) != first:
        raise UserToolError("The passwords do not match")
    return first


def _random_string(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(max(length, 1)))


def run_user_command(
    args: argparse.Namespace,
    *,
    out: Callable[[str], None] | None = None,
    err: Callable[[str], None] | None = None,
    prompt_password: Callable[[str], str] = getpass.getpass,
    prompt_line: Callable[[str], str] = input,
) -> int:
    """Run a parsed ``user`` command. 0 on success, 1 with the message on stderr otherwise."""
    write_out = out or (lambda text: print(text))
    write_err = err or (lambda text: print(text, file=sys.stderr))
    command = _ALIASES.get(args.user_command, args.user_command)
    users_file, groups_file = resolve_paths(args.server_root, args.users_file, args.groups_file)
    try:
        with _directory_lock(users_file.parent):
            store = UserStore(users_file, groups_file)
            if command == "create":
                username = args.username or ""
                while not username:
                    if args.random:
                        username = _random_string(args.random_length)
                        if args.echo:
                            write_out(f"Generated username: {username}")
                    else:
                        username = os.environ.get("ISPN_USERNAME") or prompt_line(PROMPT_USERNAME).strip()
                password = args.password
                if password is None:
                    if args.random:
                        password = _random_string(args.random_length)
                        if args.echo:  # the user asked to see the generated password
                            write_out(f"Generated password: {password}")
                    else:
                        password = _ask_password(prompt_password)
                store.create_user(
                    username,
                    password,
                    realm=args.realm,
                    plain_text=args.plain_text,
                    groups=args.groups,
                    algorithms=args.algorithms,
                )
            elif command == "describe":
                write_out(store.describe_user(args.username))
            elif command == "remove":
                store.remove_user(args.username)
            elif command == "password":
                if args.username not in store.users:
                    raise UserToolError(msg_no_such_user(args.username))
                password = args.password if args.password is not None else _ask_password(prompt_password)
                store.modify_user(
                    args.username,
                    password=password,
                    realm=args.realm,
                    plain_text=args.plain_text,
                    algorithms=args.algorithms,
                )
            elif command == "groups":
                store.modify_user(args.username, groups=args.groups)
            elif command == "ls":
                items = store.list_groups() if args.groups else store.list_users()
                write_out(json.dumps(items, ensure_ascii=False, separators=(",", ":")))
            elif command == "encrypt-all":
                store.encrypt_all(args.algorithms)
            else:
                raise UserToolError(f"unknown user command '{command}'")
    except UserToolError as exc:
        write_err(str(exc))
        return 1
    except (EOFError, KeyboardInterrupt):
        write_err("")
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone ``gridactor``-like parser with only ``user`` (tests, ``python -m``)."""
    parser = argparse.ArgumentParser(prog="gridactor")
    commands = parser.add_subparsers(dest="command", required=True)
    add_user_subcommands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_user_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
