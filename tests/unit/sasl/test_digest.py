from __future__ import annotations

import base64

import pytest

from gridactor.client.sasl import DigestClient
from gridactor.security.credentials import ClearPassword, DigestHash, make_digest
from gridactor.security.sasl.base import (
    Challenge,
    NeedCredentials,
    SaslError,
    SaslSettings,
    Success,
)
from gridactor.security.sasl.digest import (
    CIPHERS,
    DIGEST_MECHANISMS,
    DigestMechanism,
    DigestParseError,
    DigestSecurityLayer,
    parse_directives,
    session_key,
    user_realm_password_hash,
)
from tests.unit.sasl.helpers import assert_failure, fixed, load, run

VECTORS = load("digest.json")
PASSWORD = VECTORS["password"]
IMAP, ACAP = VECTORS["exchanges"]
IMAP_REALM = "elwood.innosoft.com"
IMAP_NONCE = "OA6MG9tEQGm2hh"
IMAP_CNONCE = "OA6MHXh6VqTrRk"
IMAP_URI = "imap/elwood.innosoft.com"
IMAP_HA1 = bytes.fromhex(IMAP["ha1_hex"])


def _imap_settings(**kw: object) -> SaslSettings:
    return SaslSettings(realm=IMAP_REALM, server_name=IMAP_REALM, protocol="imap", **kw)  # type: ignore[arg-type]


def _start(
    mech_name: str = "DIGEST-MD5", settings: SaslSettings | None = None, nonce: str | None = IMAP_NONCE
) -> tuple[DigestMechanism, bytes]:
    factory = None if nonce is None else fixed(nonce)
    mech = DIGEST_MECHANISMS[mech_name](settings or _imap_settings(), nonce_factory=factory)
    outcome = mech.step(b"")
    assert isinstance(outcome, Challenge)
    return mech, outcome.data


def _imap_response(
    qop: str = "auth", response: str = "d388dad90d4bbd760a152321f2143af7", **extra: str
) -> bytes:
    fields = {
        "charset": "utf-8",
        "username": '"chris"',
        "realm": f'"{IMAP_REALM}"',
        "nonce": f'"{IMAP_NONCE}"',
        "nc": "00000001",
        "cnonce": f'"{IMAP_CNONCE}"',
        "digest-uri": f'"{IMAP_URI}"',
        "response": response,
        "qop": qop,
    }
    fields.update(extra)
    return ",".join(f"{k}={v}" for k, v in fields.items() if v is not None).encode()


CHRIS = {"chris": [ClearPassword(PASSWORD)]}


# -- published vectors ----------------------------------------------------------------------


def test_rfc2831_imap_exchange() -> None:
    mech, challenge = _start()
    assert parse_directives(challenge.decode()) == parse_directives(
        base64.b64decode(IMAP["challenge_b64"]).decode()
    )
    outcome = mech.step(base64.b64decode(IMAP["response_b64"]))
    assert outcome == NeedCredentials("chris", (DigestHash, ClearPassword))
    success = mech.supply_credentials(CHRIS["chris"])
    assert success == Success("chris", base64.b64decode(IMAP["rspauth_b64"]))
    assert mech.negotiated_qop == "auth"
    assert mech.wrap(b"x") == b"x"


def test_rfc2831_imap_with_stored_digest_hash() -> None:
    stored = make_digest("digest-md5", "chris", IMAP_REALM, PASSWORD)
    assert stored.digest.hex() == IMAP["urp_hash_hex"]
    mech, _ = _start()
    assert run(mech, base64.b64decode(IMAP["response_b64"]), {"chris": [stored]}) == Success(
        "chris", base64.b64decode(IMAP["rspauth_b64"])
    )


def test_a1_uses_the_raw_inner_hash() -> None:
    urp = user_realm_password_hash("md5", b"chris", IMAP_REALM.encode(), PASSWORD.encode())
    ha1 = session_key("md5", urp, IMAP_NONCE.encode(), IMAP_CNONCE.encode(), None)
    assert ha1.hex() == IMAP["ha1_hex"]
    # The classic bug (hex instead of raw bytes inside A1) must not verify.
    mech, _ = _start()
    assert_failure(run(mech, _imap_response(response="26ef1190b643a36e879673066098379c"), CHRIS))


def test_rfc2831_acap_exchange() -> None:
    settings = SaslSettings(realm=IMAP_REALM, server_name=IMAP_REALM, protocol="acap")
    mech, _ = _start(settings=settings, nonce=ACAP["nonce"])
    assert run(mech, ACAP["response"].encode(), CHRIS) == Success("chris", ACAP["rspauth"].encode())


@pytest.mark.parametrize(
    "row", VECTORS["imap_variants"]["rows"], ids=lambda r: f"{r['mechanism']}-{r['qop']}"
)
def test_imap_inputs_with_other_hashes_and_qops(row: dict[str, str]) -> None:
    settings = _imap_settings(qop=("auth", "auth-int", "auth-conf"))
    mech, _ = _start(row["mechanism"], settings)
    extra = {"cipher": "rc4"} if row["qop"] == "auth-conf" else {}
    outcome = run(mech, _imap_response(qop=row["qop"], response=row["response"], **extra), CHRIS)
    assert outcome == Success("chris", f"rspauth={row['rspauth']}".encode())
    assert mech.negotiated_qop == row["qop"]


# -- Node client shape ----------------------------------------------------------------------


def _node_response(nonce: str, password: str = "secret", **override: str) -> bytes:
    # Computed independently from hotrod-protocol.md §6 (the Node client's formulas).
    import hashlib

    user, realm, cnonce, uri = "bob", "default", "0123456789abcdefABCDEF0123456789", "hotrod/infinispan"
    fields = {"username": user, "realm": realm, "nonce": nonce, "cnonce": cnonce, "uri": uri}
    fields.update(override)
    inner = hashlib.md5(f"{fields['username']}:{fields['realm']}:{password}".encode()).digest()
    ha1 = hashlib.md5(inner + f":{fields['nonce']}:{fields['cnonce']}".encode()).hexdigest()
    ha2 = hashlib.md5(f"AUTHENTICATE:{fields['uri']}".encode()).hexdigest()
    response = hashlib.md5(
        f"{ha1}:{fields['nonce']}:00000001:{fields['cnonce']}:auth:{ha2}".encode()
    ).hexdigest()
    return (
        f'username="{fields["username"]}",realm="{fields["realm"]}",nonce="{fields["nonce"]}",'
        f'cnonce="{fields["cnonce"]}",nc=00000001,qop=auth,digest-uri="{fields["uri"]}",'
        f"response={response},charset=utf-8"
    ).encode()


def _node_rspauth(nonce: str) -> bytes:
    import hashlib

    inner = hashlib.md5(b"bob:default:secret").digest()
    ha1 = hashlib.md5(inner + f":{nonce}:0123456789abcdefABCDEF0123456789".encode()).hexdigest()
    ha2 = hashlib.md5(b":hotrod/infinispan").hexdigest()
    value = hashlib.md5(f"{ha1}:{nonce}:00000001:0123456789abcdefABCDEF0123456789:auth:{ha2}".encode())
    return b"rspauth=" + value.hexdigest().encode()


NODE_USERS = {"bob": [make_digest("digest-md5", "bob", "default", "secret")]}


@pytest.mark.parametrize("server_name", [None, "infinispan", "INFINISPAN"])
def test_node_client_exchange(server_name: str | None) -> None:
    settings = SaslSettings(realm="default", server_name=server_name)
    mech = DigestMechanism(settings, nonce_factory=fixed("NODENONCE1"))
    challenge = mech.step(b"")
    assert challenge == Challenge(
        b'realm="default",nonce="NODENONCE1",qop="auth",charset=utf-8,algorithm=md5-sess'
    )
    assert run(mech, _node_response("NODENONCE1"), NODE_USERS) == Success("bob", _node_rspauth("NODENONCE1"))


def test_node_client_against_other_server_name_fails() -> None:
    mech = DigestMechanism(
        SaslSettings(realm="default", server_name="grid.example"), nonce_factory=fixed("N")
    )
    mech.step(b"")
    assert_failure(mech.step(_node_response("N")))


def test_challenge_lists_qops_maxbuf_and_ciphers() -> None:
    settings = SaslSettings(
        realm="default",
        qop=("auth-conf", "auth-int", "auth"),
        extra={"javax.security.sasl.maxbuffer": "4096", "wildfly.security.sasl.digest.ciphers": "rc4,3des"},
    )
    mech = DigestMechanism(settings, nonce_factory=fixed("N"))
    assert mech.step(b"") == Challenge(
        b'realm="default",nonce="N",qop="auth-conf,auth-int,auth",maxbuf=4096,charset=utf-8,'
        b'cipher="3des,rc4",algorithm=md5-sess'
    )


def test_default_nonces_are_unique_and_quotable() -> None:
    nonces = set()
    for _ in range(20):
        _, challenge = _start(settings=SaslSettings(realm="default"), nonce=None)
        nonces.add(parse_directives(challenge.decode())["nonce"])
    assert len(nonces) == 20


# -- attacks ----------------------------------------------------------------------------------


def _attack(response: bytes, settings: SaslSettings | None = None) -> None:
    mech, _ = _start(settings=settings)
    assert_failure(run(mech, response, CHRIS))


IMAP_GOOD = _imap_response()


@pytest.mark.parametrize(
    "directive",
    ["nonce", "cnonce", "nc", "username", "realm", "qop", "digest-uri", "response", "charset"],
)
def test_duplicate_directives_fail(directive: str) -> None:
    fields = parse_directives(IMAP_GOOD.decode())
    value = fields[directive]
    quoted = directive in ("nonce", "cnonce", "username", "realm", "digest-uri")
    _attack(IMAP_GOOD + f",{directive}={chr(34) + value + chr(34) if quoted else value}".encode())


@pytest.mark.parametrize(
    "response",
    [
        _imap_response(nc="00000002"),
        _imap_response(nc="NAN"),
        _imap_response(nc="1"),
        _imap_response(nonce='"OTHERNONCE"'),
        _imap_response(charset="latin1"),
        _imap_response(charset="UTF-8"),
        _imap_response(realm='"other.realm"'),
        _imap_response(realm=None),  # type: ignore[arg-type]
        _imap_response(**{"digest-uri": '"acap/elwood.innosoft.com"'}),
        _imap_response(**{"digest-uri": '"imap/other.host"'}),
        _imap_response(**{"digest-uri": '"hotrod/infinispan"'}),
        _imap_response(**{"digest-uri": '"imap"'}),
        _imap_response(**{"digest-uri": None}),  # type: ignore[arg-type]
        _imap_response(cnonce=None),  # type: ignore[arg-type]
        _imap_response(cnonce='""'),
        _imap_response(username=None),  # type: ignore[arg-type]
        _imap_response(username='""'),
        _imap_response(response=None),  # type: ignore[arg-type]
        _imap_response(response="D388DAD90D4BBD760A152321F2143AF7"),
        _imap_response(response="d388dad90d4bbd760a152321f2143af"),
        _imap_response(qop="auth-int"),  # not offered
        _imap_response(qop="auth-conf", cipher="rc4"),  # not offered
        _imap_response(qop="bogus"),
        _imap_response(cipher="rc4"),  # cipher without auth-conf
        _imap_response(maxbuf="0"),
        _imap_response(maxbuf="16"),
        _imap_response(maxbuf="16777216"),
        _imap_response(maxbuf="-1"),
        _imap_response(authzid='"admin"'),
        _imap_response(authzid='""'),
        _imap_response(username='"chris'),  # unterminated
        _imap_response(username='"ch\\'),  # dangling escape
        _imap_response(username='"ch\x01ris"'),  # control character
        IMAP_GOOD + b",",
        b"," + IMAP_GOOD,
        IMAP_GOOD.replace(b",", b",,", 1),
        IMAP_GOOD.replace(b"=", b"", 1),
        b"garbage",
        b"",
        b"x" * 5000,
    ],
)
def test_bad_digest_responses_fail(response: bytes) -> None:
    _attack(response)


def test_wrong_password_fails() -> None:
    mech, _ = _start()
    assert_failure(run(mech, IMAP_GOOD, {"chris": [ClearPassword("wrong")]}))


def test_unknown_user_fails() -> None:
    mech, _ = _start()
    assert_failure(run(mech, IMAP_GOOD, {}))


def test_digest_hash_of_other_algorithm_or_realm_is_not_used() -> None:
    for stored in (
        make_digest("digest-sha-256", "chris", IMAP_REALM, PASSWORD),
        make_digest("digest-md5", "chris", "other", PASSWORD),
    ):
        mech, _ = _start()
        assert_failure(run(mech, IMAP_GOOD, {"chris": [stored]}))


def test_replayed_response_on_a_new_exchange_fails() -> None:
    mech, _ = _start()
    assert isinstance(run(mech, IMAP_GOOD, CHRIS), Success)
    fresh, _ = _start(nonce="ANOTHERNONCE")
    assert_failure(run(fresh, IMAP_GOOD, CHRIS))


def test_authzid_equal_to_username_is_accepted() -> None:
    # The ACAP example's H(A1) with authzid=chris is Elytron-asserted (security-vectors 1.3).
    urp = user_realm_password_hash("md5", b"chris", IMAP_REALM.encode(), b"secret")
    ha1 = session_key("md5", urp, b"OA9BSXrbuRhWay", b"OA9BSuZWMSpW8m", b"chris")
    assert ha1.hex() == "7f94ea5b1eb1b0573cca321e2b517b63"
    client = DigestClient(
        "DIGEST-MD5", "chris", PASSWORD, protocol="imap", server_name=IMAP_REALM, authzid="chris"
    )
    mech, challenge = _start()
    outcome = run(mech, client.respond(challenge), CHRIS)
    assert isinstance(outcome, Success)
    client.complete(outcome.final_data)


def test_initial_response_is_refused_and_steps_after_end_fail() -> None:
    mech = DigestMechanism(_imap_settings())
    assert_failure(mech.step(b"username=x"))
    mech, _ = _start()
    assert isinstance(run(mech, IMAP_GOOD, CHRIS), Success)
    assert_failure(mech.step(IMAP_GOOD))
    assert_failure(mech.supply_credentials(CHRIS["chris"]))


def test_latin1_client_without_charset() -> None:
    # A client that omits charset hashes ISO 8859-1 strings (RFC 2831 §2.1.2.1).
    client_pw = "s\u00e9cret"
    settings = SaslSettings(realm="default")
    mech = DigestMechanism(settings, nonce_factory=fixed("N"))
    mech.step(b"")
    urp = user_realm_password_hash(
        "md5", "j\u00f6rg".encode("latin-1"), b"default", client_pw.encode("latin-1")
    )
    ha1 = session_key("md5", urp, b"N", b"C", None)
    from gridactor.security.sasl.digest import response_digest

    resp = response_digest(
        "md5",
        ha1,
        nonce=b"N",
        nc="00000001",
        cnonce=b"C",
        qop="auth",
        digest_uri=b"hotrod/x",
        for_client=True,
    )
    message = (
        b'username="j\xf6rg",realm="default",nonce="N",cnonce="C",nc=00000001,digest-uri="hotrod/x",response='
        + resp
    )
    outcome = run(mech, message, {"j\u00f6rg": [ClearPassword(client_pw)]})
    assert isinstance(outcome, Success)
    assert outcome.username == "j\u00f6rg"


def test_parse_directives_handles_escapes_and_whitespace() -> None:
    assert parse_directives(' a = "x\\"y" ,\tb=tok ') == {"a": 'x"y', "b": "tok"}
    with pytest.raises(DigestParseError):
        parse_directives('a="1",A="2"')


# -- security layer ---------------------------------------------------------------------------


def test_integrity_keys_and_published_wrap() -> None:
    layer = VECTORS["security_layer"]
    server = DigestSecurityLayer("md5", IMAP_HA1, "auth-int", None, is_server=True)
    client = DigestSecurityLayer("md5", IMAP_HA1, "auth-int", None, is_server=False)
    assert client._send_mac_key.hex() == layer["kic"] == server._recv_mac_key.hex()
    assert server._send_mac_key.hex() == layer["kis"] == client._recv_mac_key.hex()
    wrapped = bytes.fromhex(layer["auth_int_client_wrap_seq0_hex"])
    assert client.wrap(layer["auth_int_client_wrap_seq0_plain"].encode()) == wrapped
    assert server.unwrap(wrapped) == b"a001 NOOP\r\n"


@pytest.mark.parametrize(("n", "cipher"), [("16", "rc4"), ("5", "rc4-40"), ("7", "rc4-56")])
def test_sealing_keys(n: str, cipher: str) -> None:
    import hashlib

    kcc, kcs = VECTORS["security_layer"]["kcc_kcs"][n]
    base = IMAP_HA1[: int(n)]
    assert (
        hashlib.md5(base + b"Digest H(A1) to client-to-server sealing key magic constant").hexdigest() == kcc
    )
    assert (
        hashlib.md5(base + b"Digest H(A1) to server-to-client sealing key magic constant").hexdigest() == kcs
    )
    # and the layer uses them: an RC4 stream keyed with Kcc decrypts the client's output
    from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
    from cryptography.hazmat.primitives.ciphers import Cipher

    client = DigestSecurityLayer("md5", IMAP_HA1, "auth-conf", cipher, is_server=False)
    wrapped = client.wrap(b"hello")
    clear = Cipher(ARC4(bytes.fromhex(kcc)), None).decryptor().update(wrapped[:-6])
    assert clear[:5] == b"hello"


def _negotiate(
    mech_name: str,
    qop: str,
    cipher: str | None = None,
    client_maxbuf: int = 65536,
    server_maxbuf: int = 65536,
) -> tuple[DigestMechanism, DigestClient]:
    extra = {"javax.security.sasl.maxbuffer": str(server_maxbuf)}
    settings = SaslSettings(realm="default", qop=("auth-conf", "auth-int", "auth"), extra=extra)
    mech = DIGEST_MECHANISMS[mech_name](settings)
    client = DigestClient(
        mech_name, "bob", "secret", qop=(qop,), ciphers=(cipher,) if cipher else CIPHERS, maxbuf=client_maxbuf
    )
    challenge = mech.step(b"")
    assert isinstance(challenge, Challenge)
    users = {"bob": [make_digest(mech.algorithm, "bob", "default", "secret")]}
    outcome = run(mech, client.respond(challenge.data), users)
    assert isinstance(outcome, Success), outcome
    client.complete(outcome.final_data)
    assert mech.negotiated_qop == client.negotiated_qop == qop
    return mech, client


LAYERS = [("auth-int", None)] + [("auth-conf", c) for c in CIPHERS]


@pytest.mark.parametrize("mech_name", list(DIGEST_MECHANISMS))
@pytest.mark.parametrize(("qop", "cipher"), LAYERS)
def test_round_trips(mech_name: str, qop: str, cipher: str | None) -> None:
    mech, client = _negotiate(mech_name, qop, cipher)
    for size in (0, 1, 7, 8, 13, 100, 1000):
        message = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        wrapped = client.wrap(message)
        if cipher is not None and size >= 8:
            assert message not in wrapped
        assert mech.unwrap(wrapped) == message
        assert client.unwrap(mech.wrap(message[::-1])) == message[::-1]


@pytest.mark.parametrize(("qop", "cipher"), LAYERS)
def test_bad_mac_replay_reorder_and_type(qop: str, cipher: str | None) -> None:
    mech, client = _negotiate("DIGEST-MD5", qop, cipher)
    first = client.wrap(b"first message")
    second = client.wrap(b"second message")
    with pytest.raises(SaslError):
        mech.unwrap(second)  # out of order (seq 1 before 0)
    assert mech.unwrap(first) == b"first message"
    with pytest.raises(SaslError):
        mech.unwrap(first)  # replayed seq 0
    tampered = bytearray(second)
    tampered[0] ^= 1
    with pytest.raises(SaslError):
        mech.unwrap(bytes(tampered))
    wrong_type = second[:-6] + b"\x00\x02" + second[-4:]
    with pytest.raises(SaslError):
        mech.unwrap(wrong_type)
    with pytest.raises(SaslError):
        mech.unwrap(b"short")


def test_bad_mac_on_integrity_layer_does_not_advance_sequence() -> None:
    mech, client = _negotiate("DIGEST-MD5", "auth-int")
    good = client.wrap(b"payload")
    bad = b"Payload" + good[7:]
    with pytest.raises(SaslError):
        mech.unwrap(bad)
    assert mech.unwrap(good) == b"payload"


@pytest.mark.parametrize(("qop", "cipher"), LAYERS)
def test_maxbuf_is_enforced_both_ways(qop: str, cipher: str | None) -> None:
    mech, client = _negotiate("DIGEST-MD5", qop, cipher, client_maxbuf=1024, server_maxbuf=2048)
    assert mech.max_receive_size == 2048
    limit = mech.max_send_size
    assert limit is not None
    assert len(client.unwrap(mech.wrap(b"x" * limit))) == limit
    with pytest.raises(SaslError):
        mech.wrap(b"x" * (limit + 1))
    big = client.max_send_size
    assert big is not None
    assert mech.unwrap(client.wrap(b"y" * big)) == b"y" * big
    with pytest.raises(SaslError):
        mech.unwrap(b"z" * 2049)


def test_no_layer_before_success() -> None:
    mech, _ = _start(settings=_imap_settings(qop=("auth-int",)))
    assert mech.negotiated_qop == "auth"
    assert mech.wrap(b"data") == b"data"
