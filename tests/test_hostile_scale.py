"""Hostile SIP over TCP at scale, through the whole engine (capture file to report).

test_framing.py proves the framer alone stays bounded; here the same inputs
go through pcap reading, TCP reassembly and the analyses, and the report must
say what the SIP layer could not read. The 30 MB stream is written to a file
segment by segment, so the test itself never holds it.
"""

from __future__ import annotations

import tracemalloc

from packet_builders import ethernet, ipv4, pcap_pieces, tcp
from sipdiag.engine import analyze_path
from sipdiag.protocols.sip import MAX_HEADER_BLOCK

NEXT = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: next\r\nCSeq: 2 OPTIONS\r\nContent-Length: 0\r\n\r\n"
SEGMENT = 60_000  # under the IPv4 length limit and the pcap snap length


def write_stream(path, pieces) -> None:
    """A pcap of one TCP direction to port 5060 carrying the pieces' bytes, cut into segments."""

    def records():
        seq, pending, frame = 1, b"", 0
        for piece in [*pieces, None]:
            pending += piece or b""
            while len(pending) >= SEGMENT or (piece is None and pending):
                payload, pending = pending[:SEGMENT], pending[SEGMENT:]
                packet = ethernet(ipv4(tcp(payload, seq), protocol=6))
                yield 1000 + frame // 1000, frame % 1000, packet, len(packet)
                seq, frame = seq + len(payload), frame + 1

    with open(path, "wb") as out:
        out.writelines(pcap_pieces(records()))


def report_of(tmp_path, pieces) -> tuple[dict, int]:
    path = tmp_path / "hostile.pcap"
    write_stream(path, pieces)
    tracemalloc.start()
    report = analyze_path(str(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return report, peak


CUT = (f"header block longer than {MAX_HEADER_BLOCK} bytes: the message is cut after %d bytes, "
       "and its rest skipped up to the next SIP start line")


def test_thirty_megabytes_without_a_line_end_are_skipped_and_said(tmp_path):
    start = b"INVITE sip:b@h SIP/2.0\r\n"
    report, peak = report_of(tmp_path, [start + b"X: ", *[b"a" * (1 << 20)] * 30, b"\r\n\r\n", NEXT])
    assert peak < 64 << 20  # a bounded buffer, never the 30 MB stream
    cut, after = report["sip_messages"]
    assert cut["errors"][0] == CUT % len(start) and after["call_id"] == "next"
    skipped = 3 + (30 << 20) + 2  # the head's rest, the a's and their line end; the blank line is a keep-alive
    assert report["capture"]["warnings"] == [
        f"SIP over TCP: {skipped} bytes in 1 place start no SIP message and were skipped to the next start line "
        "(first: frame 2, 10.0.0.1:40000 \u2192 10.0.0.2:5060)"]


def test_100000_via_headers_keep_the_first_64_kb_and_the_next_message(tmp_path):
    via = b"Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK%06d\r\n"
    vias = b"".join(via % n for n in range(100_000))
    report, peak = report_of(tmp_path, [b"INVITE sip:b@h SIP/2.0\r\n", vias, b"Call-ID: many\r\n\r\n", NEXT])
    assert peak < 64 << 20
    cut, after = report["sip_messages"]
    assert cut["method"] == "INVITE" and cut["errors"][0] == CUT % (24 + 1236 * len(via % 0))
    assert after["call_id"] == "next" and report["capture"]["warnings"][0].startswith("SIP over TCP: ")


def test_a_one_megabyte_header_line_is_cut_before_it(tmp_path):
    start = b"INVITE sip:b@h SIP/2.0\r\nCall-ID: long\r\n"
    report, _peak = report_of(tmp_path, [start, b"X-Long: ", b"z" * (1 << 20), b"\r\nCSeq: 1 INVITE\r\n\r\n", NEXT])
    cut, after = report["sip_messages"]
    assert (cut["call_id"], cut["errors"][0]) == ("long", CUT % len(start))
    assert after["call_id"] == "next" and report["capture"]["warnings"][0].startswith("SIP over TCP: ")
