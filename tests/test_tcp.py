"""TCP: reassembly by sequence number, SIP framing over it, connection tracking."""

from __future__ import annotations

from packet_builders import INVITE, OK_200, ethernet, ipv4, tcp
from sipdiag.capture.tcp import (
    ACK,
    MAX_WAITING_SEGMENTS,
    RST,
    SYN,
    TcpDirection,
    TcpTracker,
)
from test_packets import decode

ISN = 0xFFFFFF00  # close to the wrap: sequence arithmetic must be modular


class Recorder:
    def __init__(self):
        self.chunks: list[tuple[int, bytes]] = []
        self.gaps = 0
        self.ended = False

    def data(self, frame, time, chunk):
        self.chunks.append((frame, chunk))
        return True

    def gap(self):
        self.gaps += 1

    def end(self):
        self.ended = True


def stream_of(recorder: Recorder) -> bytes:
    return b"".join(chunk for _, chunk in recorder.chunks)


def test_out_of_order_and_retransmitted_segments_come_out_once_in_order():
    recorder = Recorder()
    direction = TcpDirection(recorder)
    direction.syn(ISN)
    base = (ISN + 1) & 0xFFFFFFFF
    direction.segment(1, 0.0, base, b"abc")
    direction.segment(2, 0.0, (base + 6) & 0xFFFFFFFF, b"ghi")  # ahead: waits
    direction.segment(3, 0.0, base, b"abc")  # retransmission: dropped
    direction.segment(4, 0.0, (base + 1) & 0xFFFFFFFF, b"bcdef")  # overlaps, fills the hole
    assert stream_of(recorder) == b"abcdefghi"
    assert [frame for frame, _ in recorder.chunks] == [1, 4, 4]


def test_a_hole_never_filled_is_skipped_after_enough_waiting_segments():
    recorder = Recorder()
    direction = TcpDirection(recorder)
    direction.segment(1, 0.0, 1000, b"x")
    for index in range(MAX_WAITING_SEGMENTS + 1):
        direction.segment(2 + index, 0.0, 2000 + index, b"y")
    assert recorder.gaps == 1
    assert stream_of(recorder) == b"x" + b"y" * (MAX_WAITING_SEGMENTS + 1)


def test_at_the_end_segments_behind_a_hole_come_out_with_their_own_frames():
    recorder = Recorder()
    direction = TcpDirection(recorder)
    direction.segment(1, 0.0, 1000, b"abc")
    direction.segment(2, 0.0, 1010, b"klm")  # 1003..1009 never captured
    direction.segment(3, 0.0, 1013, b"nop")
    direction.segment(4, 0.0, 1020, b"uvw")  # another hole before it
    assert stream_of(recorder) == b"abc" and not recorder.ended
    direction.end()
    assert recorder.chunks == [(1, b"abc"), (2, b"klm"), (3, b"nop"), (4, b"uvw")]
    assert (recorder.gaps, recorder.ended) == (2, True)


def test_a_stream_ends_when_its_flow_is_replaced_or_the_capture_ends():
    recorders = []

    def handler(flow, key):
        recorders.append(Recorder())
        return recorders[-1]

    tracker = TcpTracker(handler, lambda raw: raw.decode())
    tracker.segment(1, 0.0, b"client", 40000, b"server", 5060, 100, SYN, b"")
    tracker.segment(2, 0.0, b"client", 40000, b"server", 5060, 101, ACK, b"half a message")
    tracker.segment(3, 9.0, b"client", 40000, b"server", 5060, 7000, SYN, b"")  # the port is reused
    assert [r.ended for r in recorders] == [True, False]
    tracker.close()
    assert [r.ended for r in recorders] == [True, True]


def test_connection_tracking_syn_retries_answer_and_reset():
    tracker = TcpTracker(lambda flow, key: None, lambda raw: raw.decode())
    client, server = b"client", b"server"
    tracker.segment(1, 0.0, client, 40000, server, 5060, 100, SYN, b"")
    tracker.segment(2, 1.0, client, 40000, server, 5060, 100, SYN, b"")
    tracker.segment(3, 1.1, server, 5060, client, 40000, 900, RST | ACK, b"")
    tracker.segment(4, 2.0, client, 40001, server, 5060, 500, SYN, b"")
    tracker.segment(5, 2.1, server, 5060, client, 40001, 700, SYN | ACK, b"")
    refused, accepted = tracker.connections
    assert (refused.syn_frame, refused.syn_count, refused.established, refused.reset_frame, refused.reset_by) == (
        1, 2, False, 3, "server")
    assert (accepted.client_port, accepted.server_port, accepted.established, accepted.reset_frame) == (
        40001, 5060, True, None)


def segment(frame_payload: bytes, seq: int, flags: int = 0x18, sport=40000, dport=5060, src="10.0.0.1",
            dst="10.0.0.2") -> tuple[int, bytes]:
    return 1, ethernet(ipv4(tcp(frame_payload, seq, flags, sport, dport), protocol=6, src=src, dst=dst))


def test_sip_over_tcp_split_and_joined_messages():
    stream = b"\r\n\r\n" + INVITE + OK_200 + b"\r\n\r\n" + INVITE  # keep-alives between messages
    cuts = [0, 30, 200, len(INVITE) + 10, len(INVITE) + len(OK_200) + 20, len(stream)]
    pieces = [(cuts[i], stream[cuts[i] : cuts[i + 1]]) for i in range(len(cuts) - 1)]
    packets = [segment(b"", 999, SYN)]
    # Deliver the second and third pieces before the first: out of order.
    for offset, piece in [pieces[1], pieces[2], pieces[0], pieces[3], pieces[3], pieces[4]]:
        packets.append(segment(piece, 1000 + offset))
    result, _, _ = decode(*packets)
    assert [(m.frame, m.method or m.status, m.transport, m.raw) for m in result.sip_messages] == [
        (4, "INVITE", "tcp", INVITE),  # frame 4 filled the hole, completing the INVITE
        (5, 200, "tcp", OK_200),
        (7, "INVITE", "tcp", INVITE),
    ]


def test_sip_over_tcp_byte_by_byte_with_trailing_partial_message():
    stream = INVITE + OK_200[:40]
    packets = [segment(stream[i : i + 1], 5000 + i) for i in range(len(stream))]
    result, _, _ = decode(*packets)
    assert [(m.frame, m.method) for m in result.sip_messages] == [(len(INVITE), "INVITE")]


def test_dns_over_tcp():
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03sip\x07example\x03com\x00\x00\x01\x00\x01"
    framed = len(query).to_bytes(2, "big") + query
    result, _, _ = decode(segment(framed[:5], 1, dport=53), segment(framed[5:], 6, dport=53))
    assert [(m.frame, m.id, m.qtype, m.transport) for m in result.dns_messages] == [(2, 0x1234, "A", "tcp")]


def test_real_tcp_capture_connection(shared_captures):
    from sipdiag.engine import result_for_path

    result = result_for_path(str(shared_captures / "heplify__sip_ipv4_tcp.pcap"))
    assert {m.transport for m in result.sip_messages} == {"tcp"}
    [connection] = result.tcp_connections
    assert connection.established and connection.server_port == 5060
