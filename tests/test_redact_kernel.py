"""The scan kernel's redaction mode: the RTP packets it rewrites must come out
byte for byte as the Python rewriter writes them, with the same summary.

"The Python path" is the same walk with the kernel's tables left empty
(redaction/kernel_input.py KERNEL_REWRITES): then no packet passes its
lookups and every record goes to packets.PacketRewriter.
"""

from __future__ import annotations

import struct

import pytest
from packet_builders import INVITE, addr, ethernet, internet_checksum, ipv4, ipv6, pcap, pcapng, udp
from sipdiag.redaction import kernel_input
from test_kernel import hostile_files
from sipdiag.redaction.redactor import CaptureRedactor

SIP = ethernet(ipv4(udp(INVITE, 5060, 5060)))


def rtp_packet(seq: int, *, csrcs: int = 0, extension: bytes | None = None, padding: int = 0,
               payload_type: int = 0, voice: bytes = b"\xd5" * 160) -> bytes:
    first = 0x80 | csrcs | (0x10 if extension is not None else 0) | (0x20 if padding else 0)
    out = struct.pack("!BBHII", first, payload_type, seq, seq * 160, 0x1234)
    out += b"".join(struct.pack("!I", 0xC5C00000 + n) for n in range(csrcs))
    if extension is not None:
        out += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    out += voice
    if padding:
        out += b"\x77" * (padding - 1) + bytes((padding,))
    return out


def rtp_frame(seq: int, src: str = "10.0.0.1", dst: str = "10.0.0.2", **fields) -> bytes:
    return ethernet(ipv4(udp(rtp_packet(seq, **fields), 4000, 4002), src=src, dst=dst))


def records(frames: list[bytes], endian: str = "<") -> bytes:
    return pcap([(1700000000 + n, n, frame, len(frame)) for n, frame in enumerate(frames)], endian=endian)


def redact(monkeypatch, capture: bytes, kernel: bool, options: dict | None = None, scrub: set[int] = frozenset()):
    """The CLI's passes over `capture`: (copy, summary, records the kernel rewrote in the last round)."""
    monkeypatch.setattr(kernel_input, "KERNEL_REWRITES", kernel)
    counted = []
    rewritten = CaptureRedactor._rewritten

    def counting(self, data, count):
        counted.append(count)
        rewritten(self, data, count)

    monkeypatch.setattr(CaptureRedactor, "_rewritten", counting)
    redactor = CaptureRedactor("test.pcap", "k", options)
    for start in range(0, len(capture), 1 << 20):
        redactor.learn(capture[start : start + (1 << 20)])
    redactor.finish_learning()
    if scrub:  # what a verification finding originals in these frames asks of the next round
        redactor.mend(set(scrub))
        redactor.start_writing()
        counted.clear()
    out = b"".join(redactor.feed(capture[start : start + (1 << 20)]) for start in range(0, len(capture), 1 << 20))
    out += redactor.finish()
    summary = redactor.verify([out], evidence=False)
    return out, summary, sum(counted)


def both(monkeypatch, capture: bytes, kernel_records: int | None, clean: bool = True, **how):
    """The kernel's copy and summary, checked against the Python path's; returns the copy."""
    out, summary, taken = redact(monkeypatch, capture, True, **how)
    python_out, python_summary, python_taken = redact(monkeypatch, capture, False, **how)
    assert python_taken == 0
    assert kernel_records is None or taken == kernel_records
    assert out == python_out
    assert list(summary["mapping"].items()) == list(python_summary["mapping"].items())  # first-seen order
    assert summary == python_summary
    assert summary["leaks"] == 0 or not clean
    return out


def pcap_records(copy: bytes, endian: str = "<") -> list[bytes]:
    out, pos = [], 24
    while pos < len(copy):
        caplen = struct.unpack_from(endian + "I", copy, pos + 8)[0]
        out.append(copy[pos + 16 : pos + 16 + caplen])
        pos += 16 + caplen
    return out


def check_checksums(frame: bytes, ip_at: int) -> None:
    header = (frame[ip_at] & 15) * 4
    total = struct.unpack_from("!H", frame, ip_at + 2)[0]
    assert internet_checksum(frame[ip_at : ip_at + header]) == 0
    segment = frame[ip_at + header : ip_at + total]
    pseudo = frame[ip_at + 12 : ip_at + 20] + struct.pack("!BBH", 0, 17, len(segment))
    assert internet_checksum(pseudo + segment) == 0


def test_qinq_rtp_rewritten_by_the_kernel_as_python_does(monkeypatch):
    frames = [SIP] + [ethernet(ipv4(udp(rtp_packet(n), 4000, 4002)), vlans=(0x88A8, 0x8100)) for n in range(50)]
    copy = both(monkeypatch, records(frames), kernel_records=50)
    packets = pcap_records(copy)
    assert len(packets) == 51
    rtp = packets[1]
    ip_at = 14 + 8
    assert rtp[12:22] == frames[1][12:22]  # the VLAN tags
    assert rtp[ip_at + 12 : ip_at + 20] not in (addr("10.0.0.1") + addr("10.0.0.2"),)
    assert rtp[ip_at + 28 : ip_at + 40] == frames[1][ip_at + 28 : ip_at + 40]  # the RTP header
    assert rtp[ip_at + 40 :] == bytes(160)  # the voice
    check_checksums(rtp, ip_at)


def test_ipv4_options_and_ethernet_trailer_kept(monkeypatch):
    def with_options(seq: int) -> bytes:
        segment = udp(rtp_packet(seq), 4000, 4002)
        header = struct.pack("!BBHHHBBH4s4s", 0x46, 0, 24 + len(segment), 1, 0, 64, 17, 0xBEEF,
                             addr("10.0.0.1"), addr("10.0.0.2")) + b"\x94\x04\x00\x00"  # router alert
        return ethernet(header + segment) + b"\xee\xff\x01\x02"  # a trailer after the datagram

    frames = [SIP] + [with_options(n) for n in range(5)]
    copy = both(monkeypatch, records(frames), kernel_records=5)
    rtp = pcap_records(copy)[1]
    assert rtp[34:38] == b"\x94\x04\x00\x00"
    assert rtp[-4:] == b"\xee\xff\x01\x02"
    assert rtp[38 + 8 + 12 : -4] == bytes(160)
    check_checksums(rtp, 14)


def test_rtp_csrcs_extension_and_padding_keep_their_bytes(monkeypatch):
    frames = [SIP] + [rtp_frame(n, csrcs=2, extension=b"\x10\xaa\xbb\xcc", padding=4) for n in range(3)]
    frames.append(rtp_frame(9, extension=b"\x10\xaa\xbb\xcc" * 100))  # an extension longer than the packet
    frames.append(rtp_frame(10, padding=255, voice=b"\xd5" * 20))  # padding longer than the voice
    frames.append(rtp_frame(11, payload_type=72))  # RTCP's numbers: the text rules' (Python)
    copy = both(monkeypatch, records(frames), kernel_records=5)
    payload = pcap_records(copy)[1][42:]
    header = rtp_packet(0, csrcs=2, extension=b"\x10\xaa\xbb\xcc", padding=4)[:12 + 8 + 8]
    assert payload == header + bytes(160) + b"\x77\x77\x77\x04"


def test_unknown_address_and_mac_mid_stream_learnt_in_order(monkeypatch):
    frames = [SIP] + [rtp_frame(n) for n in range(5)]
    frames += [rtp_frame(n, src="10.0.0.9") for n in range(5, 10)]  # an address only RTP names
    other_mac = bytearray(rtp_frame(10, dst="192.0.2.77"))
    other_mac[6:12] = b"\x02\x11\x22\x33\x44\x55"
    frames += [bytes(other_mac)] * 3 + [rtp_frame(n, src="10.0.0.9") for n in range(11, 14)]
    # Learning, Python met 10.0.0.9 and 192.0.2.77 first; writing, the round's own MAC map
    # meets 02:11:22:33:44:55 in Python once: all else is the kernel's.
    copy = both(monkeypatch, records(frames), kernel_records=len(frames) - 2, options={"mac_addresses": True})
    packets = pcap_records(copy)
    assert packets[6][26:30] == packets[7][26:30] != addr("10.0.0.9")
    assert packets[11][6:12] != b"\x02\x11\x22\x33\x44\x55"


def test_scrub_frame_in_a_later_round_goes_to_python(monkeypatch):
    frames = [SIP] + [rtp_frame(n, extension=b"\x10\xaa\xbb\xcc") for n in range(6)]
    copy = both(monkeypatch, records(frames), kernel_records=5, scrub={4})
    packets = pcap_records(copy)
    assert packets[3][42:] == bytes(len(packets[3]) - 42)  # scrubbed: the whole RTP payload
    assert packets[2][42:54] == frames[2][42:54]


def test_pcapng_epb_and_big_endian_pcap(monkeypatch):
    frames = [SIP] + [rtp_frame(n, voice=b"\xd5" * 161) for n in range(4)]  # padded blocks
    capture = pcapng([(n * 20000, frame) for n, frame in enumerate(frames)])
    copy = both(monkeypatch, capture, kernel_records=4)
    last = capture.rindex(struct.pack("<I", 6))
    assert copy[-(len(capture) - last) :][:8] == capture[last : last + 8]  # the same block length, twice
    assert copy[-4:] == capture[-4:]
    with_option = bytearray(capture)
    # The last EPB: an option makes it Python's (Block.encode() drops the comment).
    body = capture[last + 8 : -4] + struct.pack("<HH", 1, 4) + b"note" + struct.pack("<HH", 0, 0)
    with_option[last:] = struct.pack("<II", 6, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    both(monkeypatch, bytes(with_option), kernel_records=3, options={"pcapng_metadata": True})
    both(monkeypatch, records(frames, endian=">"), kernel_records=4)


def test_ipv6_and_raw_ip(monkeypatch):
    sip6 = ethernet(ipv6(udp(INVITE, 5060, 5060)), ethertype=0x86DD)
    frames = [sip6] + [ethernet(ipv6(udp(rtp_packet(n), 4000, 4002)), ethertype=0x86DD) for n in range(4)]
    copy = both(monkeypatch, records(frames), kernel_records=4)
    rtp = pcap_records(copy)[1]
    segment = rtp[54:]
    assert internet_checksum(rtp[22:54] + struct.pack("!IxxxB", len(segment), 17) + segment) == 0
    raw = [ipv4(udp(INVITE))] + [ipv4(udp(rtp_packet(n), 4000, 4002)) for n in range(3)]
    both(monkeypatch, pcap([(1, 0, frame, len(frame)) for frame in raw], linktype=101), kernel_records=3)


def test_rtp_payloads_kept_are_all_python_s(monkeypatch):
    frames = [SIP] + [rtp_frame(n, voice=b"sip:alice@example.com".ljust(160)) for n in range(4)]
    copy = both(monkeypatch, records(frames), kernel_records=0, options={"rtp_payload": False})
    assert b"alice" not in copy and b"example.com" not in copy  # the text rules' work


def test_linux_cooked_captures(monkeypatch):
    def sll(packet: bytes) -> bytes:  # packet type, ARPHRD_ETHER, address length 6, the MAC and 2 pad bytes
        return struct.pack("!HHH", 0, 1, 6) + b"\x02\x00\x00\x00\x00\x01\0\0" + struct.pack("!H", 0x0800) + packet

    def sll2(packet: bytes) -> bytes:  # protocol, reserved, interface, ARPHRD_ETHER, packet type, length 6, MAC
        return struct.pack("!HHIHBB", 0x0800, 0, 2, 1, 0, 6) + b"\x02\x00\x00\x00\x00\x01\0\0" + packet

    for cooked, linktype, mac_at in ((sll, 113, 6), (sll2, 276, 12)):
        frames = [cooked(ipv4(udp(INVITE)))] + [cooked(ipv4(udp(rtp_packet(n), 4000, 4002))) for n in range(3)]
        capture = pcap([(1, n, frame, len(frame)) for n, frame in enumerate(frames)], linktype=linktype)
        copy = both(monkeypatch, capture, kernel_records=3)
        assert pcap_records(copy)[1][mac_at : mac_at + 6] not in (frames[1][mac_at : mac_at + 6],)


@pytest.mark.parametrize("port", [53, 5353, 5355, 67, 137, 138, 546, 4789, 2152])
def test_ports_python_reads_before_rtp_are_left_to_it(monkeypatch, port):
    frames = [SIP, ethernet(ipv4(udp(rtp_packet(1), 4000, port))), rtp_frame(2)]
    # Python may read such a packet as its port's protocol (and the verification then judge it).
    both(monkeypatch, records(frames), kernel_records=1, clean=False)


def test_more_output_than_the_kernel_holds_at_once(monkeypatch):
    # ~2.6 MB of RTP: the kernel's 2 MB output area fills and is emptied mid-walk.
    frames = [SIP] + [rtp_frame(n % 65536) for n in range(12000)]
    copy = both(monkeypatch, records(frames), kernel_records=12000)
    assert len(pcap_records(copy)) == 12001


@pytest.mark.parametrize("name", hostile_files())
def test_hostile_records_end_in_the_reader_s_warning_on_both_paths(monkeypatch, name):
    data, _status, _at, warning = hostile_files()[name]
    copy = both(monkeypatch, data, kernel_records=None, clean=False)
    _, summary, _ = redact(monkeypatch, data, True)
    assert warning in summary["warnings"]
    assert copy.startswith(data[:24])
