"""ScramClient's optional salted-password cache: same proofs, one PBKDF2 per salt."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gridactor.client.sasl_client import ScramClient

SALT = b"0123456789abcdef"
SERVER_FIRST = b"r=cnonce" + b"snonce,s=" + base64.b64encode(SALT) + b",i=4096"


def final(client: ScramClient) -> bytes | None:
    client.initial_response()
    return client.evaluate(SERVER_FIRST)


def test_cached_and_uncached_clients_send_the_same_proof(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = hashlib.pbkdf2_hmac

    def counting(*args: object) -> bytes:
        calls.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counting)
    cache: dict[tuple[str, bytes, bytes, int], bytes] = {}
    plain = final(ScramClient("SCRAM-SHA-256", "user", "pw", nonce="cnonce"))
    first = final(ScramClient("SCRAM-SHA-256", "user", "pw", nonce="cnonce", salted_passwords=cache))
    second = final(ScramClient("SCRAM-SHA-256", "user", "pw", nonce="cnonce", salted_passwords=cache))
    assert plain == first == second
    assert len(calls) == 2  # the uncached client, then the first cached one
    assert len(cache) == 1


def test_the_cache_key_separates_passwords() -> None:
    cache: dict[tuple[str, bytes, bytes, int], bytes] = {}
    right = final(ScramClient("SCRAM-SHA-256", "user", "pw", nonce="cnonce", salted_passwords=cache))
    wrong = final(ScramClient("SCRAM-SHA-256", "user", "other", nonce="cnonce", salted_passwords=cache))
    assert right != wrong
    assert len(cache) == 2
