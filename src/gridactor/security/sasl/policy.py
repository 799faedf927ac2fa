"""SASL policies (`<sasl policy="…">`): which mechanisms each one removes.

Infinispan documents the policies by meaning ("no-dictionary: mechanisms susceptible to
passive dictionary attacks are not allowed" …) while Elytron's factories implement a
different, partly surprising table, and current Infinispan never even passes the
attribute on to them (see the reference notes, §4.3). There is no behaviour to be
byte-compatible with, so we choose per cell, by one rule:

    A mechanism survives a policy only if it meets the policy both by the documented
    meaning and by Elytron's factory code — i.e. the removals are the union of the two
    readings — with one exception, below.

Consequences worth knowing:

* SCRAM-*: Elytron's SCRAM factory ignores every policy, but RFC 5802 §9 says SCRAM is
  open to passive dictionary attack and it offers neither forward secrecy nor credential
  delegation, so ``no-dictionary``, ``forward-secrecy`` and ``pass-credentials`` remove it.
  It survives ``no-plain-text``, ``no-active`` (mutual authentication, nonces) and
  ``no-anonymous``.
* GSSAPI / GS2-KRB5 are treated alike (Elytron's GS2 factory ignores policies): removed
  by ``no-dictionary`` (password-derived Kerberos keys), ``forward-secrecy`` and — as
  Elytron's GSSAPI factory does, and since we implement no delegation — ``pass-credentials``.
* EXTERNAL under ``no-anonymous``: Elytron's EXTERNAL factory refuses itself, and the spec's
  own example (4.3.2.4: PLAIN DIGEST-MD5 GSSAPI EXTERNAL with no-active, no-anonymous and
  no-plain-text leaves only GSSAPI) depends on it, so we follow it. The spec also calls
  ``no-anonymous`` "true by default"; applied literally that would switch client
  certificates off everywhere, so a policy removes mechanisms only when the configuration
  sets it (``<policy><no-anonymous value="true"/>`` or ``policy="no-anonymous"``).
* CRAM-MD5 follows the JDK factory that provides it to Infinispan (Elytron has none):
  it survives only ``no-plain-text`` and ``no-anonymous``.
* A mechanism this table does not know is removed by every policy (fail closed).

``pass-credentials`` therefore leaves nothing: no mechanism here delegates credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

FORWARD_SECRECY = "forward-secrecy"
PASS_CREDENTIALS = "pass-credentials"
NO_PLAIN_TEXT = "no-plain-text"
NO_ACTIVE = "no-active"
NO_DICTIONARY = "no-dictionary"
NO_ANONYMOUS = "no-anonymous"
POLICIES = (FORWARD_SECRECY, PASS_CREDENTIALS, NO_PLAIN_TEXT, NO_ACTIVE, NO_DICTIONARY, NO_ANONYMOUS)

# The same policies as JAAS mechanism properties (`<property name=…>true</property>`),
# which is how a running Infinispan actually receives them.
POLICY_PROPERTIES: dict[str, str] = {
    FORWARD_SECRECY: "javax.security.sasl.policy.forward",
    PASS_CREDENTIALS: "javax.security.sasl.policy.credentials",
    NO_PLAIN_TEXT: "javax.security.sasl.policy.noplaintext",
    NO_ACTIVE: "javax.security.sasl.policy.noactive",
    NO_DICTIONARY: "javax.security.sasl.policy.nodictionary",
    NO_ANONYMOUS: "javax.security.sasl.policy.noanonymous",
}

_DIGESTS = (
    "DIGEST-MD5",
    "DIGEST-SHA",
    "DIGEST-SHA-256",
    "DIGEST-SHA-384",
    "DIGEST-SHA-512",
    "DIGEST-SHA-512-256",
)
_SCRAMS = tuple(f"SCRAM-SHA-{bits}{plus}" for bits in ("1", "256", "384", "512") for plus in ("", "-PLUS"))
_KERBEROS = ("GSSAPI", "GS2-KRB5", "GS2-KRB5-PLUS")
_LOCAL = ("JBOSS-LOCAL-USER",)

KNOWN_MECHANISMS: frozenset[str] = frozenset(
    {"PLAIN", "OAUTHBEARER", "ANONYMOUS", "CRAM-MD5", "EXTERNAL", *_DIGESTS, *_SCRAMS, *_KERBEROS, *_LOCAL}
)

# Policy -> mechanisms it removes.
REMOVED_BY: dict[str, frozenset[str]] = {
    NO_PLAIN_TEXT: frozenset({"PLAIN", "OAUTHBEARER"}),
    NO_ACTIVE: frozenset({"PLAIN", "OAUTHBEARER", "ANONYMOUS", "CRAM-MD5", *_DIGESTS}),
    NO_DICTIONARY: frozenset({"PLAIN", "OAUTHBEARER", "CRAM-MD5", *_DIGESTS, *_SCRAMS, *_KERBEROS}),
    NO_ANONYMOUS: frozenset({"ANONYMOUS", "EXTERNAL"}),
    # Nothing listed offers forward secrecy or delegates credentials.
    FORWARD_SECRECY: KNOWN_MECHANISMS,
    PASS_CREDENTIALS: KNOWN_MECHANISMS,
}


class UnknownPolicyError(ValueError):
    pass


def check_policies(policies: Iterable[str]) -> frozenset[str]:
    """Validate policy names (XSD tokens); raises :class:`UnknownPolicyError`."""
    chosen = frozenset(policies)
    unknown = chosen - set(POLICIES)
    if unknown:
        raise UnknownPolicyError(f"unknown SASL policy: {', '.join(sorted(unknown))}")
    return chosen


def policies_from_properties(properties: Mapping[str, str]) -> frozenset[str]:
    """Policies switched on through ``javax.security.sasl.policy.*`` properties."""
    return frozenset(
        policy
        for policy, prop in POLICY_PROPERTIES.items()
        if properties.get(prop, "").strip().lower() == "true"
    )


def mechanism_allowed(mechanism: str, policies: Iterable[str]) -> bool:
    chosen = check_policies(policies)
    if not chosen:
        return True
    if mechanism not in KNOWN_MECHANISMS:
        return False
    return not any(mechanism in REMOVED_BY[policy] for policy in chosen)


def filter_mechanisms(mechanisms: Iterable[str], policies: Iterable[str]) -> list[str]:
    """The mechanisms (order kept) that every policy allows."""
    chosen = check_policies(policies)
    return [m for m in mechanisms if mechanism_allowed(m, chosen)]
