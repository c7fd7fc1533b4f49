"""Per-stream RTP series and G.711 playback (sipdiag.rtp_stream, protocols/g711):
ITU-T G.711 decoded by its own formula, tshark's view of real captures, and
the byte-built tone fixture (tests/fixtures/rtp/generate.py), whose content is
known by construction."""

import math
import re
import struct
import subprocess
from pathlib import Path

import pytest
from locations import FIXTURES, SHARED_CAPTURES
from sipdiag import analyze_path
from sipdiag.engine import result_for_path
from sipdiag.protocols import g711
from sipdiag.redaction.redactor import redact_command
from sipdiag.rtp_stream import FrameLookup, StreamMeasurement

TONE = FIXTURES / "rtp" / "rtp_tone.pcap"
PBX_STREAM = {"src": "10.77.0.1:16384", "dst": "10.77.0.2:20000", "ssrc": "0x51A7E000"}  # PCMU 440 Hz
CARRIER_STREAM = {"src": "10.77.0.2:20000", "dst": "10.77.0.1:16384", "ssrc": "0x6B0B0001"}  # PCMA 660 Hz


def measure(path: Path, streams: list[dict], chunk: int = 1 << 20) -> tuple[list[dict], StreamMeasurement]:
    measurement = StreamMeasurement(streams)
    data = Path(path).read_bytes()
    for start in range(0, len(data), chunk):
        measurement.feed(data[start : start + chunk])
    return measurement.finish(), measurement


def report_streams(path: Path) -> list[dict]:
    """Every stream of the report's calls, once (several dialogs may own one)."""
    seen = {}
    for call in analyze_path(str(path))["calls"]:
        for media in call["media"]:
            seen.setdefault((media["src"], media["dst"], media["ssrc"]), media)
    return list(seen.values())


# --------------------------------------------------------------------------
# G.711, against the standard's own description
# --------------------------------------------------------------------------

def itu_ulaw(code: int) -> int:
    """ITU-T G.711 table 2a: the decision value of the inverted code, 14-bit, scaled to 16 bits."""
    code ^= 0xFF
    exponent, mantissa = (code >> 4) & 7, code & 15
    value = ((2 * mantissa + 33) << exponent) - 33  # the segment's end point plus its steps
    return 4 * (-value if code & 0x80 else value)


def itu_alaw(code: int) -> int:
    """ITU-T G.711 table 1a: the decision value of the code with even bits inverted, 13-bit, scaled."""
    code ^= 0x55
    exponent, mantissa = (code >> 4) & 7, code & 15
    value = 2 * mantissa + 1 if exponent == 0 else (2 * mantissa + 33) << (exponent - 1)
    return 8 * (value if code & 0x80 else -value)


@pytest.mark.parametrize("payload_type, reference", [(g711.PCMU, itu_ulaw), (g711.PCMA, itu_alaw)],
                         ids=["PCMU", "PCMA"])
def test_every_g711_code_decodes_to_the_itu_value(payload_type, reference):
    decoded = g711.decode(payload_type, bytes(range(256)))
    assert list(struct.unpack("<256h", decoded)) == [reference(code) for code in range(256)]


def test_g711_known_points():
    # µ-law 0xFF and 0x7F are the two zeros, 0x00 the loudest negative; A-law 0xD5 is the smallest positive.
    assert struct.unpack("<4h", g711.decode(g711.PCMU, b"\xff\x7f\x00\x80")) == (0, 0, -32124, 32124)
    assert struct.unpack("<3h", g711.decode(g711.PCMA, b"\xd5\x55\x2a")) == (8, -8, -32256)


# --------------------------------------------------------------------------
# Playback: the tone fixture, against tshark's payload bytes
# --------------------------------------------------------------------------

def tshark_payloads(path: Path, ssrc: str) -> list[tuple[int, int, bytes]]:
    """(payload type, RTP timestamp, payload) of each packet of the stream, as tshark decodes them."""
    rows = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-o", "rtp.heuristic_rtp:TRUE", "-Y", f"rtp.ssrc == {ssrc}",
         "-T", "fields", "-e", "rtp.p_type", "-e", "rtp.timestamp", "-e", "rtp.payload"],
        capture_output=True, text=True, check=True).stdout.splitlines()
    return [(int(pt), int(ts), bytes.fromhex(payload.replace(":", ""))) for pt, ts, payload in
            (row.split("\t") for row in rows)]


@pytest.mark.parametrize("stream, reference", [(PBX_STREAM, itu_ulaw), (CARRIER_STREAM, itu_alaw)],
                         ids=["PCMU", "PCMA"])
def test_playback_is_each_payload_decoded_at_its_timestamp(stream, reference):
    (measured,), measurement = measure(TONE, [stream])
    packets = [(ts, payload) for pt, ts, payload in tshark_payloads(TONE, stream["ssrc"]) if pt in (0, 8)]
    first_ts = packets[0][0]
    expected = [0] * 16000  # 2 s at 8 kHz: what is not sent stays silent
    for ts, payload in packets:
        offset = (ts - first_ts) % (1 << 32)  # the PBX's timestamps wrap inside the stream
        expected[offset : offset + len(payload)] = [reference(code) for code in payload]
    assert measured["audio"]["playable"] is True
    assert measured["audio"]["samples"] == 16000
    assert measurement.pcm(0) == struct.pack(f"<{len(expected)}h", *expected)


def test_playback_sounds_the_generated_tone_with_silence_where_nothing_came():
    (pbx, carrier), measurement = measure(TONE, [PBX_STREAM, CARRIER_STREAM])
    assert (pbx["audio"]["codec"], carrier["audio"]["codec"]) == ("PCMU", "PCMA")
    assert pbx["audio"]["start_time"] == pytest.approx(1767225600.600)
    assert carrier["audio"]["start_time"] == pytest.approx(1767225600.603)
    for index, (frequency, amplitude) in enumerate(((440.0, 12000), (660.0, 8000))):
        samples = struct.unpack("<16000h", measurement.pcm(index))
        silent = set()
        if index == 0:  # lost packets 30 and 31, the digit's 200 ms instead of voice (steps 70-79)
            silent = {n for step in (30, 31, *range(70, 80)) for n in range(step * 160, (step + 1) * 160)}
        for n, sample in enumerate(samples):
            if n in silent:
                assert sample == 0, n
            else:
                # G.711's step is at most 1/16 of the value (plus the smallest step near zero).
                assert abs(sample - amplitude * math.sin(2 * math.pi * frequency * n / 8000)) <= amplitude / 16 + 16


def test_a_redacted_capture_says_its_voice_is_zeroed(tmp_path):
    copy = tmp_path / "redacted.pcap"
    status, _summary = redact_command(str(TONE), str(copy), key="k")
    assert status == 0
    streams = [{key: media[key] for key in ("src", "dst", "ssrc")} for media in report_streams(copy)]
    assert len(streams) == 2
    measured, measurement = measure(copy, streams)
    for index, stream in enumerate(measured):
        assert stream["audio"]["playable"] is False
        assert "zeroed" in stream["audio"]["reason"]
        assert measurement.pcm(index) == b""
        assert stream["summary"]["packets"] == 100  # the headers, and so the analysis, are intact


def test_a_stream_with_no_g711_says_there_is_nothing_to_play():
    (measured,), _ = measure(SHARED_CAPTURES / "redrabbit__h263-over-rtp.pcap",
                             [{key: media[key] for key in ("src", "dst", "ssrc")}
                              for media in report_streams(SHARED_CAPTURES / "redrabbit__h263-over-rtp.pcap")
                              if 0 not in media["payload_types"] and 8 not in media["payload_types"]][:1])
    assert measured["audio"]["playable"] is False
    assert measured["audio"]["reason"] == "this stream carries H263, and only G.711 (PCMU, PCMA) is played"


# --------------------------------------------------------------------------
# The series: known by construction, equal to the report, equal to tshark
# --------------------------------------------------------------------------

def test_tone_fixture_series_facts():
    (pbx, carrier), _ = measure(TONE, [PBX_STREAM, CARRIER_STREAM])
    summary = pbx["summary"]
    # 2 lost (one sequence error), a swapped pair (three), the end packet sent three times (none).
    assert (summary["packets"], summary["expected"], summary["lost"], summary["seq_errors"]) == (100, 102, 2, 4)
    series = pbx["series"]
    errors = [seq for seq, error in zip(series["seq"], series["seq_error"]) if error]
    assert errors == [65532, 25, 24, 26]  # after the wrap: steps 30, 31 were seq 65530, 65531
    assert series["payload_type"].count(101) == 12
    assert [frame for frame, marker in zip(series["frame"], series["marker"]) if marker] == [6, 144]
    # Step 61's packet arrives in step 60's slot with 1 ms jitter: 20 ms early;
    # step 60's in slot 61 with 3 ms: 23 ms late, the worst.
    assert summary["max_skew_ms"] == -23.0
    assert (summary["min_delta_ms"], summary["max_delta_ms"]) == (5.0, 59.0)
    assert carrier["summary"]["seq_errors"] == 0
    assert carrier["series"]["delta_ms"][0] is None  # no packet before the first
    assert set(carrier["series"]["delta_ms"][1:]) == {19.5, 20.5}
    assert set(carrier["series"]["skew_ms"]) == {0.0, -0.5}


@pytest.mark.parametrize("path", [TONE, FIXTURES / "calls" / "call_rtp_loss_jitter.pcap",
                                  FIXTURES / "timing" / "timing_dtmf.pcap", FIXTURES / "calls" / "call_ipv6.pcap",
                                  FIXTURES / "media" / "media_pbx_direct.pcap",
                                  SHARED_CAPTURES / "heplify__rtp_rtcp_sip_ipv4_udp.pcap",
                                  # RTP the kernel hands back and the decoder finds (GTP-U, IP fragments; link
                                  # types of its own): the decoder's account brings it back to the recorder.
                                  FIXTURES / "encap" / "encap_gtpu_ipfrag.pcap",
                                  FIXTURES / "encap" / "encap_mixed.pcapng"], ids=lambda p: p.name)
def test_series_ends_at_the_reports_figures(path):
    """The kernel measures the stream again: its figures are the report's, and the jitter
    after its last packet is the analysis's RtpStream.jitter_ms."""
    media = report_streams(path)
    measured, _ = measure(path, [{key: m[key] for key in ("src", "dst", "ssrc")} for m in media], chunk=4096)
    jitter_now = {(s.src, s.dst, f"0x{s.ssrc:08X}"): s.jitter_ms for s in result_for_path(str(path)).rtp_streams}
    assert measured
    for row, stream in zip(media, measured):
        assert stream["series"]["jitter_ms"][-1] == round(jitter_now[row["src"], row["dst"], row["ssrc"]], 3)
        summary = stream["summary"]
        assert (summary["packets"], summary["expected"], summary["lost"]) == (row["packets"], row["expected"],
                                                                              row["lost"])
        assert (summary["mean_jitter_ms"], summary["max_jitter_ms"], summary["max_delta_ms"]) == (
            row["jitter_ms"], row["max_jitter_ms"], row["max_gap_ms"])
        assert max(stream["series"]["jitter_ms"]) == row["max_jitter_ms"]
        assert (stream["series"]["frame"][0], stream["series"]["frame"][-1]) == (row["first_frame"],
                                                                                 row["last_frame"])


TSHARK_STREAM = re.compile(
    r"^\s*[\d.]+\s+[\d.]+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+0x([0-9A-F]+)\s+(.+?)\s+(\d+)\s+(-?\d+) \(.*?\)"
    r"\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+\s+([\d.]+)\s+([\d.]+)", re.M)


def tshark_stream_rows(path: Path) -> dict:
    output = subprocess.run(["tshark", "-n", "-q", "-o", "rtp.heuristic_rtp:TRUE", "-z", "rtp,streams", "-r",
                             str(path)], capture_output=True, text=True, check=True).stdout
    rows = {}
    for match in TSHARK_STREAM.finditer(output):
        src, sport, dst, dport, ssrc, payload, packets, lost, *figures = match.groups()
        rows[(f"{src}:{sport}", f"{dst}:{dport}", f"0x{int(ssrc, 16):08X}")] = {
            "payload": payload, "packets": int(packets), "lost": int(lost),
            **dict(zip(("min_delta_ms", "mean_delta_ms", "max_delta_ms", "mean_jitter_ms", "max_jitter_ms"),
                       map(float, figures)))}
    return rows


def tshark_sequence(path: Path, key: tuple[str, str, str]) -> list[tuple[int, int]]:
    """(frame, sequence number) of each packet of one stream (IPv4 here), as tshark reads them."""
    (src, sport), (dst, dport) = (address.rsplit(":", 1) for address in key[:2])
    stream = (f"ip.src == {src} && udp.srcport == {sport} && ip.dst == {dst} && udp.dstport == {dport} "
              f"&& rtp.ssrc == {key[2]} && !rtcp")
    rows = subprocess.run(["tshark", "-n", "-r", str(path), "-o", "rtp.heuristic_rtp:TRUE", "-Y", stream,
                           "-T", "fields", "-e", "frame.number", "-e", "rtp.seq"],
                          capture_output=True, text=True, check=True).stdout.split()
    return list(zip(map(int, rows[0::2]), map(int, rows[1::2])))


@pytest.mark.parametrize("path", [TONE, FIXTURES / "calls" / "call_rtp_loss_jitter.pcap",
                                  SHARED_CAPTURES / "redrabbit__sip-rtp-g711.pcap",
                                  SHARED_CAPTURES / "heplify__rtp_rtcp_sip_ipv4_udp.pcap",
                                  SHARED_CAPTURES / "sngrep__aaa.pcap"], ids=lambda p: p.name)
def test_series_agrees_with_tshark(path):
    truth = tshark_stream_rows(path)
    media = report_streams(path)
    keys = [(m["src"], m["dst"], m["ssrc"]) for m in media]
    assert set(keys) <= set(truth)
    measured, _ = measure(path, [dict(zip(("src", "dst", "ssrc"), key)) for key in keys])
    for key, stream in zip(keys, measured):
        expected, summary, series = truth[key], stream["summary"], stream["series"]
        sequence = tshark_sequence(path, key)
        assert list(zip(series["frame"], series["seq"])) == sequence, key
        assert summary["seq_errors"] == sum(seq != (before + 1) % 65536
                                            for (_, before), (_, seq) in zip(sequence, sequence[1:])), key
        assert (summary["packets"], summary["lost"]) == (expected["packets"], expected["lost"]), key
        figures = ["min_delta_ms", "max_delta_ms"]
        # tshark leaves RFC 4733 packets (one timestamp for many) out of its delta mean and
        # measures their jitter otherwise than the report does: those streams are compared on the rest.
        if "telephone-event" not in expected["payload"]:
            figures += ["mean_delta_ms", "mean_jitter_ms", "max_jitter_ms"]
        for figure in figures:
            # tshark prints three decimals: allow that rounding on tiny values.
            assert summary[figure] == pytest.approx(expected[figure], rel=0.005, abs=0.0015), (key, figure)


# --------------------------------------------------------------------------
# Frame -> stream, and chunking
# --------------------------------------------------------------------------

def find_frame(path: Path, frame: int, chunk: int = 1000) -> tuple[dict | None, int]:
    """The stream of `frame` and how many bytes were read to find it."""
    lookup = FrameLookup(frame)
    data = path.read_bytes()
    read = 0
    for start in range(0, len(data), chunk):
        read = min(len(data), start + chunk)
        if lookup.feed(data[start:read]):
            break
    return lookup.finish(), read


def test_frame_lookup_names_the_stream_and_stops_reading_there():
    size = TONE.stat().st_size
    stream, read = find_frame(TONE, 20)
    assert stream == PBX_STREAM
    assert read < size / 4
    assert find_frame(TONE, 126)[0] == PBX_STREAM  # the late one of the swapped pair
    assert find_frame(TONE, 7)[0] == CARRIER_STREAM
    assert find_frame(TONE, 1)[0] is None  # the INVITE
    assert find_frame(TONE, 10_000) == (None, size)


def test_any_chunking_gives_the_same_measurement():
    whole, whole_measurement = measure(TONE, [PBX_STREAM, CARRIER_STREAM])
    pieces, pieces_measurement = measure(TONE, [PBX_STREAM, CARRIER_STREAM], chunk=97)
    assert pieces == whole
    assert pieces_measurement.pcm(0) == whole_measurement.pcm(0)


def test_more_streams_than_one_reading_can_watch_are_refused_not_left_empty():
    # The kernel hands back at most MAX_WATCHED_STREAMS streams per reading; the
    # 257th would otherwise come back with no packets, as if it carried none.
    streams = [{"src": "10.0.0.1:4000", "dst": f"10.0.0.2:{5000 + 2 * n}", "ssrc": "0x1234ABCD"} for n in range(257)]
    with pytest.raises(ValueError, match="257 streams asked for at once; at most 256"):
        StreamMeasurement(streams)
    StreamMeasurement(streams[:256] + streams[:3])  # the same stream twice is one watch
