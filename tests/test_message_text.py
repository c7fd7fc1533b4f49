"""Message text read back from the file on demand equals the text the report carries.

With keep_text=False the engine keeps, for a message whose bytes are one
slice of the file, only where they are; the report leaves the text out and
`CaptureAnalysis.texts()` reads it back. Every capture of the corpus
(pcap and pcapng, gzip, UDP, TCP, WebSocket, SCTP, HEP, fragments) is held to
the default report's text, message by message, and to the same rows otherwise.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest
from locations import FIXTURES, REPO, SHARED_CAPTURES
from sipdiag.capture.scan import READ_CHUNK
from sipdiag.engine import READ_SPAN, CaptureAnalysis, analyze_path, file_reader
from sipdiag.html_report import document

CAPTURES = sorted(p for folder in (SHARED_CAPTURES, FIXTURES) for p in folder.rglob("*")
                  if p.suffix in (".pcap", ".pcapng"))


def lean_analysis(path) -> tuple[CaptureAnalysis, dict]:
    analysis = CaptureAnalysis(os.path.basename(path), keep_text=False)
    with open(path, "rb") as capture:
        while chunk := capture.read(READ_CHUNK):
            analysis.feed(chunk)
    return analysis, analysis.finish()


def every_text(analysis: CaptureAnalysis, rows: list[dict], path) -> list[str | None]:
    read = file_reader(str(path))
    kept = analysis.texts()
    seen: dict[int, int] = {}
    texts = []
    for row in rows:
        index = seen[row["frame"]] = seen.get(row["frame"], -1) + 1
        texts.append(kept.message_text(row["frame"], read, index))
    return texts


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_text_read_back_by_frame_is_the_reports_text(capture):
    full = analyze_path(str(capture))
    analysis, lean = lean_analysis(capture)
    texts = [row["text"] for row in full["sip_messages"]]
    assert every_text(analysis, lean["sip_messages"], capture) == texts
    read = file_reader(str(capture))
    assert sorted(analysis.texts().texts(range(len(texts)), read)) == list(enumerate(texts))
    # The readable report's ladders read the SDP of the lean report's messages back from the file.
    assert document(lean, message_text=analysis.texts().row_text(lean["sip_messages"], read)) == document(full)
    assert lean["sip_messages"] == [{k: v for k, v in row.items() if k != "text"} for row in full["sip_messages"]]
    assert {k: v for k, v in lean.items() if k != "sip_messages"} == \
        {k: v for k, v in full.items() if k != "sip_messages"}


def test_udp_messages_keep_no_bytes_and_know_where_they_are():
    capture = FIXTURES / "calls" / "call_answered_rtp.pcap"
    analysis, _ = lean_analysis(capture)
    messages = analysis.finish_result().sip_messages
    data = capture.read_bytes()
    assert messages and all(m.raw == b"" and m.source is not None for m in messages)
    for message in messages:
        offset, length = message.source
        assert data[offset:offset + length].startswith((b"INVITE ", b"ACK ", b"BYE ", b"SIP/2.0 "))


def test_messages_read_counts_the_sip_messages_decoded_so_far():
    # Its SIP messages are frames 1-5 (the INVITE, its responses, the ACK), RTP, then 306-307 (the BYE and its answer).
    data = (FIXTURES / "calls" / "call_answered_rtp.pcap").read_bytes()
    analysis = CaptureAnalysis("call_answered_rtp.pcap", keep_text=False)
    assert analysis.messages_read == 0
    analysis.feed(data[:len(data) // 2])  # cut inside the RTP
    assert analysis.messages_read == 5
    analysis.feed(data[len(data) // 2:])
    assert analysis.messages_read == 7
    assert len(analysis.finish()["sip_messages"]) == 7


def test_a_message_reassembled_from_ip_fragments_keeps_its_bytes():
    capture = FIXTURES / "calls" / "call_fragmented_invite.pcap"
    analysis, _ = lean_analysis(capture)
    messages = analysis.finish_result().sip_messages
    # tshark shows frames 1-3 and 6-7 as the fragments of the INVITE and of its 200 OK.
    assert [(m.frame, m.raw[:14]) for m in messages if m.source is None] == [
        (3, b"INVITE sip:bob"), (7, b"SIP/2.0 200 OK")]
    assert all(m.raw == b"" for m in messages if m.source is not None)


def test_a_compressed_capture_keeps_every_message_and_reads_nothing(tmp_path):
    source = FIXTURES / "registration" / "reg_challenge_ok.pcap"
    compressed = tmp_path / "reg.pcap.gz"
    compressed.write_bytes(gzip.compress(source.read_bytes()))
    analysis, lean = lean_analysis(compressed)

    def refuse(offset, length):
        raise AssertionError("offsets in a gzip file are not the file's")

    texts = [analysis.texts().message_text(row["frame"], refuse) for row in lean["sip_messages"]]
    assert texts == [row["text"] for row in analyze_path(str(source))["sip_messages"]]


def test_a_frame_without_that_message_gives_none():
    capture = FIXTURES / "registration" / "reg_challenge_ok.pcap"
    analysis, lean = lean_analysis(capture)
    read = file_reader(str(capture))
    first = lean["sip_messages"][0]["frame"]
    assert analysis.texts().message_text(first, read, 1) is None
    assert analysis.texts().message_text(10**6, read) is None


def test_texts_are_read_many_messages_to_a_read_in_file_order():
    capture = SHARED_CAPTURES / "sngrep__aaa.pcap"
    analysis, lean = lean_analysis(capture)
    plain = file_reader(str(capture))
    reads = []

    def read(offset, length):
        reads.append((offset, length))
        return plain(offset, length)

    positions = list(range(len(lean["sip_messages"])))[::-1]  # asked for last first: read in file order all the same
    kept = analysis.texts()
    texts = dict(kept.texts(positions, read))
    assert texts == {i: kept.message_text(row["frame"], plain, 0) for i, row in enumerate(lean["sip_messages"])}
    assert reads == sorted(reads) and len(reads) == 1 < len(texts)
    assert sum(length for _, length in reads) <= READ_SPAN


def test_a_messages_row_gives_its_text_even_when_its_frame_holds_several():
    # tshark: frame 7 of this capture is one SCTP packet with two DATA chunks, a 100 Trying and a 180 Ringing.
    capture = FIXTURES / "encap" / "encap_sctp.pcap"
    analysis, lean = lean_analysis(capture)
    full = analyze_path(str(capture))
    assert [row["frame"] for row in lean["sip_messages"]].count(7) == 2
    text = analysis.texts().row_text(lean["sip_messages"], file_reader(str(capture)))
    assert [text(row) for row in lean["sip_messages"]] == [row["text"] for row in full["sip_messages"]]
    assert text(dict(lean["sip_messages"][0])) is None  # a copy is no row of that report


def test_the_cli_with_text_prints_every_rows_text():
    capture = FIXTURES / "calls" / "call_486.pcap"
    completed = subprocess.run([sys.executable, "-m", "sipdiag", "analyze", str(capture), "--json", "--with-text"],
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "py")})
    assert completed.returncode == 0
    report = json.loads(completed.stdout)
    assert report == analyze_path(str(capture), with_text=True)
    assert report["sip_messages"] and all(row["text"].startswith(("INVITE ", "ACK ", "SIP/2.0 "))
                                          for row in report["sip_messages"])


def test_the_cli_html_draws_the_ladders_sdp_from_the_file(tmp_path):
    capture = FIXTURES / "calls" / "call_answered_rtp.pcap"
    out = tmp_path / "report.html"
    completed = subprocess.run([sys.executable, "-m", "sipdiag", "analyze", str(capture), "--html", str(out)],
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "py")})
    assert completed.returncode == 0, completed.stderr
    html = out.read_text(encoding="utf-8")
    assert html == document(analyze_path(str(capture), with_text=True))
    assert 'class="ladder-sdp"' in html


def test_the_cli_without_text_prints_the_rows_without_it():
    capture = FIXTURES / "calls" / "call_486.pcap"
    completed = subprocess.run([sys.executable, "-m", "sipdiag", "analyze", str(capture), "--json"],
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "py")})
    assert completed.returncode == 0
    report = json.loads(completed.stdout)
    assert report == analyze_path(str(capture), with_text=False)
    assert report["sip_messages"] and all("text" not in row for row in report["sip_messages"])
