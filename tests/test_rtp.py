"""RTP accounting: byte-built packets with known answers, then tshark on real captures."""

import ipaddress
import re
import struct
import subprocess
from pathlib import Path

import pytest
from locations import FIXTURES, SHARED_CAPTURES
from sipdiag.capture.scan import Kernel
from sipdiag.protocols.rtp import MAX_EVENTS_PER_STREAM
from sipdiag.protocols.rtp import RtpTracker

A, B = ("10.0.0.1", 4000), ("10.0.0.2", 5000)


def rtp(seq, ts, ssrc=0x11223344, pt=0, marker=False, payload=b"\xff" * 4):
    """Version 2, no padding/extension/CSRC: the 12-byte header of RFC 3550 5.1."""
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, ts, ssrc) + payload


def account(tracker, frame, time, src, dst, payload):
    """One UDP payload from src to dst, as the packet decoder hands it over."""
    raw = [ipaddress.ip_address(ip).packed for ip in (src[0], dst[0])]
    tracker.account(frame, time, raw[0], src[1], raw[1], dst[1], payload, 0, len(payload))


def feed(tracker, packets, src=A, dst=B, start=100.0, spacing=0.02, first_frame=1):
    for index, packet in enumerate(packets):
        account(tracker, first_frame + index, start + index * spacing, src, dst, packet)


def only_stream(tracker):
    (stream,) = tracker.streams()
    return stream


def test_header_fields_from_a_literal_packet():
    tracker = RtpTracker(Kernel())
    # seq 0x0102, ts 0x000000a0, ssrc 0xdeadbeef, PCMA with marker, then seq 0x0103
    account(tracker, 7, 1.0, A, B, bytes.fromhex("8088 0102 000000a0 deadbeef d5d5"))
    account(tracker, 8, 1.02, A, B, bytes.fromhex("8008 0103 00000140 deadbeef d5d5"))
    stream = only_stream(tracker)
    assert (stream.src, stream.dst, stream.ssrc) == ("10.0.0.1:4000", "10.0.0.2:5000", 0xDEADBEEF)
    assert (stream.first_frame, stream.last_frame, stream.packets) == (7, 8, 2)
    assert stream.payload_types == {8: 2}
    assert stream.marker_packets == 1
    assert (stream.expected, stream.lost) == (2, 0)
    assert (stream.first_time, stream.last_time) == (1.0, 1.02)


def test_lone_rtp_looking_packet_is_not_a_stream_unless_sdp_announced_it():
    tracker = RtpTracker(Kernel())
    feed(tracker, [rtp(10, 0)])
    feed(tracker, [rtp(99, 0, ssrc=5), rtp(7, 0, ssrc=5)], src=("10.0.0.9", 1), dst=("10.0.0.8", 2))
    assert tracker.streams() == []
    tracker.expect(*B, {})
    assert [s.packets for s in tracker.streams()] == [1]


def test_sequence_gap_counts_as_loss():
    tracker = RtpTracker(Kernel())
    feed(tracker, [rtp(seq, seq * 160) for seq in (1, 2, 4, 5, 9)])
    stream = only_stream(tracker)
    assert (stream.packets, stream.expected, stream.lost) == (5, 9, 4)


def test_sequence_wraparound_is_not_loss():
    tracker = RtpTracker(Kernel())
    feed(tracker, [rtp(seq % 65536, 0) for seq in range(65533, 65540)])
    stream = only_stream(tracker)
    assert (stream.packets, stream.expected, stream.lost) == (7, 7, 0)


def test_late_packet_does_not_move_the_range():
    tracker = RtpTracker(Kernel())
    feed(tracker, [rtp(seq, 0) for seq in (1, 2, 4, 3, 5)])
    stream = only_stream(tracker)
    assert (stream.expected, stream.lost) == (5, 0)


def test_sender_restart_is_not_counted_as_huge_loss():
    tracker = RtpTracker(Kernel())
    feed(tracker, [rtp(seq, 0) for seq in (100, 101, 102, 30000, 30001, 30002)])
    stream = only_stream(tracker)
    assert (stream.packets, stream.expected, stream.lost) == (6, 6, 0)


def test_jitter_follows_rfc3550_with_the_payload_clock():
    # 20 ms packets, 160 timestamp units at 8 kHz; the third packet is 10 ms late
    # (80 units): D = 80 then -80, J = 80/16 = 5, then 5 + (80 - 5)/16 = 9.6875.
    tracker = RtpTracker(Kernel())
    for index, arrival in enumerate((0.0, 0.02, 0.05, 0.06)):
        account(tracker, index + 1, 100.0 + arrival, A, B, rtp(index, index * 160))
    stream = only_stream(tracker)
    assert stream.max_jitter_ms == pytest.approx(9.6875 / 8)
    assert stream.jitter_ms == pytest.approx(9.6875 / 8)
    assert stream.mean_jitter_ms == pytest.approx((0 + 5 + 9.6875) / 3 / 8)
    assert stream.max_gap_ms == pytest.approx(30.0)


def test_dynamic_payload_clock_rate_comes_from_the_sdp():
    # opus at 48 kHz: 20 ms = 960 units; a 10 ms late packet is 480 units off.
    arrivals = (0.0, 0.02, 0.05)
    announced, unknown = RtpTracker(Kernel()), RtpTracker(Kernel())
    announced.expect(*B, {111: "opus/48000/2"})
    for tracker in (announced, unknown):
        for index, arrival in enumerate(arrivals):
            account(tracker, index + 1, arrival, A, B, rtp(index, index * 960, pt=111))
    assert only_stream(announced).max_jitter_ms == pytest.approx(480 / 16 / 48)
    # Without a clock rate jitter cannot be measured; report none rather than guess.
    assert only_stream(unknown).max_jitter_ms == 0.0


def test_marker_packet_gap_is_a_talkspurt_not_a_gap():
    tracker = RtpTracker(Kernel())
    for index, (arrival, marker) in enumerate(((0.0, False), (0.02, False), (2.0, True), (2.02, False))):
        account(tracker, index + 1, arrival, A, B, rtp(index, index * 160, marker=marker))
    assert only_stream(tracker).max_gap_ms == pytest.approx(20.0)


def test_new_ssrc_on_the_same_flow_is_a_new_stream():
    tracker = RtpTracker(Kernel())
    feed(tracker, [rtp(1, 0, ssrc=1), rtp(2, 160, ssrc=1)])
    feed(tracker, [rtp(500, 0, ssrc=2), rtp(501, 160, ssrc=2)], first_frame=3)
    assert [(s.ssrc, s.first_frame, s.packets) for s in tracker.streams()] == [(1, 1, 2), (2, 3, 2)]


def test_interleaved_ssrcs_on_one_flow_keep_their_own_sequence():
    # Two senders behind one address pair (a conference mixer's contributors, a
    # forked call): every switch must find the other stream's state again.
    tracker = RtpTracker(Kernel())
    feed(tracker, [rtp(10, 0, ssrc=1), rtp(700, 0, ssrc=2), rtp(11, 160, ssrc=1), rtp(701, 160, ssrc=2),
                   rtp(12, 320, ssrc=1), rtp(702, 320, ssrc=2)], spacing=0.01)
    streams = tracker.streams()
    assert [(s.ssrc, s.packets, s.expected, s.lost) for s in streams] == [(1, 3, 3, 0), (2, 3, 3, 0)]
    # 20 ms of media clock per 20 ms of arrival: no jitter in either stream.
    assert [s.max_jitter_ms for s in streams] == [pytest.approx(0.0), pytest.approx(0.0)]


def test_rtcp_on_the_next_port_is_counted_on_the_rtp_stream():
    tracker = RtpTracker(Kernel())
    feed(tracker, [rtp(1, 0), rtp(2, 160)])
    receiver_report = bytes.fromhex("80c9 0001 11223344")
    sender_report_mux = bytes.fromhex("80c8 0006 11223344") + bytes(20)
    account(tracker, 3, 100.1, (A[0], A[1] + 1), (B[0], B[1] + 1), receiver_report)
    account(tracker, 4, 100.2, A, B, sender_report_mux)
    stream = only_stream(tracker)
    assert (stream.packets, stream.rtcp_packets) == (2, 2)
    assert stream.payload_types == {0: 2}


def test_rfc4733_event_end_retransmissions_count_once():
    tracker = RtpTracker(Kernel())
    tracker.expect(*B, {101: "telephone-event/8000"})

    def event(seq, ts, end, duration):
        # event 5, E bit, volume 10, duration
        return rtp(seq, ts, pt=101, payload=struct.pack("!BBH", 5, (0x80 if end else 0) | 10, duration))

    packets = [event(1, 800, False, 160), event(2, 800, True, 800), event(3, 800, True, 800),
               event(4, 800, True, 800), event(5, 4000, False, 160), event(6, 4000, True, 640),
               event(7, 4000, True, 640)]
    feed(tracker, packets)
    stream = only_stream(tracker)
    assert stream.dtmf_events == 2
    assert [(e.event, e.volume, e.duration, e.duration_ms, e.first_frame, e.first_time, e.ended)
            for e in stream.telephone_events] == [(5, 10, 800, 100.0, 1, 100.0, True),
                                                  (5, 10, 640, 80.0, 5, 100.08, True)]


def test_rfc4733_event_after_csrc_list_and_header_extension():
    tracker = RtpTracker(Kernel())
    tracker.expect(*B, {96: "telephone-event/16000"})
    # CC=1 and X: a CSRC, then a one-word extension, then event 11 ("#"), volume 7.
    header = struct.pack("!BBHII", 0x91, 0x80 | 96, 1, 3200, 0x11223344) + struct.pack("!I", 0x55667788)
    extension = struct.pack("!HHI", 0xBEDE, 1, 0)
    feed(tracker, [header + extension + struct.pack("!BBH", 11, 0x80 | 7, 1600)])
    (event,) = only_stream(tracker).telephone_events
    assert (event.event, event.volume, event.duration_ms, event.clock_rate, event.ended) == (11, 7, 100.0, 16000, True)


def test_rfc4733_late_end_packet_of_the_previous_event_opens_no_new_one():
    tracker = RtpTracker(Kernel())
    tracker.expect(*B, {101: "telephone-event/8000"})

    def event(seq, ts, code, end):
        return rtp(seq, ts, pt=101, payload=struct.pack("!BBH", code, (0x80 if end else 0) | 10, 400))

    feed(tracker, [event(1, 800, 1, True), event(2, 4000, 2, False), event(3, 800, 1, True), event(4, 4000, 2, True)])
    stream = only_stream(tracker)
    assert [(e.event, e.first_frame, e.ended) for e in stream.telephone_events] == [(1, 1, True), (2, 2, True)]
    assert stream.dtmf_events == 2


def test_rfc4733_events_of_a_stream_are_bounded():
    tracker = RtpTracker(Kernel())
    tracker.expect(*B, {101: "telephone-event/8000"})
    packets = MAX_EVENTS_PER_STREAM + 5
    feed(tracker, [rtp(seq, seq * 800, pt=101, payload=struct.pack("!BBH", 1, 0x8A, 400))
                   for seq in range(1, packets + 1)])
    stream = only_stream(tracker)
    assert (len(stream.telephone_events), stream.dtmf_events, stream.packets) == (1000, 1000, packets)


def test_an_event_payload_type_the_sdp_did_not_name_is_audio():
    tracker = RtpTracker(Kernel())
    tracker.expect(*B, {101: "opus/48000/2"})
    feed(tracker, [rtp(1, 0, pt=101, payload=struct.pack("!BBH", 5, 0x8A, 800))])
    assert (only_stream(tracker).telephone_events, only_stream(tracker).dtmf_events) == ([], 0)


def test_short_payloads_are_ignored():
    tracker = RtpTracker(Kernel())
    feed(tracker, [b"\x80\x00\x00\x01", b"\x80\x00\x00\x02\x00\x00"])
    tracker.expect(*B, {})
    assert tracker.streams() == []


TSHARK_ROW = re.compile(
    r"^\s*[\d.]+\s+[\d.]+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+0x([0-9A-F]+)\s+\S+\s+(\d+)\s+(-?\d+) \(.*?\)"
    r"\s+[\d.]+\s+([\d.]+)\s+([\d.]+)\s+[\d.]+\s+([\d.]+)\s+([\d.]+)",
    re.M,
)


def tshark_streams(path):
    output = subprocess.run(
        ["tshark", "-n", "-q", "-o", "rtp.heuristic_rtp:TRUE", "-z", "rtp,streams", "-r", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = {}
    for match in TSHARK_ROW.finditer(output):
        src, sport, dst, dport, ssrc, packets, lost, mean_delta, max_delta, mean_jitter, max_jitter = match.groups()
        rows[(src, int(sport), dst, int(dport), int(ssrc, 16))] = {
            "packets": int(packets), "lost": int(lost), "max_gap_ms": float(max_delta),
            "mean_jitter_ms": float(mean_jitter), "max_jitter_ms": float(max_jitter),
        }
    return rows


@pytest.mark.parametrize(
    "path, stream_count",
    [(SHARED_CAPTURES / "redrabbit__sip-rtp-g711.pcap", 2), (SHARED_CAPTURES / "heplify__rtp_rtcp_sip_ipv4_udp.pcap", 5),
     (SHARED_CAPTURES / "sngrep__aaa.pcap", 1),
     # Our own: 4% loss and +-6 ms send jitter on one direction, so loss and jitter are far from zero.
     (FIXTURES / "calls" / "call_rtp_loss_jitter.pcap", 2)],
    ids=lambda value: value.name if isinstance(value, Path) else str(value),
)
def test_loss_and_jitter_agree_with_tshark(path, stream_count):
    from sipdiag.engine import result_for_path

    expected = tshark_streams(path)
    assert len(expected) == stream_count
    ours = {(s.src_ip, s.src_port, s.dst_ip, s.dst_port, s.ssrc): s for s in result_for_path(path).rtp_streams}
    assert set(ours) == set(expected)
    for key, truth in expected.items():
        stream = ours[key]
        assert stream.packets == truth["packets"], key
        assert stream.lost == truth["lost"], key
        for field in ("max_jitter_ms", "mean_jitter_ms", "max_gap_ms"):
            # tshark prints three decimals: allow that rounding on tiny values.
            assert getattr(stream, field) == pytest.approx(truth[field], rel=0.05, abs=0.0015), (key, field)
