from __future__ import annotations

import pytest

from gridactor.client.sasl import SaslClientError, create_client_mechanism
from gridactor.security.credentials import ClearPassword, make_digest
from gridactor.security.sasl.base import Challenge, SaslError, SaslSettings, Success
from gridactor.security.sasl.digest import DigestMechanism
from gridactor.security.sasl.framing import UnwrapDecoder, wrap_stream
from gridactor.security.sasl.registry import create_mechanism
from tests.unit.sasl.helpers import run

USERS = {"bob": [ClearPassword("secret")]}


@pytest.mark.parametrize(
    "name",
    ["PLAIN", "CRAM-MD5", "DIGEST-MD5", "DIGEST-SHA", "DIGEST-SHA-256", "DIGEST-SHA-384", "DIGEST-SHA-512",
     "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-384", "SCRAM-SHA-512"],
)  # fmt: skip
def test_own_clients_against_servers(name: str) -> None:
    server = create_mechanism(name, SaslSettings(realm="default", server_name="infinispan"))
    client = create_client_mechanism(name, "bob", "secret")
    outcome = run(server, client.initial_response(), USERS)
    while isinstance(outcome, Challenge):
        outcome = run(server, client.respond(outcome.data), USERS)
    assert isinstance(outcome, Success), outcome
    client.complete(outcome.final_data)
    assert client.completed


def test_client_detects_forged_server_final() -> None:
    server = create_mechanism("SCRAM-SHA-256", SaslSettings(realm="default"))
    client = create_client_mechanism("SCRAM-SHA-256", "bob", "secret")
    challenge = run(server, client.initial_response(), USERS)
    assert isinstance(challenge, Challenge)
    client.respond(challenge.data)
    with pytest.raises(SaslClientError):
        client.complete(b"v=AAAA")


def _layered(cipher: str | None) -> tuple[DigestMechanism, object]:
    qop = "auth-conf" if cipher else "auth-int"
    settings = SaslSettings(realm="default", qop=(qop,), extra={"javax.security.sasl.maxbuffer": "100"})
    server = DigestMechanism(settings)
    client = create_client_mechanism("DIGEST-MD5", "bob", "secret", qop=(qop,), maxbuf=64)
    challenge = server.step(b"")
    assert isinstance(challenge, Challenge)
    outcome = run(
        server,
        client.respond(challenge.data),
        {"bob": [make_digest("digest-md5", "bob", "default", "secret")]},
    )
    assert isinstance(outcome, Success)
    client.complete(outcome.final_data)
    return server, client


@pytest.mark.parametrize("cipher", [None, "3des"])
def test_length_prefixed_framing_splits_and_reassembles(cipher: str | None) -> None:
    server, client = _layered(cipher)
    payload = bytes(range(256)) * 3
    stream = wrap_stream(server, payload)
    assert len(stream) > len(payload) + 4 * 10  # many frames, each with its own prefix
    decoder = UnwrapDecoder(client, max_buffer=64)  # type: ignore[arg-type]
    # feed in awkward pieces: frames split across reads
    out = b"".join(decoder.feed(stream[i : i + 7]) for i in range(0, len(stream), 7))
    assert out == payload
    # server side: client frames, checked against our advertised maxbuf (100)
    inbound = UnwrapDecoder(server, max_buffer=server.max_receive_size)
    assert inbound.feed(wrap_stream(client, b"hello world" * 20)) == b"hello world" * 20  # type: ignore[arg-type]


def test_oversize_length_prefix_is_refused_before_buffering() -> None:
    server, _ = _layered(None)
    decoder = UnwrapDecoder(server, max_buffer=server.max_receive_size)
    with pytest.raises(SaslError):
        decoder.feed((2**31 - 1).to_bytes(4, "big"))


def test_framing_without_layer_is_identity_wrapping() -> None:
    server = create_mechanism("PLAIN", SaslSettings(realm="default"))
    assert wrap_stream(server, b"abc") == b"\x00\x00\x00\x03abc"
