"""HTTP Basic and Digest: RFC vectors, Elytron's challenge shape, and the attack cases."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gridactor.security import credentials as c
from gridactor.security.credentials import ClearPassword
from gridactor.security.http_auth.base import (
    HttpAuthOutcome,
    HttpAuthSettings,
    HttpFailure,
    HttpSuccess,
    NeedCredentials,
    NeedPasswordCheck,
    auth_scheme,
)
from gridactor.security.http_auth.basic import BasicMechanism
from gridactor.security.http_auth.digest import (
    OPAQUE,
    DigestMechanism,
    DigestSha256Mechanism,
    DigestSha512_256Mechanism,
    NonceManager,
    NonceStatus,
    digest_request_algorithm,
    digest_response,
    failure_is_stale,
    parse_auth_params,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "http_auth"
RFC7616: dict[str, Any] = json.loads((DATA / "rfc7616.json").read_text("utf-8"))
RFC7617: dict[str, Any] = json.loads((DATA / "rfc7617.json").read_text("utf-8"))


# ---------------------------------------------------------------- Basic


@pytest.mark.parametrize("vector", RFC7617["vectors"], ids=lambda v: v["realm"])
def test_basic_rfc7617(vector: dict[str, Any]) -> None:
    mech = BasicMechanism(HttpAuthSettings(vector["realm"], basic_charset=vector["charset"]))
    assert mech.challenge() == [vector["challenge"]]
    outcome = mech.authenticate("GET", "/", vector["authorization"])
    assert outcome == NeedPasswordCheck(vector["username"], vector["password"])
    assert mech.supply_password_check(True) == HttpSuccess(vector["username"], (), "BASIC")


def test_basic_default_challenge_like_elytron() -> None:
    assert BasicMechanism(HttpAuthSettings()).challenge() == ['Basic realm="default"']


def test_basic_wrong_password_401_with_challenge() -> None:
    mech = BasicMechanism(HttpAuthSettings())
    assert isinstance(mech.authenticate("GET", "/", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), NeedPasswordCheck)
    outcome = mech.supply_password_check(False)
    assert outcome == HttpFailure(
        401, "wrong username or password", (("WWW-Authenticate", 'Basic realm="default"'),)
    )


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic",
        "Basic ",
        "Basic !!!notbase64",
        "Basic " + b64("nocolon"),
        "Basic " + b64(":emptyuser"),
        "Basic " + b64("user:"),
        "Basic " + b64(b"us\xffer:pw"),
        "Basic " + b64("us\x00er:pw"),
        "Basic " + b64("user:p\x07w"),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ",  # bad padding
        "Basic " + "A" * 10000,
        'Digest username="a"',
        "Bearer abc",
    ],
)
def test_basic_malformed_is_401_with_challenge(header: str | None) -> None:
    outcome = BasicMechanism(HttpAuthSettings()).authenticate("GET", "/", header)
    assert isinstance(outcome, HttpFailure)
    assert outcome.status == 401
    assert outcome.headers == (("WWW-Authenticate", 'Basic realm="default"'),)


@pytest.mark.parametrize(
    "header", ["basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "BASIC   QWxhZGRpbjpvcGVuIHNlc2FtZQ==  "]
)
def test_basic_scheme_case_and_spaces(header: str) -> None:
    outcome = BasicMechanism(HttpAuthSettings()).authenticate("GET", "/", header)
    assert outcome == NeedPasswordCheck("Aladdin", "open sesame")


def test_basic_bytes_header_utf8_and_password_with_colon() -> None:
    header = ("Basic " + b64("jös:pa:ss")).encode()
    assert BasicMechanism(HttpAuthSettings()).authenticate("GET", "/", header) == NeedPasswordCheck(
        "jös", "pa:ss"
    )


def test_basic_outcome_repr_hides_password() -> None:
    outcome = BasicMechanism(HttpAuthSettings()).authenticate(
        "GET", "/", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    )
    assert "open sesame" not in repr(outcome)


def test_auth_scheme() -> None:
    assert auth_scheme("digest username=x") == "DIGEST"
    assert auth_scheme(b"Basic abc") == "BASIC"
    assert auth_scheme(None) is None
    assert auth_scheme("  ") is None


# ---------------------------------------------------------------- Digest vectors


@pytest.mark.parametrize("vector", RFC7616["vectors"], ids=lambda v: v["algorithm"])
def test_rfc7616_response_vectors(vector: dict[str, Any]) -> None:
    k = RFC7616["common"]
    ha1 = c.digest_hash(
        "digest-md5" if vector["algorithm"] == "MD5" else "digest-sha-256",
        k["username"],
        k["realm"],
        k["password"],
    ).hex()
    assert ha1 == vector["ha1"]
    h = vector["hash_name"]
    assert hashlib.new(h, f"{k['method']}:{k['uri']}".encode()).hexdigest() == vector["ha2"]
    got = digest_response(h, ha1, k["nonce"], k["nc"], k["cnonce"], k["qop"], k["method"], k["uri"])
    assert got == vector["response"]


def test_rfc2617_and_sha512_256_vectors() -> None:
    v = RFC7616["rfc2617"]
    ha1 = hashlib.md5(f"{v['username']}:{v['realm']}:{v['password']}".encode()).hexdigest()
    assert ha1 == v["ha1"]
    assert (
        digest_response("md5", ha1, v["nonce"], v["nc"], v["cnonce"], v["qop"], v["method"], v["uri"])
        == v["response"]
    )
    v = RFC7616["sha512_256"]
    ha1 = hashlib.new("sha512_256", f"{v['username']}:{v['realm']}:{v['password']}".encode()).hexdigest()
    got = digest_response(
        "sha512_256", ha1, v["nonce"], v["nc"], v["cnonce"], v["qop"], v["method"], v["uri"]
    )
    assert got == v["response"]
    assert got != v["printed_response_known_wrong"]


MECHS = {"MD5": DigestMechanism, "SHA-256": DigestSha256Mechanism}


@pytest.mark.parametrize("vector", RFC7616["vectors"], ids=lambda v: v["algorithm"])
def test_rfc7616_header_proof_verifies_but_foreign_nonce_is_stale(vector: dict[str, Any]) -> None:
    k = RFC7616["common"]
    mech = MECHS[vector["algorithm"]](HttpAuthSettings(k["realm"]), NonceManager(), opaque=k["opaque"])
    outcome = mech.authenticate(k["method"], k["uri"], vector["authorization"])
    assert outcome == NeedCredentials("Mufasa", (ClearPassword, c.DigestHash))
    result = mech.supply_credentials([ClearPassword(k["password"])])
    # The proof is right (stale, not a plain failure); the nonce is not one we issued.
    assert isinstance(result, HttpFailure)
    assert result.status == 401
    assert failure_is_stale(result)
    assert result.reason == "nonce invalid"


# ---------------------------------------------------------------- Digest flow against our nonces


CHALLENGE = re.compile(
    r'^Digest realm="(?P<realm>[^"]*)", nonce="(?P<nonce>[A-Za-z0-9+/=]{44})", '
    r'opaque="00000000000000000000000000000000", (?P<stale>stale=true, )?'
    r"algorithm=(?P<alg>[A-Z0-9-]+), qop=auth$"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def nonces(clock: Clock) -> NonceManager:
    return NonceManager(clock=clock)


def new_nonce(mech: DigestMechanism) -> str:
    match = CHALLENGE.match(mech.challenge()[0])
    assert match is not None
    return match["nonce"]


def authorization(
    mech: DigestMechanism,
    nonce: str,
    *,
    username: str = "admin",
    password: str = "password",
    realm: str = "default",
    method: str = "GET",
    uri: str = "/rest/v2/caches",
    nc: str | None = "00000001",
    cnonce: str | None = "abc",
    qop: str | None = "auth",
    algorithm: str | None = "",
    opaque: str | None = OPAQUE,
    extra: str = "",
) -> str:
    ha1 = hashlib.new(mech.hash_name, f"{username}:{realm}:{password}".encode()).hexdigest()
    response = digest_response(mech.hash_name, ha1, nonce, nc, cnonce, qop, method, uri)
    quoted_user = username.replace("\\", "\\\\").replace('"', '\\"')
    parts = [f'username="{quoted_user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if algorithm is not None:
        parts.append(f"algorithm={algorithm or mech.algorithm}")
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc}", f'cnonce="{cnonce}"']
    if opaque is not None:
        parts.append(f'opaque="{opaque}"')
    parts.append(f'response="{response}"')
    return "Digest " + ", ".join(parts) + extra


def attempt(
    mech_cls: type[DigestMechanism],
    nonces: NonceManager,
    header: str,
    creds: Sequence[c.Credential] | None,
    *,
    method: str = "GET",
    uri: str = "/rest/v2/caches",
) -> HttpAuthOutcome:
    mech = mech_cls(HttpAuthSettings(), nonces)
    outcome = mech.authenticate(method, uri, header)
    if isinstance(outcome, NeedCredentials):
        return mech.supply_credentials(creds)
    return outcome


CLEAR: Sequence[c.Credential] = (ClearPassword("password"),)


@pytest.mark.parametrize(("mech_cls", "alg"), [(DigestMechanism, "MD5"), (DigestSha256Mechanism, "SHA-256")])
def test_challenge_exactly_like_elytron(
    nonces: NonceManager, mech_cls: type[DigestMechanism], alg: str
) -> None:
    [value] = mech_cls(HttpAuthSettings(), nonces).challenge()
    match = CHALLENGE.match(value)
    assert match is not None
    assert (match["realm"], match["alg"], match["stale"]) == ("default", alg, None)


def test_challenge_sha512_256() -> None:
    assert (
        "algorithm=SHA-512-256, qop=auth"
        in DigestSha512_256Mechanism(HttpAuthSettings(), NonceManager()).challenge()[0]
    )


@pytest.mark.parametrize("mech_cls", [DigestMechanism, DigestSha256Mechanism, DigestSha512_256Mechanism])
def test_success_with_clear_password(nonces: NonceManager, mech_cls: type[DigestMechanism]) -> None:
    mech = mech_cls(HttpAuthSettings(), nonces)
    outcome = attempt(mech_cls, nonces, authorization(mech, new_nonce(mech)), CLEAR)
    assert outcome == HttpSuccess("admin", (), mech_cls.name)


@pytest.mark.parametrize(
    ("mech_cls", "cred_alg"),
    [(DigestMechanism, "digest-md5"), (DigestSha256Mechanism, "digest-sha-256"),
     (DigestSha512_256Mechanism, "digest-sha-512-256")],
)  # fmt: skip
def test_success_with_matching_digest_hash(
    nonces: NonceManager, mech_cls: type[DigestMechanism], cred_alg: str
) -> None:
    mech = mech_cls(HttpAuthSettings(), nonces)
    cred = c.make_digest(cred_alg, "admin", "default", "password")
    assert isinstance(attempt(mech_cls, nonces, authorization(mech, new_nonce(mech)), [cred]), HttpSuccess)


def test_digest_hash_of_other_algorithm_or_realm_is_unusable(nonces: NonceManager) -> None:
    mech = DigestSha256Mechanism(HttpAuthSettings(), nonces)
    for cred in (
        c.make_digest("digest-md5", "admin", "default", "password"),
        c.make_digest("digest-sha-256", "admin", "otherrealm", "password"),
        c.make_scram("scram-sha-256", "password", b"salt"),
    ):
        outcome = attempt(DigestSha256Mechanism, nonces, authorization(mech, new_nonce(mech)), [cred])
        assert isinstance(outcome, HttpFailure)
        assert (outcome.status, outcome.reason) == (401, "no usable credential for the user")


def test_wrong_password_and_unknown_user_look_the_same(nonces: NonceManager) -> None:
    mech = DigestSha256Mechanism(HttpAuthSettings(), nonces)
    wrong = attempt(
        DigestSha256Mechanism, nonces, authorization(mech, new_nonce(mech), password="nope"), CLEAR
    )
    unknown = attempt(DigestSha256Mechanism, nonces, authorization(mech, new_nonce(mech)), None)
    for outcome in (wrong, unknown):
        assert isinstance(outcome, HttpFailure)
        assert outcome.status == 401
        assert not failure_is_stale(outcome)
        assert CHALLENGE.match(outcome.headers[0][1])


def test_uri_mismatch_is_400_cve_2021_31917(nonces: NonceManager) -> None:
    mech = DigestSha256Mechanism(HttpAuthSettings(), nonces)
    header = authorization(mech, new_nonce(mech), uri="/backdoor")
    outcome = mech.authenticate("GET", "/rest/v2/caches", header)
    assert isinstance(outcome, HttpFailure)
    assert outcome.status == 400
    assert not isinstance(outcome, HttpSuccess)


@pytest.mark.parametrize(
    ("digest_uri", "target", "ok"),
    [
        ("/rest/v2/caches?action=x", "/rest/v2/caches?action=x", True),
        ("http://host:11222/rest/v2/caches?action=x", "/rest/v2/caches?action=x", True),
        ("/rest/v2/caches", "/rest/v2/caches?action=x", False),
        ("/rest/v2/caches?action=y", "/rest/v2/caches?action=x", False),
        ("/rest/v2/Caches", "/rest/v2/caches", False),
    ],
)
def test_uri_forms(nonces: NonceManager, digest_uri: str, target: str, ok: bool) -> None:
    mech = DigestMechanism(HttpAuthSettings(), nonces)
    outcome = attempt(
        DigestMechanism, nonces, authorization(mech, new_nonce(mech), uri=digest_uri), CLEAR, uri=target
    )
    if ok:
        assert isinstance(outcome, HttpSuccess)
    else:
        assert isinstance(outcome, HttpFailure)
        assert outcome.status == 400


def test_replay_same_nc_is_stale(nonces: NonceManager) -> None:
    mech = DigestMechanism(HttpAuthSettings(), nonces)
    header = authorization(mech, new_nonce(mech))
    assert isinstance(attempt(DigestMechanism, nonces, header, CLEAR), HttpSuccess)
    replay = attempt(DigestMechanism, nonces, header, CLEAR)
    assert isinstance(replay, HttpFailure)
    assert replay.status == 401
    assert failure_is_stale(replay)
    match = CHALLENGE.match(replay.headers[0][1])
    assert match is not None
    assert match["stale"] == "stale=true, "


def test_increasing_nc_reuses_nonce_and_window(nonces: NonceManager) -> None:
    mech = DigestMechanism(HttpAuthSettings(), nonces)
    nonce = new_nonce(mech)
    for nc in ("00000001", "00000003", "00000002"):  # out of order within the window is fine
        assert isinstance(
            attempt(DigestMechanism, nonces, authorization(mech, nonce, nc=nc), CLEAR), HttpSuccess
        )
    for nc in ("00000002", "00000003", "00000001"):
        assert failure_is_stale(attempt(DigestMechanism, nonces, authorization(mech, nonce, nc=nc), CLEAR))
    assert isinstance(
        attempt(DigestMechanism, nonces, authorization(mech, nonce, nc="00000100"), CLEAR), HttpSuccess
    )
    assert failure_is_stale(
        attempt(DigestMechanism, nonces, authorization(mech, nonce, nc="00000004"), CLEAR)
    )


def test_expired_nonce_with_right_proof_is_stale(nonces: NonceManager, clock: Clock) -> None:
    mech = DigestMechanism(HttpAuthSettings(), nonces)
    header = authorization(mech, new_nonce(mech))
    clock.now += 301
    outcome = attempt(DigestMechanism, nonces, header, CLEAR)
    assert failure_is_stale(outcome)
    assert isinstance(outcome, HttpFailure)
    assert outcome.reason == "nonce expired"
    # ...but an expired nonce with a wrong proof is a plain failure.
    wrong = attempt(
        DigestMechanism, nonces, authorization(mech, header.split('nonce="')[1][:44], password="x"), CLEAR
    )
    assert not failure_is_stale(wrong)


def test_nonce_session_lasts_15_minutes(nonces: NonceManager, clock: Clock) -> None:
    mech = DigestMechanism(HttpAuthSettings(), nonces)
    nonce = new_nonce(mech)
    assert isinstance(attempt(DigestMechanism, nonces, authorization(mech, nonce), CLEAR), HttpSuccess)
    clock.now += 600
    assert isinstance(
        attempt(DigestMechanism, nonces, authorization(mech, nonce, nc="00000002"), CLEAR), HttpSuccess
    )
    clock.now += 301
    assert failure_is_stale(
        attempt(DigestMechanism, nonces, authorization(mech, nonce, nc="00000003"), CLEAR)
    )


def test_nonce_from_other_server_or_realm_is_stale(nonces: NonceManager) -> None:
    other = NonceManager()
    mech = DigestMechanism(HttpAuthSettings(), nonces)
    foreign = other.new_nonce("default")
    assert failure_is_stale(attempt(DigestMechanism, nonces, authorization(mech, foreign), CLEAR))
    assert nonces.use(nonces.new_nonce("other-realm"), 1, "default") is NonceStatus.INVALID
    assert nonces.use("not base64!", 1, "default") is NonceStatus.INVALID


def test_nonce_table_is_bounded_and_evictions_are_not_replayable(clock: Clock) -> None:
    nonces = NonceManager(max_tracked=4, clock=clock)
    issued = []
    for _ in range(6):
        issued.append(nonces.new_nonce("r"))
        clock.now += 1
    for nonce in issued:
        assert nonces.use(nonce, 1, "r") is NonceStatus.OK
    assert len(nonces._used) == 4
    assert nonces.use(issued[0], 2, "r") is NonceStatus.EXPIRED  # evicted: refused, never fresh
    assert nonces.use(issued[0], 1, "r") is NonceStatus.EXPIRED
    assert nonces.use(issued[5], 1, "r") is NonceStatus.REPLAYED


def test_no_qop_rfc2069_single_use_and_nextnonce(nonces: NonceManager) -> None:
    mech = DigestMechanism(HttpAuthSettings(), nonces)
    header = authorization(mech, new_nonce(mech), qop=None, nc=None, cnonce=None)
    outcome = attempt(DigestMechanism, nonces, header, CLEAR)
    assert isinstance(outcome, HttpSuccess)
    [(name, value)] = outcome.response_headers
    assert name == "Authentication-Info"
    assert re.fullmatch(r'nextnonce="[A-Za-z0-9+/=]{44}"', value)
    assert failure_is_stale(attempt(DigestMechanism, nonces, header, CLEAR))


def test_missing_algorithm_means_md5(nonces: NonceManager) -> None:
    md5 = DigestMechanism(HttpAuthSettings(), nonces)
    header = authorization(md5, new_nonce(md5), algorithm=None)
    assert isinstance(attempt(DigestMechanism, nonces, header, CLEAR), HttpSuccess)
    sha = DigestSha256Mechanism(HttpAuthSettings(), nonces)
    header = authorization(sha, new_nonce(sha), algorithm=None)
    outcome = attempt(DigestSha256Mechanism, nonces, header, CLEAR)
    assert isinstance(outcome, HttpFailure)
    assert (outcome.status, outcome.reason) == (401, "algorithm is not the one offered")


@pytest.mark.parametrize(
    ("kwargs", "status", "reason"),
    [
        ({"realm": "other"}, 401, "realm is not the one offered"),
        ({"algorithm": "SHA-256"}, 401, "algorithm is not the one offered"),
        ({"algorithm": "MD5-sess"}, 401, "algorithm is not the one offered"),
        ({"opaque": "ffff"}, 401, "opaque is not the one offered"),
        ({"qop": "auth-int"}, 401, "qop is not the one offered"),
        ({"nc": "1"}, 400, "nc must be 8 hex digits, not zero"),
        ({"nc": "0000000g"}, 400, "nc must be 8 hex digits, not zero"),
        ({"nc": "00000000"}, 400, "nc must be 8 hex digits, not zero"),
        ({"cnonce": ""}, 400, "empty cnonce"),
        ({"extra": ", userhash=true"}, 401, "userhash is not supported"),
        ({"extra": ", charset=latin1"}, 400, "unsupported charset"),
        ({"extra": ', nonce="x"'}, 400, "duplicate directive 'nonce'"),
        ({"extra": ', RESPONSE="x"'}, 400, "duplicate directive 'response'"),
        ({"extra": ", broken"}, 400, "directive 'broken' without '='"),
        ({"extra": ', x="unterminated'}, 400, "unterminated quoted value of 'x'"),
    ],
)
def test_digest_bad_directives(
    nonces: NonceManager, kwargs: dict[str, Any], status: int, reason: str
) -> None:
    mech = DigestMechanism(HttpAuthSettings(), nonces)
    outcome = mech.authenticate("GET", "/rest/v2/caches", authorization(mech, new_nonce(mech), **kwargs))
    assert isinstance(outcome, HttpFailure)
    assert (outcome.status, outcome.reason) == (status, reason)
    assert outcome.headers[0][0] == "WWW-Authenticate"


@pytest.mark.parametrize(
    "header",
    [
        'Digest realm="default", nonce="n", uri="/", response="00000000000000000000000000000000"',
        'Digest username="a", nonce="n", uri="/", response="00000000000000000000000000000000"',
        'Digest username="a", realm="default", uri="/", response="00000000000000000000000000000000"',
        'Digest username="a", realm="default", nonce="n", response="00000000000000000000000000000000"',
        'Digest username="a", realm="default", nonce="n", uri="/"',
        'Digest username="a", realm="default", nonce="n", uri="/", response="xyz"',
        'Digest username="a", realm="default", nonce="n", uri="/", response=0123',
        'Digest username="a", username*=UTF-8\'\'b, realm="default", nonce="n", uri="/", response="0"',
        'Digest username="", realm="default", nonce="n", uri="/", response="' + "0" * 32 + '"',
        "Digest " + "x" * 9000,
        'Digest ==="',
    ],
)
def test_digest_malformed_is_400_never_500(nonces: NonceManager, header: str) -> None:
    outcome = DigestMechanism(HttpAuthSettings(), nonces).authenticate("GET", "/", header)
    assert isinstance(outcome, HttpFailure)
    assert outcome.status == 400


@pytest.mark.parametrize("header", [None, "", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="])
def test_digest_no_digest_header_is_401_challenge(nonces: NonceManager, header: str | None) -> None:
    outcome = DigestMechanism(HttpAuthSettings(), nonces).authenticate("GET", "/", header)
    assert isinstance(outcome, HttpFailure)
    assert outcome.status == 401
    assert CHALLENGE.match(outcome.headers[0][1])


@pytest.mark.parametrize("username", ['we"ird', "back\\slash", 'both\\"x', "Jäsøn Doe"])
def test_username_with_quotes_and_backslashes(nonces: NonceManager, username: str) -> None:
    mech = DigestSha256Mechanism(HttpAuthSettings(), nonces)
    header = authorization(mech, new_nonce(mech), username=username)
    outcome = mech.authenticate("GET", "/rest/v2/caches", header)
    assert outcome == NeedCredentials(username, (ClearPassword, c.DigestHash))
    assert mech.supply_credentials(CLEAR) == HttpSuccess(username, (), "DIGEST-SHA-256")


def test_username_star_extended_notation(nonces: NonceManager) -> None:
    mech = DigestSha256Mechanism(HttpAuthSettings(), nonces)
    header = authorization(mech, new_nonce(mech), username="Jäsøn Doe")
    header = header.replace('username="Jäsøn Doe"', "username*=UTF-8''J%C3%A4s%C3%B8n%20Doe")
    assert mech.authenticate("GET", "/rest/v2/caches", header.encode()) == NeedCredentials(
        "Jäsøn Doe", (ClearPassword, c.DigestHash)
    )
    assert isinstance(mech.supply_credentials(CLEAR), HttpSuccess)


def test_unquoted_values_and_empty_elements_accepted() -> None:
    params = parse_auth_params(' username=admin ,, realm = "r" , nonce=abc/def==,response=0a ')
    assert params == {"username": "admin", "realm": "r", "nonce": "abc/def==", "response": "0a"}


def test_digest_request_algorithm_routing() -> None:
    assert digest_request_algorithm('Digest username="a", algorithm=sha-256') == "SHA-256"
    assert digest_request_algorithm('Digest username="a"') == "MD5"
    assert digest_request_algorithm("Basic abc") is None
    assert digest_request_algorithm('Digest x="') is None


def test_uppercase_hex_response_accepted(nonces: NonceManager) -> None:
    mech = DigestMechanism(HttpAuthSettings(), nonces)
    header = authorization(mech, new_nonce(mech))
    upper = re.sub(r'response="([0-9a-f]+)"', lambda m: f'response="{m.group(1).upper()}"', header)
    assert isinstance(attempt(DigestMechanism, nonces, upper, CLEAR), HttpSuccess)


def test_method_is_bound(nonces: NonceManager) -> None:
    mech = DigestMechanism(HttpAuthSettings(), nonces)
    header = authorization(mech, new_nonce(mech), method="GET")
    outcome = attempt(DigestMechanism, nonces, header, CLEAR, method="DELETE")
    assert isinstance(outcome, HttpFailure)
    assert outcome.status == 401


def test_continuation_without_request_fails_closed(nonces: NonceManager) -> None:
    assert isinstance(DigestMechanism(HttpAuthSettings(), nonces).supply_credentials(CLEAR), HttpFailure)
    assert isinstance(BasicMechanism(HttpAuthSettings()).supply_password_check(True), HttpFailure)


def test_realm_with_quote_is_escaped_in_challenges(nonces: NonceManager) -> None:
    assert BasicMechanism(HttpAuthSettings('a"b\\c')).challenge() == ['Basic realm="a\\"b\\\\c"']
    assert (
        DigestMechanism(HttpAuthSettings('a"b'), nonces).challenge()[0].startswith('Digest realm="a\\"b", ')
    )
