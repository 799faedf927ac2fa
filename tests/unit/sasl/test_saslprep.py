from __future__ import annotations

import pytest

from gridactor.security.sasl.saslprep import SaslPrepError, saslprep
from tests.unit.sasl.helpers import DATA


def _decode(cell: str) -> str:
    if cell.startswith("U+"):
        return "".join(chr(int(cp[2:], 16)) for cp in cell.split())
    return cell


def _rows() -> list[tuple[str, str]]:
    rows = []
    for line in (DATA / "saslprep.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            source, expected = line.split("\t")
            rows.append((_decode(source), expected))
    return rows


@pytest.mark.parametrize(("source", "expected"), _rows())
def test_rfc4013_examples(source: str, expected: str) -> None:
    if expected == "ERROR":
        with pytest.raises(SaslPrepError):
            saslprep(source)
    else:
        assert saslprep(source) == expected


def test_non_ascii_space_maps_to_space() -> None:
    assert saslprep("a\u00a0b") == "a b"


def test_unassigned_only_in_query_profile() -> None:
    unassigned = "\u0221"  # unassigned in Unicode 3.2
    with pytest.raises(SaslPrepError):
        saslprep(unassigned)
    assert saslprep(unassigned, allow_unassigned=True) == unassigned


def test_error_message_does_not_quote_the_input() -> None:
    with pytest.raises(SaslPrepError) as info:
        saslprep("secret\u0007")
    assert "secret" not in str(info.value)
    assert "0007" not in str(info.value)


def test_rtl_string_is_accepted() -> None:
    assert saslprep("\u0627\u0628") == "\u0627\u0628"
