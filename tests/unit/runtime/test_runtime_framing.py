"""The length-prefixed msgpack frame codec, bytes in and bytes out."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridactor.runtime.framing import FrameDecoder, FrameError, encode


def test_encode_layout() -> None:
    assert encode(1) == b"\x00\x00\x00\x01\x01"
    assert encode((1, b"ab")) == b"\x00\x00\x00\x06\x92\x01\xc4\x02ab"


def test_all_frames_of_one_receive() -> None:
    d = FrameDecoder()
    d.receive_data(encode((1, "a")) + encode((2, b"b")) + encode(None)[:3])
    assert d.next_frames() == [(1, "a"), (2, b"b")]
    assert d.buffered == 3
    assert d.next_frames() == []
    d.receive_data(encode(None)[3:])
    assert d.next_frames() == [None]
    assert d.buffered == 0


def test_header_split() -> None:
    d = FrameDecoder()
    d.receive_data(b"\x00\x00")
    assert d.next_frames() == []
    d.receive_data(b"\x00\x01\xc0")
    assert d.next_frames() == [None]


def test_zero_length_frame_is_an_error() -> None:
    d = FrameDecoder()
    d.receive_data(b"\x00\x00\x00\x00")
    with pytest.raises(FrameError):
        d.next_frames()


def test_oversized_frame() -> None:
    d = FrameDecoder(max_frame=10)
    d.receive_data(b"\x00\x00\x00\x0b")
    with pytest.raises(FrameError, match="exceeds"):
        d.next_frames()
    with pytest.raises(FrameError):  # stays broken
        d.next_frames()


def test_garbage_body() -> None:
    d = FrameDecoder()
    d.receive_data(b"\x00\x00\x00\x01\xc1")  # 0xc1 is never valid msgpack
    with pytest.raises(FrameError):
        d.next_frames()


def test_trailing_bytes_inside_body_are_an_error() -> None:
    d = FrameDecoder()
    d.receive_data(b"\x00\x00\x00\x02\x01\x02")
    with pytest.raises(FrameError):
        d.next_frames()


def test_eof_mid_frame() -> None:
    d = FrameDecoder()
    d.receive_data(encode(b"abc")[:-1])
    d.receive_data(b"")
    assert d.eof
    with pytest.raises(FrameError, match="closed inside"):
        d.next_frames()


def test_clean_eof() -> None:
    d = FrameDecoder()
    d.receive_data(encode(7))
    d.receive_data(b"")
    assert d.next_frames() == [7]
    assert d.next_frames() == []


msg_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=64)
    | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=5).map(tuple),
    max_leaves=20,
)


@given(st.lists(msg_values, min_size=1, max_size=5))
@settings(max_examples=60, deadline=None)
def test_split_at_every_boundary(objs: list[object]) -> None:
    wire = b"".join(encode(o) for o in objs)
    for cut in range(len(wire) + 1):
        d = FrameDecoder()
        d.receive_data(wire[:cut])
        got = d.next_frames()
        d.receive_data(wire[cut:])
        got += d.next_frames()
        assert got == objs


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_raise_only_frame_error(data: bytes) -> None:
    d = FrameDecoder(max_frame=1 << 16)
    for i in range(0, len(data), 7):
        d.receive_data(data[i : i + 7])
        try:
            d.next_frames()
        except FrameError:
            return


def test_msgpack_bin_and_str_distinct() -> None:
    d = FrameDecoder()
    d.receive_data(encode((b"k", "k")))
    [frame] = d.next_frames()
    assert isinstance(frame, tuple)
    b, s = frame
    assert isinstance(b, bytes)
    assert isinstance(s, str)
    assert msgpack.unpackb(encode(b"k")[4:]) == b"k"
