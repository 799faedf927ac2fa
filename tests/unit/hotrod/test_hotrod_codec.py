from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridactor.protocols.hotrod import messages as m
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod.codec import HotRodServerCodec, RemoteProtocolError, segments_from_mask
from gridactor.protocols.hotrod.primitives import (
    write_bytes,
    write_long,
    write_signed_vint,
    write_string,
    write_vlong,
)
from gridactor.server.context import Limits
from tests.unit.hotrod.hotrod_helpers import TEXT_PLAIN, frame, header, kv

NODE_FIRST_PACKET = bytes.fromhex("A0 03 29 17 07 6D79636163686500 03 00 01 0D 00 01 0D 00 00")
NODE_PUT_WITH_LIFESPAN = bytes.fromhex(
    "A0 06 29 01 02 6331 01 03 00 01 0D 00 01 0D 00 00 01 6B 01 0A F4 03 01 76"
)


def events(data: bytes, limits: Limits | None = None) -> list[m.Event]:
    codec = HotRodServerCodec(limits)
    codec.receive_data(data)
    out: list[m.Event] = []
    while True:
        event = codec.next_event()
        out.append(event)
        if event is m.NEED_DATA or event is m.CLOSED:
            return out
        if isinstance(event, m.RequestError) and event.close:
            return out


def decode(data: bytes) -> m.Event:
    got = events(data)
    assert got[1:] == [m.NEED_DATA], got
    return got[0]


# ---------------------------------------------------------------- golden packets


def test_node_first_packet() -> None:
    assert decode(NODE_FIRST_PACKET) == m.PingRequest(3, 41, "mycache", 0, "text/plain", "text/plain")


def test_node_put_with_lifespan_and_previous() -> None:
    event = decode(NODE_PUT_WITH_LIFESPAN)
    assert event == m.PutRequest(6, 41, "c1", 1, "text/plain", "text/plain", b"k", b"v", 10_000, 500)
    assert isinstance(event, m.PutRequest)
    assert event.force_return_value


def test_one_byte_at_a_time() -> None:
    codec = HotRodServerCodec()
    data = NODE_PUT_WITH_LIFESPAN
    for index, byte in enumerate(data):
        assert codec.next_event() is m.NEED_DATA
        codec.receive_data(bytes((byte,)))
        if index < len(data) - 1:
            assert codec.next_event() is m.NEED_DATA
    assert isinstance(codec.next_event(), m.PutRequest)
    assert codec.next_event() is m.NEED_DATA


def test_pipelined_frames_in_one_receive_and_split_across_receives() -> None:
    data = NODE_FIRST_PACKET + NODE_PUT_WITH_LIFESPAN + frame(op.GET, write_bytes(b"k"), mid=7)
    codec = HotRodServerCodec()
    codec.receive_data(data[:30])
    assert isinstance(codec.next_event(), m.PingRequest)
    assert codec.next_event() is m.NEED_DATA
    codec.receive_data(data[30:])
    assert isinstance(codec.next_event(), m.PutRequest)
    assert codec.next_event() == m.GetRequest(7, 41, "", 0, "text/plain", "text/plain", b"k")
    assert codec.next_event() is m.NEED_DATA
    assert codec.buffered == 0


def test_eof() -> None:
    codec = HotRodServerCodec()
    codec.receive_data(NODE_FIRST_PACKET + NODE_FIRST_PACKET[:5])
    codec.receive_data(b"")
    assert isinstance(codec.next_event(), m.PingRequest)
    assert codec.next_event() is m.CLOSED
    assert codec.next_event() is m.CLOSED


# ---------------------------------------------------------------- headers per version


def test_v30_header_has_no_other_params() -> None:
    data = frame(op.GET, write_bytes(b"k"), version=30, cache="c")
    assert decode(data) == m.GetRequest(1, 30, "c", 0, "text/plain", "text/plain", b"k")


def test_header_other_params_are_skipped() -> None:
    data = header(op.PING, version=40)[:-1] + b"\x02" + write_string("a") + write_bytes(b"xyz")
    data += write_string("b") + write_bytes(b"")
    assert isinstance(decode(data), m.PingRequest)


def test_json_and_absent_media_types() -> None:
    data = frame(op.PING, key_type=b"\x00", value_type=b"\x01\x02\x00")
    assert decode(data) == m.PingRequest(1, 41, "", 0, "", "application/json")


@pytest.mark.parametrize("version", [22, 25, 29, 42, 10])
def test_unserved_version_is_rejected_but_connection_kept(version: int) -> None:
    data = frame(op.PING, version=version) + NODE_FIRST_PACKET
    got = events(data)
    assert got[0] == m.RequestError(1, version, op.UNKNOWN_VERSION, got[0].text, False, op.PING)  # type: ignore[union-attr]
    assert "Unknown version" in got[0].text  # type: ignore[union-attr]
    assert isinstance(got[1], m.PingRequest)


def test_unserved_version_with_a_body_is_skipped() -> None:
    data = frame(op.PUT, kv(b"k", 0x77, b"v"), version=29) + NODE_FIRST_PACKET
    got = events(data)
    assert isinstance(got[0], m.RequestError)
    assert got[0].status == op.UNKNOWN_VERSION
    assert isinstance(got[1], m.PingRequest)


# ---------------------------------------------------------------- every implemented op


def H(opcode: int, body: bytes = b"", **kw: object) -> bytes:
    return frame(opcode, body, mid=9, cache="c", **kw)


HDR = (9, 41, "c", 0, "text/plain", "text/plain")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (H(op.PING), m.PingRequest(*HDR)),
        (H(op.GET, write_bytes(b"k")), m.GetRequest(*HDR, b"k")),
        (H(op.GET_WITH_VERSION, write_bytes(b"k")), m.GetWithVersionRequest(*HDR, b"k")),
        (H(op.GET_WITH_METADATA, write_bytes(b"k")), m.GetWithMetadataRequest(*HDR, b"k")),
        (H(op.CONTAINS_KEY, write_bytes(b"k")), m.ContainsKeyRequest(*HDR, b"k")),
        (H(op.REMOVE, write_bytes(b"k")), m.RemoveRequest(*HDR, b"k")),
        (
            H(op.REMOVE_IF_UNMODIFIED, write_bytes(b"k") + write_long(-5)),
            m.RemoveIfUnmodifiedRequest(*HDR, b"k", -5),
        ),
        (H(op.PUT, kv(b"k", 0x77, b"v")), m.PutRequest(*HDR, b"k", b"v", None, None)),
        (H(op.PUT_IF_ABSENT, kv(b"k", 0x88, b"v")), m.PutIfAbsentRequest(*HDR, b"k", b"v", -1, -1)),
        (H(op.REPLACE, kv(b"k", 0x48, b"v", b"\x02")), m.ReplaceRequest(*HDR, b"k", b"v", 120_000, -1)),
        (
            H(op.REPLACE_IF_UNMODIFIED, kv(b"k", 0x78, b"v", write_long(42))),
            m.ReplaceIfUnmodifiedRequest(*HDR, b"k", b"v", None, -1, 42),
        ),
        (H(op.CLEAR), m.ClearRequest(*HDR)),
        (H(op.SIZE), m.SizeRequest(*HDR)),
        (H(op.STATS), m.StatsRequest(*HDR)),
        (
            H(
                op.PUT_ALL,
                b"\x77\x02" + write_bytes(b"a") + write_bytes(b"1") + write_bytes(b"b") + write_bytes(b""),
            ),
            m.PutAllRequest(*HDR, ((b"a", b"1"), (b"b", b"")), None, None),
        ),
        (H(op.GET_ALL, b"\x02" + write_bytes(b"a") + write_bytes(b"b")), m.GetAllRequest(*HDR, (b"a", b"b"))),
        (H(op.BULK_GET, b"\x05"), m.BulkGetRequest(*HDR, 5)),
        (H(op.BULK_GET_KEYS, b"\x00"), m.BulkGetKeysRequest(*HDR, 0)),
        (
            H(op.ITERATION_START, b"\x01\x01\x0a\x01"),
            m.IterationStartRequest(*HDR, None, None, (), 10, True),
        ),
        (
            H(op.ITERATION_START, write_signed_vint(2) + b"\x05\x80" + b"\x01\x64\x00"),
            m.IterationStartRequest(*HDR, (0, 2, 15), None, (), 100, False),
        ),
        (
            H(
                op.ITERATION_START,
                b"\x01" + write_signed_vint(1) + b"f" + b"\x01" + write_bytes(b"p") + b"\x0a\x00",
            ),
            m.IterationStartRequest(*HDR, None, "f", (b"p",), 10, False),
        ),
        (H(op.ITERATION_NEXT, write_string("it-1")), m.IterationNextRequest(*HDR, "it-1")),
        (H(op.ITERATION_END, write_string("it-1")), m.IterationEndRequest(*HDR, "it-1")),
        (H(op.AUTH_MECH_LIST), m.AuthMechListRequest(*HDR)),
        (
            H(op.AUTH, write_string("PLAIN") + write_bytes(b"\x00bob\x00secret")),
            m.AuthRequest(*HDR, "PLAIN", b"\x00bob\x00secret"),
        ),
    ],
)
def test_decode_every_op(data: bytes, expected: m.Request) -> None:
    assert decode(data) == expected
    # And again one byte at a time, to prove every field is read transactionally.
    codec = HotRodServerCodec()
    for byte in data[:-1]:
        codec.receive_data(bytes((byte,)))
        assert codec.next_event() is m.NEED_DATA
    codec.receive_data(data[-1:])
    assert codec.next_event() == expected


@pytest.mark.parametrize(
    ("units", "extra", "lifespan", "max_idle"),
    [
        (0x77, b"", None, None),
        (0x88, b"", -1, -1),
        (0x01, b"\x0a\xf4\x03", 10_000, 500),
        (0x23, write_vlong(10_000_000) + write_vlong(1_000_000_000), 10, 1_000_000),  # ns, us
        (0x56, b"\x01\x01", 3_600_000, 86_400_000),
        (0x47, b"\x02", 120_000, None),
        (0x80, b"\x05", -1, 5_000),
    ],
)
def test_expiration_units(units: int, extra: bytes, lifespan: int | None, max_idle: int | None) -> None:
    event = decode(frame(op.PUT, kv(b"k", units, b"v", extra)))
    assert isinstance(event, m.PutRequest)
    assert (event.lifespan_ms, event.max_idle_ms) == (lifespan, max_idle)


def test_default_flags_override_explicit_expiration() -> None:
    flags = op.DEFAULT_LIFESPAN | op.DEFAULT_MAXIDLE
    event = decode(frame(op.PUT, kv(b"k", 0x00, b"v", b"\x05\x05"), flags=flags))
    assert isinstance(event, m.PutRequest)
    assert (event.lifespan_ms, event.max_idle_ms) == (None, None)


def test_invalid_time_unit_is_an_error_but_frame_is_consumed() -> None:
    got = events(frame(op.PUT, kv(b"k", 0x97, b"v", b"\x05"), mid=4) + NODE_FIRST_PACKET)
    assert isinstance(got[0], m.RequestError)
    assert (got[0].message_id, got[0].status, got[0].close) == (4, op.PARSE_ERROR, False)
    assert isinstance(got[1], m.PingRequest)


def test_segments_from_mask() -> None:
    assert segments_from_mask(b"") == ()
    assert segments_from_mask(b"\x01\x00\x80") == (0, 23)
    assert segments_from_mask(b"\xff" * 40) == tuple(range(256))


# ---------------------------------------------------------------- unsupported and unknown ops

UNSUPPORTED_BODIES = [
    (op.QUERY, write_bytes(b"protobuf")),
    (op.ROLLBACK_TX, write_signed_vint(-3) + b"\x02gt\x01b"),
    (op.COMMIT_TX, write_signed_vint(1) + b"\x00\x00"),
    (
        op.PREPARE_TX_2,
        write_signed_vint(1)
        + b"\x01g\x01b"
        + b"\x01\x00"
        + write_long(60000)
        + b"\x03"
        + write_bytes(b"k1")
        + b"\x00"
        + write_long(1)
        + b"\x77"
        + write_bytes(b"v")  # read + write
        + write_bytes(b"k2")
        + b"\x05"  # non-existing, remove
        + write_bytes(b"k3")
        + b"\x01"
        + b"\x77"
        + write_bytes(b"v3"),  # not read, write
    ),
    (op.FETCH_TX_RECOVERY, b""),
    (op.COUNTER_ADD_LISTENER, write_string("c") + write_bytes(b"listener")),
    (op.COUNTER_REMOVE_LISTENER, write_string("c") + write_bytes(b"listener")),
]


def test_listener_requests_are_decoded() -> None:
    body = write_string("listener_7") + b"\x01" + write_string("ff") + b"\x01" + write_bytes(b"x")
    body += b"\x00\x00\x0f"  # no converter, raw data off, interests: all four
    got = events(
        frame(op.ADD_CLIENT_LISTENER, body, mid=4)
        + frame(op.REMOVE_CLIENT_LISTENER, write_bytes(b"l"), mid=5)
    )
    add, remove = got[0], got[1]
    assert isinstance(add, m.AddListenerRequest)
    assert (add.listener_id, add.include_state, add.filter_factory, add.converter_factory) == (
        b"listener_7",
        True,
        "ff",
        None,
    )
    assert (add.use_raw_data, add.interests) == (False, 0x0F)
    assert isinstance(remove, m.RemoveListenerRequest)
    assert remove.listener_id == b"l"


def test_exec_is_decoded_with_its_parameters() -> None:
    body = write_string("@@cache@create") + b"\x02" + write_string("name") + write_bytes(b"c1")
    body += write_string("template") + write_bytes(b"t")
    got = events(frame(op.EXEC, body, mid=9) + NODE_FIRST_PACKET)
    exec_request = got[0]
    assert isinstance(exec_request, m.ExecRequest)
    assert exec_request.message_id == 9
    assert exec_request.task == "@@cache@create"
    assert exec_request.params == (("name", b"c1"), ("template", b"t"))
    assert isinstance(got[1], m.PingRequest)


@pytest.mark.parametrize(("opcode", "body"), UNSUPPORTED_BODIES)
def test_known_unsupported_ops_are_skipped_exactly(opcode: int, body: bytes) -> None:
    got = events(frame(opcode, body, mid=5) + NODE_FIRST_PACKET)
    assert isinstance(got[0], m.UnsupportedRequest)
    assert (got[0].message_id, got[0].opcode) == (5, opcode)
    assert isinstance(got[1], m.PingRequest)
    assert got[2] is m.NEED_DATA


@pytest.mark.parametrize("trailing_flag", [b"\x00", b"\x01", b""])
def test_multimap_duplicates_byte_at_3x_is_optional(trailing_flag: bytes) -> None:
    data = frame(op.MULTIMAP_GET, write_bytes(b"k") + trailing_flag, version=31) + NODE_FIRST_PACKET
    got = events(data)
    assert isinstance(got[0], m.MultimapGetRequest)
    assert (got[0].key, got[0].duplicates) == (b"k", False)  # 3.x never supports duplicates
    assert isinstance(got[1], m.PingRequest)


def test_unknown_opcode_answers_and_closes() -> None:
    codec = HotRodServerCodec()
    codec.receive_data(b"\xa0\x07\x29\xe5whatever")
    event = codec.next_event()
    assert isinstance(event, m.RequestError)
    assert (event.message_id, event.status, event.close) == (7, op.UNKNOWN_OPERATION, True)
    with pytest.raises(RemoteProtocolError):
        codec.next_event()


def test_bad_magic_answers_and_closes() -> None:
    got = events(NODE_FIRST_PACKET + b"\x42rest")
    assert isinstance(got[0], m.PingRequest)
    assert isinstance(got[1], m.RequestError)
    assert (got[1].message_id, got[1].status, got[1].close) == (0, op.INVALID_MAGIC_OR_MESSAGE_ID, True)


def test_unknown_media_type_kind_closes() -> None:
    data = header(op.PING, key_type=b"\x09")
    got = events(data)
    assert isinstance(got[0], m.RequestError)
    assert (got[0].message_id, got[0].status, got[0].close) == (1, op.PARSE_ERROR, True)


# ---------------------------------------------------------------- limits

SMALL = Limits(max_key_bytes=16, max_value_bytes=64, max_frame_bytes=1024)


def test_oversize_value_is_skipped_and_connection_kept() -> None:
    big = b"x" * 500
    data = frame(op.PUT, kv(b"k", 0x77, big), mid=3) + NODE_FIRST_PACKET
    got = events(data, SMALL)
    assert isinstance(got[0], m.RequestError)
    assert (got[0].message_id, got[0].status, got[0].close) == (3, op.PARSE_ERROR, False)
    assert "Value of 500 bytes exceeds the limit of 64 bytes" in got[0].text
    assert isinstance(got[1], m.PingRequest)


def test_oversize_value_is_dropped_while_it_streams_in() -> None:
    big = b"x" * 5000  # larger than the frame limit too: it must never be buffered
    data = frame(op.PUT, kv(b"k", 0x77, big), mid=3) + NODE_FIRST_PACKET
    codec = HotRodServerCodec(SMALL)
    seen: list[m.Event] = []
    for start in range(0, len(data), 100):
        codec.receive_data(data[start : start + 100])
        assert codec.buffered < 200
        while (event := codec.next_event()) is not m.NEED_DATA:
            seen.append(event)
    assert isinstance(seen[0], m.RequestError)
    assert seen[0].status == op.PARSE_ERROR
    assert isinstance(seen[1], m.PingRequest)


def test_oversize_key_in_the_middle_of_put_all() -> None:
    body = b"\x77\x03" + write_bytes(b"a") + write_bytes(b"1")
    body += write_bytes(b"K" * 40) + write_bytes(b"2") + write_bytes(b"c") + write_bytes(b"3")
    got = events(frame(op.PUT_ALL, body) + NODE_FIRST_PACKET, SMALL)
    assert isinstance(got[0], m.RequestError)
    assert "Key of 40 bytes" in got[0].text
    assert isinstance(got[1], m.PingRequest)


def test_incomplete_frame_over_the_frame_limit_closes() -> None:
    body = b"\x77" + b"\x7f" + (write_bytes(b"k") + write_bytes(b"v" * 60)) * 30
    got = events(frame(op.PUT_ALL, body, mid=11), SMALL)
    assert isinstance(got[0], m.RequestError)
    assert (got[0].message_id, got[0].status, got[0].close) == (11, op.PARSE_ERROR, True)


# ---------------------------------------------------------------- robustness


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_only_events(data: bytes) -> None:
    codec = HotRodServerCodec(SMALL)
    codec.receive_data(data)
    codec.receive_data(b"")
    for _ in range(len(data) + 2):
        event = codec.next_event()
        if event is m.CLOSED or (isinstance(event, m.RequestError) and event.close):
            break
    else:
        pytest.fail("codec did not terminate")


@settings(max_examples=200)
@given(st.binary(max_size=60), st.integers(min_value=1, max_value=7))
def test_arbitrary_bytes_after_a_valid_header(tail: bytes, chunk: int) -> None:
    data = header(op.PUT) + tail
    codec = HotRodServerCodec(SMALL)
    try:
        for start in range(0, len(data), chunk):
            codec.receive_data(data[start : start + chunk])
            while (event := codec.next_event()) is not m.NEED_DATA:
                assert isinstance(event, m.Request | m.RequestError)
    except RemoteProtocolError:
        pass


@settings(max_examples=100)
@given(
    st.lists(
        st.sampled_from([NODE_FIRST_PACKET, NODE_PUT_WITH_LIFESPAN, H(op.GET, write_bytes(b"k"))]), max_size=6
    ),
    st.integers(min_value=1, max_value=50),
)
def test_any_split_gives_the_same_events(frames: list[bytes], chunk: int) -> None:
    data = b"".join(frames)
    if not data:
        return
    expected = [e for e in events(data) if e is not m.NEED_DATA]
    codec = HotRodServerCodec()
    got: list[m.Event] = []
    for start in range(0, len(data), chunk):
        codec.receive_data(data[start : start + chunk])
        while (event := codec.next_event()) is not m.NEED_DATA:
            got.append(event)
    assert got == expected
    assert len(got) == len(frames)


def test_text_plain_constant_matches_notes() -> None:
    assert bytes.fromhex("010d00") == TEXT_PLAIN


# ---------------------------------------------------------------- the common-header fast path


def _general_path_events(data: bytes, limits: Limits | None, chunk: int) -> list[m.Event]:
    codec = HotRodServerCodec(limits)
    codec._parse_common_header = lambda data, pos: None  # type: ignore[method-assign]
    return _chunked_events(codec, data, chunk)


def _chunked_events(codec: HotRodServerCodec, data: bytes, chunk: int) -> list[m.Event]:
    got: list[m.Event] = []
    try:
        for start in range(0, len(data), chunk):
            codec.receive_data(data[start : start + chunk])
            while (event := codec.next_event()) is not m.NEED_DATA:
                got.append(event)
                if isinstance(event, m.RequestError) and event.close:
                    return got
    except RemoteProtocolError as exc:
        got.append(m.RequestError(exc.message_id, 0, exc.status, str(exc), True))
    return got


def test_the_fast_path_takes_a_plain_get() -> None:
    codec = HotRodServerCodec()
    data = frame(op.GET, write_bytes(b"k"), cache="c1", key_type=b"\x00", value_type=b"\x00")
    taken = codec._parse_common_header(data, 0)
    assert taken is not None
    _parser, header_fields, body_pos = taken
    assert header_fields == (1, 41, "c1", 0, "", "")
    assert data[body_pos:] == write_bytes(b"k")


@pytest.mark.parametrize(
    "variant",
    [
        {"mid": 200},  # two-byte message id
        {"version": 31},  # 3.x has no header parameters
        {"flags": 0x80},  # two-byte flags
        {"key_type": TEXT_PLAIN, "value_type": b"\x00"},
        {"version": 42},  # not served
        {"cache": "x" * 200},  # two-byte name length
    ],
)
def test_the_fast_path_leaves_other_headers_to_the_general_path(variant: dict[str, object]) -> None:
    data = frame(op.GET, write_bytes(b"k"), **{"key_type": b"\x00", "value_type": b"\x00", **variant})
    assert HotRodServerCodec()._parse_common_header(data, 0) is None


@settings(max_examples=300)
@given(
    st.sampled_from([op.GET, op.PUT, op.REMOVE, op.PING, op.CONTAINS_KEY, op.GET_WITH_METADATA, 0x7F]),
    st.integers(min_value=0, max_value=300),
    st.sampled_from([30, 31, 40, 41, 42]),
    st.text(max_size=3),
    st.integers(min_value=0, max_value=0x90),
    st.sampled_from([b"\x00", TEXT_PLAIN]),
    st.binary(max_size=40),
    st.integers(min_value=1, max_value=9),
)
def test_the_fast_path_gives_what_the_general_path_gives(
    opcode: int, mid: int, version: int, cache: str, flags: int, media: bytes, tail: bytes, chunk: int
) -> None:
    media_types = {"key_type": media, "value_type": media}
    data = frame(opcode, tail, mid=mid, version=version, cache=cache, flags=flags, **media_types)
    data += data  # a second frame right behind the first
    expected = _general_path_events(data, SMALL, chunk)
    assert _chunked_events(HotRodServerCodec(SMALL), data, chunk) == expected
