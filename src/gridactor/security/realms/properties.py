"""The property realm: ``users.properties`` + ``groups.properties``, as Infinispan writes them.

File formats (byte-compatible with Infinispan's ``user`` tool and server):

* ``users.properties`` starts with comment headers ``#$REALM_NAME=<realm>$`` and
  ``#$ALGORITHM=clear|encrypted$`` and a date comment (``java.util.Properties.store``).
  Entries are ``user=value`` with Java escaping (``\\:``, ``\\=``, ``\\#``, ``\\!``, ``\\\\``).
  It is read with Infinispan's own line parser, not ``Properties.load``: one line per entry,
  ``\\x`` → ``x``, ``\\uXXXX`` → a char, the first unescaped ``=`` or ``:`` splits.
* Value forms: ``clear`` → the password; ``encrypted`` → ``alg:base64(spec);…`` with Elytron's
  ``BasicPasswordSpecEncoding``; no ``$ALGORITHM$`` header and ``plain-text="false"`` → the
  pre-digested form of Elytron's legacy realm, hex ``MD5(user ":" realm ":" password)``.
* ``groups.properties`` is a plain Java properties file ``user=g1,g2`` (``Properties.load``
  semantics, continuations included).

:class:`PropertiesRealm` holds an immutable :class:`RealmSnapshot` and swaps it only for a
snapshot that parsed completely, so a half-edited file never locks everyone out.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from gridactor.errors import ConfigError
from gridactor.security import credentials as creds
from gridactor.security.credentials import (
    DIGEST_HASHES,
    SCRAM_HASHES,
    ClearPassword,
    Credential,
    DigestHash,
    ScramSaltedPassword,
)
from gridactor.security.identity import Identity
from gridactor.security.realms.base import UnsupportedRealmRequest
from gridactor.security.sasl.base import RealmRequest

log = logging.getLogger(__name__)

REALM_PREFIX = "$REALM_NAME="
ALGORITHM_PREFIX = "$ALGORITHM="
HEADER_SUFFIX = "$"

MODE_CLEAR = "clear"
MODE_ENCRYPTED = "encrypted"
MODE_DIGESTED = "digested"  # legacy pre-digested hex MD5 (no $ALGORITHM$ header, plain-text="false")

# The 12.x-16.0 default of Infinispan's `user create`: every SASL/HTTP mechanism works.
DEFAULT_ALGORITHMS: tuple[str, ...] = (
    "scram-sha-1",
    "scram-sha-256",
    "scram-sha-384",
    "scram-sha-512",
    "digest-md5",
    "digest-sha",
    "digest-sha-256",
    "digest-sha-384",
    "digest-sha-512",
)

# BasicPasswordSpecEncoding type bytes.
SPEC_CLEAR = 0x01
SPEC_DIGEST = 0x02
SPEC_ITERATED_SALTED = 0x05


class PropertiesFileError(ConfigError):
    """A users/groups file that cannot be used. ``str()`` is ``FILE:LINE: what`` (never a secret)."""


# ---------------------------------------------------------------- Java text helpers


def java_trim(text: str) -> str:
    # String.trim() strips every char <= U+0020, not Unicode whitespace.
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Lines as BufferedReader.readLine sees them (str.splitlines knows too many separators)."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _decode_utf8(data: bytes, path: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PropertiesFileError("not valid UTF-8", file=path, line=line) from None
    return text.removeprefix("\ufeff")


def _escape(text: str, *, is_key: bool) -> str:
    # Properties.saveConvert with escUnicode=false (the Writer variant): non-ASCII stays raw.
    out: list[str] = []
    for index, char in enumerate(text):
        if char == " ":
            out.append("\\ " if is_key or index == 0 else " ")
        elif char == "\\":
            out.append("\\\\")
        elif char == "\t":
            out.append("\\t")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\f":
            out.append("\\f")
        elif char in "=:#!":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def escape_key(text: str) -> str:
    return _escape(text, is_key=True)


def escape_value(text: str) -> str:
    return _escape(text, is_key=False)


def _comment_lines(comment: str) -> list[str]:
    # Properties.writeComments: a line break starts a new "#" line, chars above U+00FF
    # become \uXXXX (upper-case hex, as Java's toHex).
    lines: list[str] = []
    for part in _LINE_BREAK.split(comment):
        escaped = "".join(c if ord(c) <= 0xFF else f"\\u{ord(c):04X}" for c in part)
        lines.append(escaped if escaped.startswith(("#", "!")) else "#" + escaped)
    return lines


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def java_date(when: float | None = None) -> str:
    """``java.util.Date.toString()`` in the local zone, English names whatever the locale."""
    t = time.localtime(time.time() if when is None else when)
    zone = t.tm_zone or "UTC"
    return (
        f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {zone} {t.tm_year}"
    )


def _header_value(line: str, prefix: str) -> str | None:
    start = line.index(prefix) + len(prefix)
    end = line.find(HEADER_SUFFIX, start)
    if end < 0:
        return None
    # The writer \u-escapes non-Latin-1 realm names; undo it so such a realm round-trips.
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), line[start:end])


# ---------------------------------------------------------------- users.properties text


@dataclass(frozen=True, slots=True)
class UserLine:
    username: str
    value: str  # unescaped, untrimmed (the tool keeps it as read)
    line: int


@dataclass(frozen=True, slots=True)
class UsersText:
    realm: str | None
    realm_line: int
    algorithm: str | None
    algorithm_line: int
    entries: tuple[UserLine, ...]


def parse_users_text(text: str, path: str = "users.properties") -> UsersText:
    """Infinispan's users.properties line parser (shared by its server and CLI)."""
    realm: str | None = None
    algorithm: str | None = None
    realm_line = algorithm_line = 0
    entries: list[UserLine] = []
    for number, raw in enumerate(split_lines(text), start=1):
        line = java_trim(raw)
        if line.startswith("#") and REALM_PREFIX in line:
            value = _header_value(line, REALM_PREFIX)
            if value is not None:
                realm, realm_line = value, number
            continue
        if line.startswith("#") and ALGORITHM_PREFIX in line:
            value = _header_value(line, ALGORITHM_PREFIX)
            if value is not None:
                algorithm, algorithm_line = value, number
            continue
        if not line or line.startswith(("#", "!")):
            continue
        username: str | None = None
        buf: list[str] = []
        i, n = 0, len(line)
        while i < n:
            char = line[i]
            if char == "\\" and i + 1 < n:
                marker = line[i + 1]
                i += 2
                if marker != "u":
                    buf.append(marker)
                    continue
                digits = line[i : i + 4]
                if len(digits) < 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise PropertiesFileError(
                        f"invalid Unicode sequence '\\u{digits}'", file=path, line=number
                    )
                buf.append(chr(int(digits, 16)))
                i += 4
                continue
            if username is None and char in "=:":
                username = java_trim("".join(buf))
                buf = []
            else:
                buf.append(char)
            i += 1
        if username is None:
            # Infinispan skips such a line silently; a typo then silently drops a user.
            raise PropertiesFileError(
                "expected 'username=value' (no '=' or ':' found)", file=path, line=number
            )
        if not username:
            raise PropertiesFileError("empty username", file=path, line=number)
        entries.append(UserLine(username, "".join(buf), number))
    return UsersText(realm, realm_line, algorithm, algorithm_line, tuple(entries))


def render_users_text(
    entries: Iterable[tuple[str, str]], realm: str, algorithm: str, *, date: str | None = None
) -> str:
    """What Infinispan's tool writes: Properties.store with the two-line header comment."""
    lines = _comment_lines(
        f"{REALM_PREFIX}{realm}{HEADER_SUFFIX}\n{ALGORITHM_PREFIX}{algorithm}{HEADER_SUFFIX}"
    )
    lines.append("#" + (date or java_date()))
    lines.extend(f"{escape_key(user)}={escape_value(value)}" for user, value in entries)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- groups.properties text


def parse_java_properties(text: str, path: str = "groups.properties") -> list[tuple[str, str, int]]:
    """``java.util.Properties.load(Reader)``: (key, value, first line) in file order."""
    result: list[tuple[str, str, int]] = []
    lines = split_lines(text)
    index = 0
    while index < len(lines):
        first = index + 1
        line = lines[index].lstrip(" \t\f")
        index += 1
        if not line or line[0] in "#!":
            continue
        # Odd number of trailing backslashes: the logical line continues.
        while _continues(line) and index < len(lines):
            line = line[:-1] + lines[index].lstrip(" \t\f")
            index += 1
        if _continues(line):
            line = line[:-1]
        n = len(line)
        key_end, value_start, has_sep, backslash = 0, n, False, False
        while key_end < n:
            char = line[key_end]
            if char in "=:" and not backslash:
                value_start, has_sep = key_end + 1, True
                break
            if char in " \t\f" and not backslash:
                value_start = key_end + 1
                break
            backslash = not backslash if char == "\\" else False
            key_end += 1
        while value_start < n:
            char = line[value_start]
            if char not in " \t\f":
                if not has_sep and char in "=:":
                    has_sep = True
                else:
                    break
            value_start += 1
        key = _load_convert(line[:key_end], path, first)
        value = _load_convert(line[value_start:], path, first)
        result.append((key, value, first))
    return result


def _continues(line: str) -> bool:
    count = len(line) - len(line.rstrip("\\"))
    return count % 2 == 1


_LOAD_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _load_convert(text: str, path: str, line: int) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        i += 1
        if char != "\\" or i >= n:
            if char != "\\":
                out.append(char)
            continue
        marker = text[i]
        i += 1
        if marker == "u":
            digits = text[i : i + 4]
            if len(digits) < 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise PropertiesFileError("Malformed \\uxxxx encoding.", file=path, line=line)
            out.append(chr(int(digits, 16)))
            i += 4
        else:
            out.append(_LOAD_ESCAPES.get(marker, marker))
    return "".join(out)


def render_groups_text(entries: Iterable[tuple[str, str]], *, date: str | None = None) -> str:
    lines = ["#" + (date or java_date())]
    lines.extend(f"{escape_key(user)}={escape_value(value)}" for user, value in entries)
    return "\n".join(lines) + "\n"


def split_groups(value: str) -> tuple[str, ...]:
    """``g1, g2,,g3`` → (g1, g2, g3): split on commas, trim, drop empties, keep order."""
    seen: dict[str, None] = {}
    for part in value.split(","):
        group = java_trim(part)
        if group:
            seen.setdefault(group, None)
    return tuple(seen)


# ---------------------------------------------------------------- BasicPasswordSpecEncoding


def pack_unsigned(value: int) -> bytes:
    """wildfly-common ``appendPackedUnsignedBE``, quirk included (64 → 80 40)."""
    if value < 0 or value > 0xFFFFFFFF:
        raise ValueError("packed value out of range")
    if value == 0:
        return b"\x00"
    size = value.bit_length() // 7 + 1  # Java: (bits + 7) / 7
    out = bytearray()
    for x in range(size - 1):
        out.append(0x80 | ((value >> ((size - x - 1) * 7)) & 0x7F))
    out.append(value & 0x7F)
    return bytes(out)


def unpack_unsigned(data: bytes, offset: int) -> tuple[int, int]:
    """Decode a packed int (minimal or Java form); returns (value, next offset)."""
    value = 0
    for count in range(6):  # 32 bits plus Java's possible redundant leading 0x80
        if offset >= len(data):
            raise ValueError("truncated packed integer")
        byte = data[offset]
        offset += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            if value > 0xFFFFFFFF:
                raise ValueError("packed integer too large")
            return value, offset
        if count == 5:
            break
    raise ValueError("packed integer too long")


def encode_credential(credential: Credential) -> bytes:
    if isinstance(credential, ClearPassword):
        return bytes([SPEC_CLEAR]) + credential.password.encode("utf-8")
    if isinstance(credential, DigestHash):
        user = credential.username.encode("utf-8")
        realm = credential.realm.encode("utf-8")
        return (
            bytes([SPEC_DIGEST])
            + pack_unsigned(len(user))
            + user
            + pack_unsigned(len(realm))
            + realm
            + credential.digest
        )
    return (
        bytes([SPEC_ITERATED_SALTED])
        + pack_unsigned(credential.iterations)
        + pack_unsigned(len(credential.salt))
        + credential.salt
        + credential.salted_password
    )


def algorithm_of(credential: Credential) -> str:
    return "clear" if isinstance(credential, ClearPassword) else credential.algorithm


def _take(data: bytes, offset: int, length: int) -> tuple[bytes, int]:
    if offset + length > len(data):
        raise ValueError("truncated field")
    return data[offset : offset + length], offset + length


def decode_credential(algorithm: str, data: bytes) -> Credential:
    """One ``algorithm:base64`` item, already base64-decoded. ValueError if unusable."""
    if not data:
        raise ValueError("empty encoded credential")
    kind, offset = data[0], 1
    if algorithm == "clear":
        if kind != SPEC_CLEAR:
            raise ValueError("encoding does not match algorithm 'clear'")
        return ClearPassword(data[1:].decode("utf-8"))
    if algorithm in DIGEST_HASHES:
        if kind != SPEC_DIGEST:
            raise ValueError(f"encoding does not match algorithm '{algorithm}'")
        length, offset = unpack_unsigned(data, offset)
        user, offset = _take(data, offset, length)
        length, offset = unpack_unsigned(data, offset)
        realm, offset = _take(data, offset, length)
        digest = data[offset:]
        if len(digest) != hashlib.new(DIGEST_HASHES[algorithm]).digest_size:
            raise ValueError(f"wrong digest length for '{algorithm}'")
        return DigestHash(algorithm, user.decode("utf-8"), realm.decode("utf-8"), digest)
    if algorithm in SCRAM_HASHES:
        if kind != SPEC_ITERATED_SALTED:
            raise ValueError(f"encoding does not match algorithm '{algorithm}'")
        iterations, offset = unpack_unsigned(data, offset)
        length, offset = unpack_unsigned(data, offset)
        salt, offset = _take(data, offset, length)
        salted = data[offset:]
        if iterations < 1:
            raise ValueError("iteration count must be positive")
        if len(salted) != hashlib.new(SCRAM_HASHES[algorithm]).digest_size:
            raise ValueError(f"wrong salted password length for '{algorithm}'")
        return ScramSaltedPassword(algorithm, iterations, salt, salted)
    raise ValueError(f"unsupported algorithm '{algorithm}'")


def format_encrypted(credentials: Iterable[Credential]) -> str:
    """The value the tool writes: ``alg:base64;`` per credential, trailing ``;`` included."""
    return "".join(
        f"{algorithm_of(c)}:{base64.b64encode(encode_credential(c)).decode('ascii')};" for c in credentials
    )


def parse_encrypted(value: str) -> tuple[Credential, ...]:
    result: list[Credential] = []
    for item in java_trim(value).split(";"):
        item = java_trim(item)
        if not item:
            continue  # the trailing ';' Infinispan always writes
        algorithm, sep, encoded = item.partition(":")
        if not sep:
            raise ValueError("expected 'algorithm:base64'")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"invalid base64 for '{algorithm}'") from None
        try:
            result.append(decode_credential(algorithm, data))
        except UnicodeDecodeError:
            raise ValueError(f"invalid UTF-8 in '{algorithm}' credential") from None
    if not result:
        raise ValueError("no credential")
    return tuple(result)


def make_credentials(
    username: str,
    realm: str,
    password: str,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    *,
    salt_source: Callable[[int], bytes] = secrets.token_bytes,
    iterations: int = creds.SCRAM_DEFAULT_ITERATIONS,
) -> tuple[Credential, ...]:
    """Hash ``password`` the way ``user create`` does, one credential per algorithm."""
    result: list[Credential] = []
    for algorithm in algorithms:
        if algorithm in SCRAM_HASHES:
            salt = salt_source(creds.SCRAM_SALT_BYTES)
            result.append(creds.make_scram(algorithm, password, salt, iterations))
        elif algorithm in DIGEST_HASHES and algorithm != "digest-sha-512-256":
            result.append(creds.make_digest(algorithm, username, realm, password))
        else:
            raise ValueError(algorithm)
    return tuple(result)


# ---------------------------------------------------------------- atomic file replacement


def atomic_write(path: Path, data: bytes, *, new_mode: int = 0o600) -> None:
    """Replace ``path`` so a reader or a crash sees the old or the new content, never half.

    Keeps an existing file's permission bits; a new file gets ``new_mode`` (it holds secrets).
    """
    directory = path.parent
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = new_mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The rename itself must survive a crash too.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# ---------------------------------------------------------------- the realm


# Mechanism → credential algorithms that can serve it ("clear" serves everything).
_MECHANISM_NEEDS: dict[str, frozenset[str]] = {
    "CRAM-MD5": frozenset(),
    "DIGEST-MD5": frozenset({"digest-md5"}),
    "DIGEST-SHA": frozenset({"digest-sha"}),
    "DIGEST-SHA-256": frozenset({"digest-sha-256"}),
    "DIGEST-SHA-384": frozenset({"digest-sha-384"}),
    "DIGEST-SHA-512": frozenset({"digest-sha-512"}),
    "DIGEST-SHA-512-256": frozenset({"digest-sha-512-256"}),
    "DIGEST": frozenset({"digest-md5"}),  # HTTP Digest with MD5
    "SCRAM-SHA-1": frozenset({"scram-sha-1"}),
    "SCRAM-SHA-256": frozenset({"scram-sha-256"}),
    "SCRAM-SHA-384": frozenset({"scram-sha-384"}),
    "SCRAM-SHA-512": frozenset({"scram-sha-512"}),
}
_PASSWORD_GUESS_MECHANISMS = frozenset({"PLAIN", "BASIC"})


@dataclass(frozen=True, slots=True, repr=False)
class RealmSnapshot:
    """One consistent view of both files. Immutable; replaced whole on reload."""

    users: Mapping[str, tuple[Credential, ...]]  # users.properties entries
    groups: Mapping[str, frozenset[str]]  # groups.properties entries
    realm_name: str  # what DIGEST hashes in this file are bound to
    file_realm: str | None  # the $REALM_NAME$ header, if any
    mode: str  # MODE_CLEAR / MODE_ENCRYPTED / MODE_DIGESTED
    warnings: tuple[str, ...] = ()
    _dummy: tuple[Credential, ...] = field(default=(), compare=False)

    def __repr__(self) -> str:
        return (
            f"RealmSnapshot(realm={self.realm_name!r}, mode={self.mode}, users={len(self.users)}, "
            f"groups={len(self.groups)})"
        )

    @property
    def identities(self) -> frozenset[str]:
        """Users with credentials plus users present only in groups.properties."""
        return frozenset(self.users) | frozenset(self.groups)

    @property
    def credential_algorithms(self) -> frozenset[str]:
        found = {algorithm_of(c) for cs in self.users.values() for c in cs}
        if found:
            return frozenset(found)
        # Nobody yet: assume what `user create` will write, so the endpoints offer the
        # mechanisms the first users will need without a restart.
        return frozenset({"clear"} if self.mode == MODE_CLEAR else DEFAULT_ALGORITHMS)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    changed: bool  # a new snapshot is in use
    error: PropertiesFileError | None = None  # the new content was rejected (old snapshot kept)


_EMPTY: Mapping[str, frozenset[str]] = MappingProxyType({})

_Stamp = tuple[int, int, int] | None


def _stamp(path: Path | None) -> _Stamp:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _dummy_for(users: Mapping[str, tuple[Credential, ...]]) -> tuple[Credential, ...]:
    # Same kind and cost as a real user's first credential, so an unknown name takes as
    # long to reject as a wrong password (no enumeration by timing).
    for cs in users.values():
        if not cs:
            continue
        c = cs[0]
        if isinstance(c, ScramSaltedPassword):
            size = len(c.salted_password)
            return (
                ScramSaltedPassword(
                    c.algorithm,
                    c.iterations,
                    secrets.token_bytes(len(c.salt) or 12),
                    secrets.token_bytes(size),
                ),
            )
        if isinstance(c, DigestHash):
            return (DigestHash(c.algorithm, "", c.realm, secrets.token_bytes(len(c.digest))),)
        return (ClearPassword(secrets.token_urlsafe(16)),)
    return (ClearPassword(secrets.token_urlsafe(16)),)


def mismatch_warning(users_file: str, file_realm: str, security_realm: str) -> str:
    return (
        f"{users_file}: the users file belongs to realm '{file_realm}' but the security realm is named "
        f"'{security_realm}': DIGEST hashes embed the realm, so DIGEST logins will fail; re-create the "
        f"users with '-r {security_realm}' or rename the security realm"
    )


class PropertiesRealm:
    """A property realm over ``users_file`` (+ optional ``groups_file``).

    ``security_realm`` is the ``<security-realm name=…>`` the server passes: the realm used
    when the file has no ``$REALM_NAME$`` header and no ``digest_realm_name`` is set, and the
    name checked against the header. Lookups check the files at most every
    ``check_interval`` seconds (0: every lookup) and reload them when they changed.
    """

    def __init__(
        self,
        users_file: str | os.PathLike[str],
        groups_file: str | os.PathLike[str] | None = None,
        *,
        security_realm: str = "default",
        plain_text: bool = False,
        digest_realm_name: str | None = None,
        groups_attribute: str = "Roles",
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users_file = Path(users_file)
        self.groups_file = Path(groups_file) if groups_file is not None else None
        self.security_realm = security_realm
        self.plain_text = plain_text
        self.digest_realm_name = digest_realm_name
        self.groups_attribute = groups_attribute  # only labels the groups (Elytron attribute name)
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: RealmSnapshot | None = None
        self._stamps: tuple[_Stamp, _Stamp] = (None, None)
        self._rejected: tuple[_Stamp, _Stamp] | None = None
        self._last_check = float("-inf")

    # -- loading

    def load(self) -> RealmSnapshot:
        """Parse both files now and use the result. Raises PropertiesFileError (FILE:LINE)."""
        with self._lock:
            snapshot, stamps = self._read_consistent()
            self._install(snapshot, stamps)
            return snapshot

    def reload_if_changed(self) -> ReloadResult:
        """Re-read if either file changed; a malformed new content keeps the last good snapshot."""
        with self._lock:
            self._last_check = self._clock()
            stamps = (_stamp(self.users_file), _stamp(self.groups_file))
            if self._snapshot is not None and stamps == self._stamps:
                return ReloadResult(False)
            if stamps == self._rejected:
                return ReloadResult(False)  # already reported; wait for the next edit
            try:
                if self._snapshot is not None and stamps[0] is None and self._stamps[0] is not None:
                    # A vanished users file is more likely an editor mid-save than intent.
                    raise PropertiesFileError(
                        "users file disappeared; keeping the users loaded before", file=str(self.users_file)
                    )
                snapshot, stamps = self._read_consistent()
            except PropertiesFileError as exc:
                self._rejected = stamps
                if self._snapshot is None:
                    raise
                log.error("%s (keeping the previous users and groups)", exc)
                return ReloadResult(False, exc)
            self._install(snapshot, stamps)
            return ReloadResult(True)

    def _install(self, snapshot: RealmSnapshot, stamps: tuple[_Stamp, _Stamp]) -> None:
        self._snapshot = snapshot
        self._stamps = stamps
        self._rejected = None
        self._last_check = self._clock()
        for warning in snapshot.warnings:
            log.warning("%s", warning)

    def _read_consistent(self) -> tuple[RealmSnapshot, tuple[_Stamp, _Stamp]]:
        # Stat, read, stat again: if a writer replaced a file in between, read again so the
        # recorded stamps describe what was parsed.
        for _ in range(5):
            before = (_stamp(self.users_file), _stamp(self.groups_file))
            users_data = self._read(self.users_file)
            groups_data = self._read(self.groups_file)
            after = (_stamp(self.users_file), _stamp(self.groups_file))
            if before == after:
                break
        return self.parse(users_data, groups_data), after

    @staticmethod
    def _read(path: Path | None) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PropertiesFileError(f"cannot read: {exc.strerror}", file=str(path)) from None

    def parse(self, users_data: bytes | None, groups_data: bytes | None) -> RealmSnapshot:
        """Build a snapshot from file contents (None: file absent). Pure; raises on bad input."""
        users_path = str(self.users_file)
        groups_path = str(self.groups_file) if self.groups_file is not None else "groups.properties"
        warnings: list[str] = []
        groups: dict[str, frozenset[str]] = {}
        if groups_data is not None:
            for user, value, _line in parse_java_properties(
                _decode_utf8(groups_data, groups_path), groups_path
            ):
                groups[user] = frozenset(split_groups(value))
        if users_data is None:
            warnings.append(f"{users_path}: users file not found; the realm has no users")
            parsed = UsersText(None, 0, None, 0, ())
        else:
            parsed = parse_users_text(_decode_utf8(users_data, users_path), users_path)

        if parsed.algorithm is not None:
            if parsed.algorithm not in (MODE_CLEAR, MODE_ENCRYPTED):
                raise PropertiesFileError(
                    f"unknown $ALGORITHM$ '{parsed.algorithm}' (expected 'clear' or 'encrypted')",
                    file=users_path,
                    line=parsed.algorithm_line,
                )
            mode = parsed.algorithm
        else:
            mode = MODE_CLEAR if self.plain_text else MODE_DIGESTED

        realm_name = parsed.realm or self.digest_realm_name or self.security_realm
        if parsed.realm is not None and parsed.realm != self.security_realm:
            warnings.append(mismatch_warning(users_path, parsed.realm, self.security_realm))

        users: dict[str, tuple[Credential, ...]] = {}
        for entry in parsed.entries:
            users[entry.username] = self._credentials_of(entry, mode, realm_name, users_path)
        return RealmSnapshot(
            users=MappingProxyType(users),
            groups=MappingProxyType(groups) if groups else _EMPTY,
            realm_name=realm_name,
            file_realm=parsed.realm,
            mode=mode,
            warnings=tuple(warnings),
            _dummy=_dummy_for(users),
        )

    @staticmethod
    def _credentials_of(entry: UserLine, mode: str, realm: str, path: str) -> tuple[Credential, ...]:
        value = java_trim(entry.value)
        if mode == MODE_CLEAR:
            return (ClearPassword(value),)
        if mode == MODE_ENCRYPTED:
            try:
                return parse_encrypted(value)
            except ValueError as exc:
                raise PropertiesFileError(
                    f"user '{entry.username}': unusable encrypted password: {exc}", file=path, line=entry.line
                ) from None
        if len(value) != 32 or not all(c in "0123456789abcdefABCDEF" for c in value):
            raise PropertiesFileError(
                f"user '{entry.username}': not a pre-digested password (32 hex digits of "
                "MD5(user:realm:password)); for clear-text passwords add '#$ALGORITHM=clear$' "
                'or set plain-text="true"',
                file=path,
                line=entry.line,
            )
        return (DigestHash("digest-md5", entry.username, realm, bytes.fromhex(value)),)

    # -- lookups

    @property
    def snapshot(self) -> RealmSnapshot:
        """The current snapshot (loading the files on first use; reloading when due).

        A negative ``check_interval`` turns automatic reloading off (call ``reload_if_changed``).
        """
        if self._snapshot is None:
            return self.load()
        if self.check_interval >= 0 and self._clock() - self._last_check >= self.check_interval:
            self.reload_if_changed()
        assert self._snapshot is not None
        return self._snapshot

    @property
    def realm_name(self) -> str:
        return self.snapshot.realm_name

    def has_identity(self, username: str) -> bool:
        return username in self.snapshot.identities

    def credentials(self, username: str) -> tuple[Credential, ...] | None:
        """Stored credentials; ``()`` for a groups-only identity, ``None`` for an unknown name."""
        snapshot = self.snapshot
        found = snapshot.users.get(username)
        if found is not None:
            return found
        return () if username in snapshot.groups else None

    def groups(self, username: str) -> frozenset[str]:
        return self.snapshot.groups.get(username, frozenset())

    def verify_password(self, username: str, password: str) -> bool:
        """Password-guess check (PLAIN, HTTP Basic…). Unknown users cost the same work."""
        snapshot = self.snapshot
        stored = snapshot.users.get(username)
        if not stored:
            creds.verify_password(snapshot._dummy, username, snapshot.realm_name, password)
            return False
        return creds.verify_password(stored, username, snapshot.realm_name, password)

    def identity(self, username: str, *, mechanism: str = "") -> Identity | None:
        snapshot = self.snapshot
        if username not in snapshot.users and username not in snapshot.groups:
            return None
        return Identity(
            name=username,
            realm=self.security_realm,
            groups=snapshot.groups.get(username, frozenset()),
            mechanism=mechanism,
        )

    @property
    def credential_algorithms(self) -> frozenset[str]:
        """Credential kinds present (``clear``, ``digest-md5``, ``scram-sha-256``…)."""
        return self.snapshot.credential_algorithms

    # -- the Realm protocol of the realm actor (gridactor.security.realms.base)

    @property
    def name(self) -> str:
        return self.security_realm

    def refresh(self) -> None:
        """Load on first use, then reload when the files changed (keeping the last good state)."""
        if self._snapshot is None:
            self.load()
        else:
            self.reload_if_changed()

    def answer(self, request: RealmRequest) -> object:
        raise UnsupportedRealmRequest(f"a property realm cannot answer {type(request).__name__}")

    def credential_kinds(self) -> frozenset[type]:
        kinds: set[type] = set()
        for algorithm in self.credential_algorithms:
            if algorithm == "clear":
                kinds.add(creds.ClearPassword)
            elif algorithm in creds.DIGEST_HASHES:
                kinds.add(creds.DigestHash)
            elif algorithm in creds.SCRAM_HASHES:
                kinds.add(creds.ScramSaltedPassword)
        return frozenset(kinds)

    def supports_mechanism(self, mechanism: str) -> bool:
        """Can any user of this realm log in with ``mechanism`` (SASL or HTTP name)?"""
        name = mechanism.upper().removesuffix("-PLUS")
        available = self.credential_algorithms
        if name in _PASSWORD_GUESS_MECHANISMS:
            return True
        if "clear" in available:
            return True
        needs = _MECHANISM_NEEDS.get(name)
        if needs is None:
            return False
        return bool(needs & available)
