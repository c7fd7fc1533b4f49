"""SIP over TCP framing: nothing vanishes silently, memory stays bounded.

A message the framer cannot take whole (a head over 64 KB, a Content-Length
that overruns the next message, one that is negative, not a number or absurd)
is kept with what could be read and an error, and framing picks up at the next
start line without losing that message. Each stream is framed whole, byte by
byte and cut everywhere (h11 style): the messages must not depend on the
chunking. Then the same through TCP reassembly and the engine, frames included.
"""

from __future__ import annotations

import time
import tracemalloc
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packet_builders import INVITE, OK_200, ethernet, ipv4, pcap, tcp, udp
from sipdiag.engine import CaptureAnalysis
from sipdiag.protocols.sip import MAX_BODY, MAX_HEADER_BLOCK, SipStreamFramer, parse_message
from test_packets import decode

NEXT = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: next\r\nCSeq: 2 OPTIONS\r\nContent-Length: 0\r\n\r\n"


def head(length: bytes, content_type: bytes = b"text/plain") -> bytes:
    return (b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: bad\r\nCSeq: 1 MESSAGE\r\nContent-Type: " + content_type
            + b"\r\nContent-Length: " + length + b"\r\n\r\n")


def framed(chunks) -> list[tuple[bytes, list[str]]]:
    framer = SipStreamFramer()
    messages = [m for chunk in chunks for m in framer.feed(chunk)] + framer.close()
    return [(m.data, m.errors) for m in messages]


def every_way(stream: bytes) -> list[tuple[bytes, list[str]]]:
    """The messages of a stream fed whole; byte by byte and cut at every point give the same."""
    whole = framed([stream])
    assert framed([stream[i : i + 1] for i in range(len(stream))]) == whole
    for cut in range(len(stream) + 1):
        assert framed([stream[:cut], stream[cut:]]) == whole, cut
    return whole


# ------------------------------------------------------------------ Content-Length


def test_content_length_larger_than_the_body_ends_at_the_next_start_line():
    bad = head(b"500") + b"hello\r\n"
    assert every_way(bad + NEXT) == [
        (bad, ["the next SIP message starts 7 bytes into the 500-byte body Content-Length announces: "
               "the body ends there"]),
        (NEXT, []),
    ]
    message = parse_message(bad)  # what the engine then reads: the message, the body it had
    assert (message.call_id, message.body) == ("bad", b"hello\r\n")
    assert message.errors == ["body shorter than Content-Length (7 of 500 bytes)"]


def test_content_length_with_no_body_at_all_keeps_the_next_message():
    bad = head(b"300")
    assert every_way(bad + NEXT)[1] == (NEXT, [])


@pytest.mark.parametrize(("length", "why"), [
    (b"-5", "Content-Length '-5' is not a length"),
    (b"ten", "Content-Length 'ten' is not a length"),
    (b"", "Content-Length '' is not a length"),
    (b"2000000", f"Content-Length 2000000 is over the {MAX_BODY}-byte limit"),
])
def test_unusable_content_length_takes_the_body_up_to_the_next_start_line(length, why):
    bad = head(length) + b"abc\r\n"
    assert every_way(bad + NEXT) == [
        (bad, [f"{why}: the body is taken up to the next SIP start line (5 bytes)"]),
        (NEXT, []),
    ]


def test_unusable_content_length_at_the_end_of_the_stream():
    bad = head(b"-1") + b"abc"
    assert every_way(bad) == [
        (bad, ["Content-Length '-1' is not a length: the body is taken up to the end of the stream (3 bytes)"])]


def test_unusable_content_length_and_no_start_line_stops_at_the_body_limit():
    body = (b"x" * 1000 + b"\r\n") * (MAX_BODY // 1002 + 2)
    stream = head(b"many") + body + NEXT
    messages = framed([stream[i : i + 4096] for i in range(0, len(stream), 4096)])
    assert messages == framed([stream])
    (bad, errors), (after, _) = messages
    assert len(bad) == len(head(b"many")) + MAX_BODY and after == NEXT
    assert errors == [f"Content-Length 'many' is not a length: the body is taken up to the {MAX_BODY}-byte limit, "
                      f"and the rest skipped up to the next SIP start line ({MAX_BODY} bytes)"]


def test_correct_content_length_is_trusted_across_segments():
    assert every_way(INVITE + OK_200 + b"\r\n\r\n" + INVITE) == [(INVITE, []), (OK_200, []), (INVITE, [])]


# ------------------------------------------------------------------ bodies that carry SIP


SIPFRAG = b"SIP/2.0 200 OK\r\n"


def test_a_sipfrag_body_is_content_not_the_next_message():
    notify = head(b"%d" % len(SIPFRAG), b"message/sipfrag;version=2.0") + SIPFRAG
    assert every_way(notify + NEXT) == [(notify, []), (NEXT, [])]


def test_a_multipart_part_holding_a_sip_message_is_content():
    body = (b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: message/sipfrag\r\n\r\n"
            + SIPFRAG + b"--b--\r\n")
    message = head(b"%d" % len(body), b"multipart/mixed;boundary=b") + body
    assert every_way(message + NEXT) == [(message, []), (NEXT, [])]


def test_a_sipfrag_body_whose_length_overruns_still_gives_back_the_next_message():
    notify = head(b"400", b"message/sipfrag") + SIPFRAG
    assert every_way(notify + NEXT) == [
        (notify, ["the next SIP message starts 16 bytes into the 400-byte body Content-Length announces: "
                  "the body ends there"]),
        (NEXT, []),
    ]


# ------------------------------------------------------------------ heads over the limit


def test_100000_via_headers_are_cut_at_the_limit_and_the_next_message_survives():
    via = b"Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK%06d\r\n"
    vias = b"".join(via % n for n in range(100_000))
    stream = b"INVITE sip:b@h SIP/2.0\r\n" + vias + b"Call-ID: many-vias\r\nContent-Length: 0\r\n\r\n" + NEXT
    started = time.perf_counter()
    tracemalloc.start()
    framer = SipStreamFramer()
    view = memoryview(stream)
    messages = [m for i in range(0, len(stream), 1 << 20) for m in framer.feed(view[i : i + (1 << 20)])]
    messages += framer.close()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - started < 10
    assert peak < 4 << 20  # the framer held about one head, never the 5 MB stream
    cut, after = messages
    assert len(cut.data) <= MAX_HEADER_BLOCK and cut.data.endswith(b"\r\n")
    assert cut.errors == [f"header block longer than {MAX_HEADER_BLOCK} bytes: the message is cut after "
                          f"{len(cut.data)} bytes, and its rest skipped up to the next SIP start line"]
    message = parse_message(cut.data)
    assert message.method == "INVITE" and len(message.vias) == (len(cut.data) - 24) // len(via % 0) == 1236
    assert (after.data, after.errors) == (NEXT, [])
    assert framer.take_skipped() == (1, len(stream) - len(cut.data) - len(NEXT) - 2)


def test_a_one_megabyte_header_line():
    start = b"INVITE sip:b@h SIP/2.0\r\nCall-ID: long\r\n"
    stream = start + b"X-Long: " + b"z" * (1 << 20) + b"\r\nCSeq: 1 INVITE\r\n\r\n" + NEXT
    messages = framed([stream[i : i + 1500] for i in range(0, len(stream), 1500)])
    assert messages == framed([stream])
    assert messages == [
        (start, [f"header block longer than {MAX_HEADER_BLOCK} bytes: the message is cut after {len(start)} bytes, "
                 "and its rest skipped up to the next SIP start line"]),
        (NEXT, []),
    ]


def test_a_head_just_within_the_limit_is_whole():
    start = b"INVITE sip:b@h SIP/2.0\r\n"
    filler = b"X-Fill: " + b"f" * (MAX_HEADER_BLOCK - len(start) - 12) + b"\r\n"
    message = start + filler + b"\r\n"
    assert len(message) == MAX_HEADER_BLOCK
    assert framed([message + NEXT]) == [(message, []), (NEXT, [])]
    longer = start + b"X" + filler + b"\r\n"  # one byte more: cut after its last complete line
    assert framed([longer + NEXT]) == [(longer[:-2], [
        f"header block longer than {MAX_HEADER_BLOCK} bytes: the message is cut after {len(longer) - 2} bytes, "
        "and its rest skipped up to the next SIP start line"]), (NEXT, [])]


@pytest.mark.parametrize("starts_as_sip", [True, False])
def test_thirty_megabytes_without_a_line_end_stay_bounded(starts_as_sip):
    first = b"INVITE sip:b@h SIP/2.0\r\nX: " if starts_as_sip else b""
    stream = first + b"a" * (30 << 20) + b"\r\n\r\n" + NEXT
    view = memoryview(stream)
    started = time.perf_counter()
    tracemalloc.start()
    framer = SipStreamFramer()
    messages = [m for i in range(0, len(stream), 1 << 20) for m in framer.feed(view[i : i + (1 << 20)])]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - started < 10
    assert peak < 4 << 20
    assert [m.data for m in messages] == ([b"INVITE sip:b@h SIP/2.0\r\n"] if starts_as_sip else []) + [NEXT]
    # Skipped: the rest of the head ("X: "), the a's and their line end; the blank line is a keep-alive.
    assert framer.take_skipped() == (1, len(stream) - len(first) - 2 - len(NEXT) + (3 if starts_as_sip else 0))


# ------------------------------------------------------------------ holes, end, junk


def test_bytes_missing_from_the_capture_end_the_open_message_and_framing_resumes():
    framer = SipStreamFramer()
    assert framer.feed(INVITE[:100], "first") == []
    [cut] = framer.gap()
    assert (cut.data, cut.tag) == (INVITE[:100], "first")
    assert cut.errors == ["bytes of the stream are missing here (not captured): the message is incomplete"]
    # After the hole: the rest of some message, then a whole one.
    assert [(m.data, m.errors) for m in framer.feed(b"=IN IP4 10.0.0.1\r\nm=audio 4000\r\n" + NEXT)] == [(NEXT, [])]
    assert framer.take_skipped() == (1, 18 + 14)


def test_a_hole_between_messages_loses_nothing_after_it():
    framer = SipStreamFramer()
    assert [m.data for m in framer.feed(NEXT)] == [NEXT]
    assert framer.gap() == []
    assert [m.data for m in framer.feed(INVITE)] == [INVITE]


@pytest.mark.parametrize("cut", [60, len(INVITE) - 5])  # in the head, in the body
def test_the_end_of_the_stream_gives_back_the_open_message(cut):
    assert every_way(NEXT + INVITE[:cut]) == [
        (NEXT, []), (INVITE[:cut], ["the stream ends before this message is complete"])]


def test_a_start_line_cut_before_its_end_is_not_a_message():
    framer = SipStreamFramer()
    assert framer.feed(NEXT + INVITE[:30]) != [] and framer.close() == []
    assert framer.take_skipped() == (1, 30)


def test_junk_is_skipped_line_by_line_and_counted_as_stretches():
    framer = SipStreamFramer()
    stream = b"garbage\r\n" + NEXT + b"\x00\x01\x02 binary\n" + b"more junk\r\n" + NEXT
    assert [m.data for m in framer.feed(stream)] == [NEXT, NEXT]
    assert framer.take_skipped() == (2, 9 + 11 + 11)
    assert framer.take_skipped() == (0, 0)


def test_trailing_data_waits_for_more():
    framer = SipStreamFramer()
    assert [m.data for m in framer.feed(NEXT + INVITE[:50])] == [NEXT]
    assert [m.data for m in framer.feed(INVITE[50:])] == [INVITE]


# ------------------------------------------------------------------ which chunk a message belongs to


def test_a_message_carries_the_tag_of_the_chunk_with_its_last_byte():
    bad = head(b"500") + b"hello\r\n"
    framer = SipStreamFramer()
    assert framer.feed(bad[:10], 1) == [] and framer.feed(bad[10:], 2) == []
    # Only the next message shows where the first one ended: it still belongs to chunk 2.
    assert [(m.data, m.tag) for m in framer.feed(NEXT, 3)] == [(bad, 2), (NEXT, 3)]


def test_tags_stay_bounded_when_a_body_trickles_in():
    body = b"b" * 100_000
    stream = head(b"%d" % len(body)) + body
    framer = SipStreamFramer()
    tracemalloc.start()
    messages = [m for index in range(len(stream)) for m in framer.feed(stream[index : index + 1], (index,))]
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert [(m.data, m.tag) for m in messages] == [(stream, (len(stream) - 1,))]
    assert held < 300_000  # not one tag per byte: at most MAX_TAGS of them


# ------------------------------------------------------------------ any chunking, any damage

PIECES = [
    INVITE, OK_200, NEXT, b"\r\n\r\n", b"junk line\r\n", head(b"900") + b"short\r\n", head(b"-3"), head(b"x") + b"y\n",
    head(b"16", b"message/sipfrag") + SIPFRAG, b"SIP/2.0 180 Ringing\nContent-Length: 2\n\nhi",
    b"INVITE sip:x SIP/2.0\r\nX: " + b"q" * 70_000 + b"\r\n\r\n", b"\x80\x00binary\xff\n",
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=8), st.lists(st.integers(0, 200_000), max_size=6))
def test_any_chunking_of_damaged_streams_gives_the_same_messages(pieces, cuts):
    stream = b"".join(pieces)
    points = sorted({0, len(stream), *(cut % (len(stream) + 1) for cut in cuts)})
    assert framed([stream[a:b] for a, b in pairwise(points)]) == framed([stream])


# ------------------------------------------------------------------ through TCP and the engine


def segment(payload: bytes, seq: int, sport: int = 40000) -> tuple[int, bytes]:
    return 1, ethernet(ipv4(tcp(payload, seq, sport=sport), protocol=6))


def rows(result) -> list[tuple]:
    return [(m.frame, m.method or m.status, m.call_id, m.errors) for m in result.sip_messages]


def test_over_tcp_the_overrunning_message_keeps_its_own_frame_and_order():
    bad = head(b"500") + b"hello\r\n"
    udp_options = ethernet(ipv4(udp(NEXT.replace(b"next", b"udp"))))
    result, decoder, _ = decode(segment(bad, 1000), (1, udp_options), segment(NEXT, 1000 + len(bad)))
    decoder.finish()
    assert rows(result) == [
        (1, "MESSAGE", "bad", ["the next SIP message starts 7 bytes into the 500-byte body Content-Length "
                               "announces: the body ends there", "body shorter than Content-Length (7 of 500 bytes)"]),
        (2, "OPTIONS", "udp", []),
        (3, "OPTIONS", "next", []),
    ]


def test_over_tcp_a_hole_never_filled_ends_the_message_and_the_rest_is_read():
    first = INVITE[:-20]  # the segment with its last 20 bytes is lost
    packets = [segment(first, 5000)]
    # The segment holding `rest` is lost; the next messages wait behind the hole until it is given up.
    seq = 5000 + len(INVITE)
    for _ in range(70):
        packets.append(segment(NEXT, seq))
        seq += len(NEXT)
    result, decoder, _ = decode(*packets)
    decoder.finish()
    body = len(parse_message(INVITE).body)
    assert rows(result)[0] == (1, "INVITE", "call-1@10.0.0.1", [
        "bytes of the stream are missing here (not captured): the message is incomplete",
        f"body shorter than Content-Length ({body - 20} of {body} bytes)"])
    assert [row[1:] for row in rows(result)[1:]] == [("OPTIONS", "next", [])] * 70


def test_at_the_end_of_the_capture_segments_behind_a_hole_and_the_open_message_come_out():
    result, decoder, _ = decode(segment(NEXT, 100), segment(INVITE, 100 + len(NEXT) + 50),
                                segment(OK_200[:60], 100 + len(NEXT) + 50 + len(INVITE)))
    assert rows(result) == [(1, "OPTIONS", "next", [])]  # the rest waits behind 50 missing bytes
    decoder.finish()
    assert rows(result) == [
        (1, "OPTIONS", "next", []),
        (2, "INVITE", "call-1@10.0.0.1", []),
        (3, 200, None, ["the stream ends before this message is complete", "no blank line after the headers"]),
    ]


def test_the_engine_reports_skipped_bytes_and_framing_errors():
    bad = head(b"ten") + b"abc\r\n"
    stream = NEXT + b"not sip\r\n" + bad + NEXT
    records = [(1_700_000_000 + n, 0, ethernet(ipv4(tcp(stream[i : i + 40], 7 + i), protocol=6)), 0)
               for n, i in enumerate(range(0, len(stream), 40))]
    capture = pcap([(sec, frac, data, len(data)) for sec, frac, data, _ in records])
    analysis = CaptureAnalysis("framing.pcap")
    analysis.feed(capture)
    report = analysis.finish()
    assert [(m["method"], m["errors"]) for m in report["sip_messages"]] == [
        ("OPTIONS", []),
        ("MESSAGE", ["Content-Length 'ten' is not a length: the body is taken up to the next SIP start line (5 bytes)",
                     "bad Content-Length: 'ten'"]),
        ("OPTIONS", []),
    ]
    assert report["capture"]["warnings"] == [
        "SIP over TCP: 9 bytes in 1 place start no SIP message and were skipped to the next start line "
        "(first: frame 2, 10.0.0.1:40000 → 10.0.0.2:5060)"]
