"""Name rewriters: Elytron's regex/case/common-name transformers and the ReDoS bounds."""

from __future__ import annotations

import re
import time

import pytest

from gridactor.config.model import (
    CasePrincipalTransformer,
    CommonNamePrincipalTransformer,
    RegexPrincipalTransformer,
)
from gridactor.errors import ConfigError
from gridactor.security.rewriters import (
    MAX_NAME_LENGTH,
    CaseNameRewriter,
    CommonNameRewriter,
    RegexNameRewriter,
    UnsafePatternError,
    build_name_rewriter,
    check_pattern_safety,
    parse_java_replacement,
)


def test_spec_domain_remover() -> None:
    rewrite = RegexNameRewriter(r"(.*)@INFINISPAN\.ORG", "$1")
    assert rewrite("alice@INFINISPAN.ORG") == "alice"
    assert rewrite("alice") == "alice"  # no match: unchanged, as Matcher.replaceFirst
    assert rewrite("alice@EXAMPLE.COM") == "alice@EXAMPLE.COM"


def test_replace_first_and_replace_all() -> None:
    assert RegexNameRewriter("a", "b")("banana") == "bbnana"
    assert RegexNameRewriter("a", "b", replace_all=True)("banana") == "bbnbnb"


def test_java_replacement_syntax() -> None:
    rewrite = RegexNameRewriter(r"(?<user>\w+)@(\w+)", r"${user}-$2\$")
    assert rewrite("bob@realm") == "bob-realm$"
    # $12 means group 1 then "2" when there is no group 12, as Java reads it.
    assert RegexNameRewriter("(a)", "$12")("a") == "a2"
    assert RegexNameRewriter("(a)|(b)", "[$2]")("a") == "[]"  # a group that took no part
    pattern = re.compile("(a)")
    for bad in ("$", "$2", "${nope}", "\\"):
        with pytest.raises(ValueError, match=r"."):
            parse_java_replacement(bad, pattern)


def test_case_and_common_name() -> None:
    assert CaseNameRewriter()("Alice") == "ALICE"
    assert CaseNameRewriter(uppercase=False)("Alice") == "alice"
    cn = CommonNameRewriter()
    assert cn("CN=alice,OU=People,O=Example") == "alice"
    assert cn("uid=x,cn=Smith\\, John,dc=o") == "Smith, John"
    assert cn("cn=\\D0\\BA\\D0\\BB,dc=o") == "кл"
    assert cn("alice") is None
    assert cn("uid=alice,dc=o") is None


@pytest.mark.parametrize(
    "pattern", [r"(a+)+$", r"(a*)*b", r"(a|aa)+$", r"(\w+\s?)+$", r".*.*.*.*x", r"(x+x+)+y"]
)
def test_patterns_that_can_backtrack_without_bound_are_refused(pattern: str) -> None:
    with pytest.raises(UnsafePatternError):
        check_pattern_safety(pattern)


@pytest.mark.parametrize(
    "pattern", [r"(.*)@INFINISPAN\.ORG", r"^(\w+)\\(\w+)$", r"(?>a+)+b", r"a++b", r"(ab)?c*", r"[a|b]+"]
)
def test_usual_patterns_pass(pattern: str) -> None:
    check_pattern_safety(pattern)


def test_worst_allowed_pattern_on_the_longest_name_is_quick() -> None:
    rewrite = RegexNameRewriter(r".*.*.*x", "y", replace_all=True)
    started = time.perf_counter()
    assert rewrite("a" * MAX_NAME_LENGTH) == "a" * MAX_NAME_LENGTH
    assert time.perf_counter() - started < 2.0
    assert rewrite("a" * (MAX_NAME_LENGTH + 1)) is None  # refused before the pattern runs


def test_configuration_errors_name_the_line() -> None:
    with pytest.raises(ConfigError, match=r"conf.xml:7: name-rewriter: .*repeat inside a repeat"):
        build_name_rewriter(RegexPrincipalTransformer("r", "(a+)+", "$1", False, 7), "conf.xml")
    with pytest.raises(ConfigError, match=r"conf.xml:8: .*no group 2"):
        build_name_rewriter(RegexPrincipalTransformer("r", "(a)", "$2", False, 8), "conf.xml")
    assert build_name_rewriter(CasePrincipalTransformer(None, False, 1))("X") == "x"
    assert build_name_rewriter(CommonNamePrincipalTransformer(None, 1))("cn=a") == "a"
