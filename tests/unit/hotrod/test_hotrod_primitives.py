from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridactor.protocols.hotrod.primitives import (
    Incomplete,
    Malformed,
    Oversize,
    Reader,
    write_bytes,
    write_long,
    write_media_type,
    write_signed_vint,
    write_string,
    write_vint,
    write_vlong,
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (500, "f403"),
        (16384, "808001"),
        (-1, "ffffffff0f"),
        (2**31 - 1, "ffffffff07"),
    ],
)
def test_vint_golden(value: int, encoded: str) -> None:
    assert write_vint(value).hex() == encoded
    assert Reader(bytes.fromhex(encoded)).vint() == value


def test_vlong_negative_takes_ten_bytes() -> None:
    assert write_vlong(-1) == b"\xff" * 9 + b"\x01"
    assert Reader(write_vlong(-1)).vlong() == -1


@pytest.mark.parametrize(("value", "encoded"), [(-1, "01"), (0, "00"), (1, "02"), (-2, "03"), (64, "8001")])
def test_signed_vint_golden(value: int, encoded: str) -> None:
    assert write_signed_vint(value).hex() == encoded
    assert Reader(bytes.fromhex(encoded)).signed_vint() == value


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_vint_round_trip(value: int) -> None:
    encoded = write_vint(value)
    assert len(encoded) <= 5
    r = Reader(encoded)
    assert r.vint() == value
    assert r.pos == len(encoded)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_vlong_round_trip(value: int) -> None:
    r = Reader(write_vlong(value))
    assert r.vlong() == value


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_signed_vint_round_trip(value: int) -> None:
    assert Reader(write_signed_vint(value)).signed_vint() == value


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_long_round_trip(value: int) -> None:
    encoded = write_long(value)
    assert len(encoded) == 8
    assert Reader(encoded).long() == value


@given(st.binary(max_size=300))
def test_bytes_round_trip(value: bytes) -> None:
    r = Reader(write_bytes(value) + b"tail")
    assert r.array(1000) == value
    assert r.fixed(4) == b"tail"


@given(st.text(max_size=100))
def test_string_round_trip(value: str) -> None:
    encoded = write_string(value)
    assert Reader(encoded).string(1000) == value
    assert Reader(encoded).vint() == len(value.encode())  # byte length, not characters


@given(st.binary(max_size=20), st.integers(min_value=0, max_value=40))
def test_truncated_input_is_incomplete_never_wrong(value: bytes, cut: int) -> None:
    encoded = write_bytes(value)
    cut = min(cut, len(encoded) - 1)
    with pytest.raises(Incomplete) as info:
        Reader(encoded[:cut]).array(1000)
    assert cut < info.value.need <= len(encoded)


def test_oversize_reports_prefix_and_length() -> None:
    with pytest.raises(Oversize) as info:
        Reader(b"xx" + write_vint(300), 2).array(100, "key")
    assert (info.value.prefix_start, info.value.data_start, info.value.length) == (2, 4, 300)


def test_overlong_vint_is_malformed() -> None:
    with pytest.raises(Malformed):
        Reader(b"\xff" * 6).vint()


def test_negative_array_length_is_malformed() -> None:
    with pytest.raises(Malformed):
        Reader(write_vint(-5)).array(100)


def test_optional_array() -> None:
    assert Reader(b"\x01").optional_array(10) is None
    assert Reader(b"\x04ab").optional_array(10) == b"ab"


@pytest.mark.parametrize(
    ("encoded", "name"),
    [
        ("00", ""),
        ("010d00", "text/plain"),
        ("010200", "application/json"),
        ("010300", "application/octet-stream"),
        ("016300", ""),  # unknown predefined id
        ("02" + "0a" + b"text/x-foo".hex() + "00", "text/x-foo"),
        ("010d01" + "07" + b"charset".hex() + "05" + b"UTF-8".hex(), "text/plain; charset=UTF-8"),
    ],
)
def test_read_media_type(encoded: str, name: str) -> None:
    r = Reader(bytes.fromhex(encoded))
    assert r.media_type(100) == name
    assert r.pos == len(r.data)


def test_unknown_media_type_kind_is_malformed() -> None:
    with pytest.raises(Malformed):
        Reader(b"\x05").media_type(100)


def test_write_media_type_is_node_readable() -> None:
    assert write_media_type("text/plain") == b"\x01\x0d\x00"
    assert write_media_type("text/plain; charset=UTF-8") == b"\x01\x0d\x00"
    assert write_media_type("application/unknown") == b"\x01\x11\x00"
    assert write_media_type("application/x-custom") == b"\x00"
    assert write_media_type("") == b"\x00"
