"""Client SASL mechanisms: RFC vectors, an independent server (scramp), the AUTH flow."""

from __future__ import annotations

import pytest
import trio

from gridactor.client.hotrod import HotRodAuthenticationError, HotRodError
from gridactor.client.sasl_client import PlainClient, ScramClient, client_mechanism, saslprep
from gridactor.errors import AuthenticationError
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod.handler import AuthStep
from tests.unit.client.helpers import FunctionAuthenticator, make_ctx, plain_authenticator, serving

# RFC 5802 §5 (SHA-1) and RFC 7677 §3 (SHA-256): user "user", password "pencil".
RFC_VECTORS = [
    (
        "SCRAM-SHA-1",
        "fyko+d2lbbFgONRv9qkxdawL",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    ),
    (
        "SCRAM-SHA-256",
        "rOprNGfwEbeRWgbNEkqO",
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    ),
]


@pytest.mark.parametrize(("mech", "nonce", "server_first", "client_final", "server_final"), RFC_VECTORS)
def test_scram_rfc_vectors(
    mech: str, nonce: str, server_first: str, client_final: str, server_final: str
) -> None:
    client = ScramClient(mech, "user", "pencil", nonce=nonce)
    assert client.initial_response() == f"n,,n=user,r={nonce}".encode()
    assert client.evaluate(server_first.encode()) == client_final.encode()
    assert client.evaluate(server_final.encode()) is None
    client.complete(b"")


def test_scram_rejects_a_wrong_server_signature() -> None:
    mech, nonce, server_first, _, _ = RFC_VECTORS[1]
    client = ScramClient(mech, "user", "pencil", nonce=nonce)
    client.initial_response()
    client.evaluate(server_first.encode())
    with pytest.raises(HotRodAuthenticationError, match="signature"):
        client.evaluate(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")


def test_scram_requires_server_proof_before_completion() -> None:
    mech, nonce, server_first, _, _ = RFC_VECTORS[1]
    client = ScramClient(mech, "user", "pencil", nonce=nonce)
    client.initial_response()
    client.evaluate(server_first.encode())
    with pytest.raises(HotRodAuthenticationError, match="never proved"):
        client.complete(b"")


@pytest.mark.parametrize(
    "server_first",
    [
        b"r=othernonce,s=QSXCR+Q6sek8bf92,i=4096",  # nonce not extending ours
        b"r=abcabc,s=QSXCR+Q6sek8bf92,i=4096",  # nonce not extended at all
        b"r=abcabcX,s=QSXCR+Q6sek8bf92,i=10",  # too few iterations: downgrade
        b"r=abcabcX,s=!!!,i=4096",  # bad base64
        b"e=other-error",
    ],
)
def test_scram_rejects_bad_server_first(server_first: bytes) -> None:
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce="abcabc")
    client.initial_response()
    with pytest.raises(HotRodAuthenticationError):
        client.evaluate(server_first)


def test_scram_escapes_user_names() -> None:
    client = ScramClient("SCRAM-SHA-512", "a,b=c", "pw", nonce="n1")
    assert client.initial_response() == b"n,,n=a=2Cb=3Dc,r=n1"


def test_mechanism_names() -> None:
    assert client_mechanism("scram-sha-384", "u", "p").name == "SCRAM-SHA-384"
    assert client_mechanism("PLAIN", "u", "p").name == "PLAIN"
    with pytest.raises(ValueError, match="no client implementation"):
        client_mechanism("GSSAPI", "u", "p")
    with pytest.raises(ValueError, match="unsupported SCRAM"):
        ScramClient("SCRAM-MD5", "u", "p")


def test_plain_message() -> None:
    assert PlainClient("bob", "secret").initial_response() == b"\0bob\0secret"
    assert PlainClient("bob", "secret", authzid="admin").initial_response() == b"admin\0bob\0secret"


def test_saslprep() -> None:
    assert saslprep("I\u00adX") == "IX"  # soft hyphen mapped to nothing (RFC 4013 §3)
    assert saslprep("user") == "user"
    assert saslprep("\u2168") == "IX"  # NFKC
    assert saslprep("a\u00a0b") == "a b"  # non-ASCII space to space
    with pytest.raises(ValueError, match="prohibited"):
        saslprep("a\u0007b")


@pytest.mark.parametrize("mech", ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_against_scramp_server(mech: str) -> None:
    scramp = pytest.importorskip("scramp")
    server_mech = scramp.ScramMechanism(mech)
    salt, stored_key, server_key, iterations = server_mech.make_auth_info("pässword", iteration_count=4096)
    server = server_mech.make_server(lambda _user: (salt, stored_key, server_key, iterations))
    client = ScramClient(mech, "user", "pässword")
    server.set_client_first(client.initial_response().decode())
    final = client.evaluate(server.get_server_first().encode())
    assert final is not None
    server.set_client_final(final.decode())
    assert client.evaluate(server.get_server_final().encode()) is None
    client.complete(b"")


# ---------------------------------------------------------------- over AUTH_MECH_LIST / AUTH


async def test_plain_over_hotrod() -> None:
    auth = plain_authenticator("bob", "secret")
    async with serving(make_ctx(realm="default"), sasl=PlainClient("bob", "secret"), authenticator=auth) as (
        client,
        _,
    ):
        await client.put(b"k", b"v")
        assert await client.get(b"k") == b"v"
    assert auth.seen == [("PLAIN", b"\0bob\0secret")]


async def test_wrong_password_raises_authentication_error() -> None:
    auth = plain_authenticator("bob", "secret")
    with pytest.raises(HotRodAuthenticationError) as info:
        async with serving(
            make_ctx(realm="default"), sasl=PlainClient("bob", "nope"), authenticator=auth
        ) as _:
            raise AssertionError("authenticated with a wrong password")
    assert info.value.status == op.SERVER_ERROR


async def test_mechanism_not_offered() -> None:
    auth = plain_authenticator("bob", "secret")
    with pytest.raises(HotRodAuthenticationError, match="not among the supported server mechanisms"):
        async with serving(
            make_ctx(realm="default"), sasl=ScramClient("SCRAM-SHA-1", "bob", "x"), authenticator=auth
        ) as _:
            raise AssertionError("unreachable")


async def test_operations_need_authentication() -> None:
    async with serving(make_ctx(realm="default"), authenticator=plain_authenticator("b", "s")) as (client, _):
        await client.ping()
        with pytest.raises(HotRodError, match="requires authentication"):
            await client.get(b"k")


async def test_scram_over_hotrod_resends_mech_name_each_round() -> None:
    scramp = pytest.importorskip("scramp")
    server_mech = scramp.ScramMechanism("SCRAM-SHA-256")
    info = server_mech.make_auth_info("secret", iteration_count=4096)
    server = server_mech.make_server(lambda _user: info)
    rounds = 0

    async def step(mech: str, response: bytes) -> AuthStep:
        nonlocal rounds
        await trio.lowlevel.checkpoint()
        rounds += 1
        if rounds == 1:
            server.set_client_first(response.decode())
            return AuthStep(server.get_server_first().encode())
        try:
            server.set_client_final(response.decode())
        except scramp.ScramException:
            raise AuthenticationError("ISPN006024: Invalid credentials") from None
        # As Infinispan: complete, with the server's final data as a not-completed round.
        return AuthStep(server.get_server_final().encode(), subject="bob")

    auth = FunctionAuthenticator(["PLAIN", "SCRAM-SHA-256"], step)
    sasl = ScramClient("SCRAM-SHA-256", "bob", "secret")
    async with serving(make_ctx(realm="default"), sasl=sasl, authenticator=auth) as (client, _):
        await client.put(b"k", b"v")
    assert [mech for mech, _ in auth.seen] == ["SCRAM-SHA-256", "SCRAM-SHA-256"]


async def test_completed_with_empty_data_finishes_plain_in_one_round() -> None:
    calls = 0

    async def step(mech: str, response: bytes) -> AuthStep:
        nonlocal calls
        await trio.lowlevel.checkpoint()
        calls += 1
        return AuthStep(None, subject="bob")  # answered "01 00"

    auth = FunctionAuthenticator(["PLAIN"], step)
    async with serving(make_ctx(realm="default"), sasl=PlainClient("bob", "x"), authenticator=auth) as (
        client,
        _,
    ):
        assert await client.size() == 0
    assert calls == 1
