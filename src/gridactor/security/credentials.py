"""Stored credentials, and the password checks a realm runs against them.

A realm stores, per user, one or more credentials (Infinispan/Elytron credential types):

* :class:`ClearPassword` — the password itself (``plain-text="true"`` files).
* :class:`DigestHash` — ``H(user ":" realm ":" password)`` for the DIGEST-* SASL
  mechanisms and HTTP Digest; the hash is named by the algorithm (``digest-md5`` → MD5,
  ``digest-sha`` → SHA-1, ``digest-sha-256`` …).
* :class:`ScramSaltedPassword` — ``Hi(password, salt, i)`` (PBKDF2-HMAC) for SCRAM-*.

Mechanisms ask for the kinds they can use; :func:`verify_password` lets PLAIN and HTTP
Basic check a password guess against whichever credential is stored. Every comparison of
secret material is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

DIGEST_HASHES: dict[str, str] = {
    "digest-md5": "md5",
    "digest-sha": "sha1",
    "digest-sha-256": "sha256",
    "digest-sha-384": "sha384",
    "digest-sha-512": "sha512",
    "digest-sha-512-256": "sha512_256",
}
SCRAM_HASHES: dict[str, str] = {
    "scram-sha-1": "sha1",
    "scram-sha-256": "sha256",
    "scram-sha-384": "sha384",
    "scram-sha-512": "sha512",
}
SCRAM_DEFAULT_ITERATIONS = 20000  # Elytron's ScramDigestPassword.DEFAULT_ITERATION_COUNT
SCRAM_SALT_BYTES = 12  # Elytron's DEFAULT_SALT_SIZE


@dataclass(frozen=True, slots=True, repr=False)
class ClearPassword:
    password: str

    def __repr__(self) -> str:  # never print a secret by accident
        return "ClearPassword(***)"


@dataclass(frozen=True, slots=True, repr=False)
class DigestHash:
    algorithm: str  # a key of DIGEST_HASHES
    username: str
    realm: str
    digest: bytes  # H(username ":" realm ":" password), raw bytes

    def __repr__(self) -> str:
        return f"DigestHash({self.algorithm}, {self.username!r}, {self.realm!r}, ***)"


@dataclass(frozen=True, slots=True, repr=False)
class ScramSaltedPassword:
    algorithm: str  # a key of SCRAM_HASHES
    iterations: int
    salt: bytes
    salted_password: bytes  # Hi(normalize(password), salt, iterations)

    def __repr__(self) -> str:
        return f"ScramSaltedPassword({self.algorithm}, i={self.iterations}, ***)"


Credential = ClearPassword | DigestHash | ScramSaltedPassword


def password_bytes_for_scram(password: str) -> bytes:
    # Elytron normalises with NFKC (not full SASLprep) before hashing; so do we, so that
    # files written by either tool verify with either.
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def digest_hash(algorithm: str, username: str, realm: str, password: str) -> bytes:
    hash_name = DIGEST_HASHES[algorithm]
    return hashlib.new(hash_name, f"{username}:{realm}:{password}".encode()).digest()


def scram_salted_password(algorithm: str, password: str, salt: bytes, iterations: int) -> bytes:
    hash_name = SCRAM_HASHES[algorithm]
    return hashlib.pbkdf2_hmac(hash_name, password_bytes_for_scram(password), salt, iterations)


def make_digest(algorithm: str, username: str, realm: str, password: str) -> DigestHash:
    return DigestHash(algorithm, username, realm, digest_hash(algorithm, username, realm, password))


def make_scram(
    algorithm: str, password: str, salt: bytes, iterations: int = SCRAM_DEFAULT_ITERATIONS
) -> ScramSaltedPassword:
    return ScramSaltedPassword(
        algorithm, iterations, salt, scram_salted_password(algorithm, password, salt, iterations)
    )


def verify_password(credentials: Iterable[Credential], username: str, realm: str, password: str) -> bool:
    """Does ``password`` match the first stored credential able to check it?

    As Elytron does for password-guess evidence (PLAIN, HTTP Basic): the first credential
    that can verify a guess decides. Constant-time comparisons throughout.
    """
    for credential in credentials:
        if isinstance(credential, ClearPassword):
            return hmac.compare_digest(credential.password.encode(), password.encode())
        if isinstance(credential, DigestHash):
            if credential.algorithm not in DIGEST_HASHES:
                continue
            guess = digest_hash(credential.algorithm, username, credential.realm or realm, password)
            return hmac.compare_digest(credential.digest, guess)
        if isinstance(credential, ScramSaltedPassword):
            if credential.algorithm not in SCRAM_HASHES:
                continue
            guess = scram_salted_password(
                credential.algorithm, password, credential.salt, credential.iterations
            )
            return hmac.compare_digest(credential.salted_password, guess)
    return False
