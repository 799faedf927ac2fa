"""SASLprep (RFC 4013): the stringprep profile for user names and passwords.

Built on the stdlib :mod:`stringprep` tables (RFC 3454, Unicode 3.2) so that the result
does not drift with the Python version's Unicode database for the mapping and prohibition
steps; NFKC uses :mod:`unicodedata`'s 3.2 view for the same reason.
"""

from __future__ import annotations

import stringprep
import unicodedata

_UCD_32 = unicodedata.ucd_3_2_0


class SaslPrepError(ValueError):
    """The string is not acceptable under SASLprep (prohibited character, bidi rule).

    The message never names the offending character: the string may be a password.
    """


_PROHIBITED = (
    stringprep.in_table_c12,  # non-ASCII space: already mapped, listed for completeness
    stringprep.in_table_c21_c22,  # control characters
    stringprep.in_table_c3,  # private use
    stringprep.in_table_c4,  # non-character code points
    stringprep.in_table_c5,  # surrogates
    stringprep.in_table_c6,  # inappropriate for plain text
    stringprep.in_table_c7,  # inappropriate for canonical representation
    stringprep.in_table_c8,  # change display properties / deprecated
    stringprep.in_table_c9,  # tagging characters
)


def saslprep(text: str, *, allow_unassigned: bool = False) -> str:
    """Prepare ``text``; raises :class:`SaslPrepError` if it is not allowed.

    ``allow_unassigned`` selects the "query" profile (RFC 3454 §7); stored strings (the
    default) must not contain code points unassigned in Unicode 3.2.
    """
    # Step 1, mapping: non-ASCII spaces become SPACE, "commonly mapped to nothing" vanish.
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    # Step 2, normalisation.
    normalized = _UCD_32.normalize("NFKC", mapped)
    if not normalized:
        return normalized
    # Steps 3 and 5: prohibited output and unassigned code points.
    for ch in normalized:
        if any(table(ch) for table in _PROHIBITED):
            raise SaslPrepError("prohibited character")
        if not allow_unassigned and stringprep.in_table_a1(ch):
            raise SaslPrepError("unassigned code point")
    # Step 4, bidirectional rule (RFC 3454 §6).
    if any(stringprep.in_table_d1(ch) for ch in normalized):
        if any(stringprep.in_table_d2(ch) for ch in normalized):
            raise SaslPrepError("mixes right-to-left and left-to-right characters")
        if not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1])):
            raise SaslPrepError("right-to-left string must start and end with a right-to-left character")
    return normalized
