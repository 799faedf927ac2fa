from __future__ import annotations

import pytest

from gridactor.security.credentials import (
    ClearPassword,
    DigestHash,
    ScramSaltedPassword,
    make_digest,
    make_scram,
)
from gridactor.security.sasl.base import SaslSettings
from gridactor.security.sasl.cram_md5 import CramMd5Mechanism
from gridactor.security.sasl.policy import (
    POLICIES,
    UnknownPolicyError,
    filter_mechanisms,
    mechanism_allowed,
    policies_from_properties,
)
from gridactor.security.sasl.registry import (
    MECHANISMS,
    UnsupportedMechanismError,
    can_serve,
    create_mechanism,
    credential_algorithm,
    credential_kinds,
    servable_mechanisms,
)

ALL = [
    "GS2-KRB5", "GSSAPI", "OAUTHBEARER", "EXTERNAL", "SCRAM-SHA-512", "SCRAM-SHA-256", "DIGEST-SHA-512",
    "DIGEST-MD5", "CRAM-MD5", "PLAIN", "ANONYMOUS",
]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "survivors"),
    [
        ("no-plain-text", [m for m in ALL if m not in ("PLAIN", "OAUTHBEARER")]),
        ("no-active", ["GS2-KRB5", "GSSAPI", "EXTERNAL", "SCRAM-SHA-512", "SCRAM-SHA-256"]),
        ("no-dictionary", ["EXTERNAL", "ANONYMOUS"]),
        ("no-anonymous", [m for m in ALL if m not in ("ANONYMOUS", "EXTERNAL")]),
        ("forward-secrecy", []),
        ("pass-credentials", []),
    ],
)  # fmt: skip
def test_policy_table(policy: str, survivors: list[str]) -> None:
    assert filter_mechanisms(ALL, [policy]) == survivors


def test_the_spec_policy_example_leaves_only_gssapi() -> None:
    # Spec 4.3.2.4: mechanisms="PLAIN DIGEST-MD5 GSSAPI EXTERNAL" with no-active,
    # no-anonymous and no-plain-text set: "the Hot Rod connector uses the GSSAPI mechanism".
    offered = ["PLAIN", "DIGEST-MD5", "GSSAPI", "EXTERNAL"]
    assert filter_mechanisms(offered, ["no-active", "no-anonymous", "no-plain-text"]) == ["GSSAPI"]


def test_policies_combine_and_unknowns_are_handled() -> None:
    assert filter_mechanisms(ALL, ["no-plain-text", "no-active"]) == [
        "GS2-KRB5", "GSSAPI", "EXTERNAL", "SCRAM-SHA-512", "SCRAM-SHA-256",
    ]  # fmt: skip
    assert filter_mechanisms(ALL, []) == ALL
    assert not mechanism_allowed("X-UNKNOWN", ["no-anonymous"])  # fail closed
    assert mechanism_allowed("X-UNKNOWN", [])
    with pytest.raises(UnknownPolicyError):
        filter_mechanisms(ALL, ["no-such-policy"])


def test_policies_from_properties() -> None:
    props = {"javax.security.sasl.policy.noplaintext": "true", "javax.security.sasl.policy.noactive": "false"}
    assert policies_from_properties(props) == {"no-plain-text"}
    assert len(POLICIES) == 6


def test_registry_names_and_creation() -> None:
    # A superset: other packages (OAUTHBEARER, EXTERNAL, GSSAPI…) register theirs on import.
    assert set(MECHANISMS) >= {
        "PLAIN", "CRAM-MD5", "DIGEST-MD5", "DIGEST-SHA", "DIGEST-SHA-256", "DIGEST-SHA-384", "DIGEST-SHA-512",
        "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-384", "SCRAM-SHA-512",
    }  # fmt: skip
    settings = SaslSettings(realm="default")
    for name in MECHANISMS:
        mech = create_mechanism(name, settings)
        assert mech.name == name
    assert isinstance(create_mechanism("CRAM-MD5", settings, nonce_factory=lambda: "1.2"), CramMd5Mechanism)
    for bad in ("plain", "SCRAM-SHA-256-PLUS", "GS2-KRB5-PLUS", "", "NOPE"):
        with pytest.raises(UnsupportedMechanismError, match="unsupported SASL mechanism"):
            create_mechanism(bad, settings)


def test_credential_kinds_and_can_serve() -> None:
    assert credential_kinds("CRAM-MD5") == (ClearPassword,)
    assert credential_kinds("DIGEST-SHA-256") == (DigestHash, ClearPassword)
    assert credential_kinds("SCRAM-SHA-1") == (ScramSaltedPassword, ClearPassword)
    assert set(credential_kinds("PLAIN")) == {ClearPassword, DigestHash, ScramSaltedPassword}
    assert credential_algorithm("DIGEST-SHA-256") == "digest-sha-256"
    assert credential_algorithm("PLAIN") is None
    hashed = [make_digest("digest-sha-256", "u", "default", "p"), make_scram("scram-sha-512", "p", b"s" * 12)]
    assert can_serve("DIGEST-SHA-256", hashed)
    assert not can_serve("DIGEST-MD5", hashed)
    assert can_serve("SCRAM-SHA-512", hashed)
    assert not can_serve("SCRAM-SHA-256", hashed)
    assert not can_serve("CRAM-MD5", hashed)
    assert can_serve("PLAIN", hashed)
    assert can_serve("CRAM-MD5", [ClearPassword("p")])
    assert servable_mechanisms(["PLAIN", "CRAM-MD5", "SCRAM-SHA-256", "NOPE"], [ScramSaltedPassword]) == [
        "PLAIN", "SCRAM-SHA-256",
    ]  # fmt: skip
    with pytest.raises(UnsupportedMechanismError):
        credential_kinds("nope")
