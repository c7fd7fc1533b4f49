"""The packet layer: every supported link type and tunnel, ICMP, HEP, DNS, RTP hand-off.

Packets are built byte by byte (tests/packet_builders.py) and fed through
PacketDecoder the way the engine does.
"""

from __future__ import annotations

import struct

import pytest
from packet_builders import INVITE, OK_200, addr, ethernet, ipv4, ipv6, rtp, udp
from sipdiag.capture.decoder import PacketDecoder
from sipdiag.capture.scan import Kernel
from sipdiag.model import CaptureInfo, CaptureResult
from sipdiag.protocols.rtp import RtpTracker


def decode(*packets: tuple[int, bytes]) -> tuple[CaptureResult, PacketDecoder, RtpTracker]:
    result = CaptureResult(capture=CaptureInfo(file="test"))
    tracker = RtpTracker(Kernel())
    decoder = PacketDecoder(result, tracker)
    records = [(frame, 1000.0 + frame, linktype, data) for frame, (linktype, data) in enumerate(packets, start=1)]
    decoder.decode_records(records, reraise)
    return result, decoder, tracker


def reraise(frame: int, error: Exception) -> None:
    """A decoder that fails on a test packet is a bug to see, not a warning to count."""
    raise error


def sip_summary(result: CaptureResult) -> list[tuple]:
    return [(m.frame, m.method or m.status, m.src, m.dst, m.transport) for m in result.sip_messages]


SIP_V4 = ipv4(udp(INVITE, 5062, 5070))
SIP_V6 = ipv6(udp(INVITE, 5062, 5070))
V4_ROW = [(1, "INVITE", "10.0.0.1:5062", "10.0.0.2:5070", "udp")]
V6_ROW = [(1, "INVITE", "[2001:db8::1]:5062", "[2001:db8::2]:5070", "udp")]


@pytest.mark.parametrize(
    ("linktype", "packet", "expected"),
    [
        (1, ethernet(SIP_V4), V4_ROW),
        (1, ethernet(SIP_V6, 0x86DD), V6_ROW),
        (1, ethernet(SIP_V4, vlans=(0x8100,)), V4_ROW),
        (1, ethernet(SIP_V4, vlans=(0x88A8, 0x8100)), V4_ROW),
        (1, ethernet(SIP_V4, vlans=(0x9100, 0x8100)), V4_ROW),
        (113, struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800) + SIP_V4, V4_ROW),
        (276, struct.pack("!HHIHBB8s", 0x86DD, 0, 2, 1, 0, 6, bytes(8)) + SIP_V6, V6_ROW),
        (101, SIP_V4, V4_ROW),
        (12, SIP_V6, V6_ROW),
        (14, SIP_V4, V4_ROW),
        (228, SIP_V4, V4_ROW),
        (229, SIP_V6, V6_ROW),
        (0, struct.pack("<I", 2) + SIP_V4, V4_ROW),
        (0, struct.pack(">I", 30) + SIP_V6, V6_ROW),
        (108, struct.pack(">I", 2) + SIP_V4, V4_ROW),
        # Ethernet padding after a short datagram must not end up in the message.
        (1, ethernet(ipv4(udp(OK_200))) + bytes(30), [(1, 200, "10.0.0.1:5060", "10.0.0.2:5060", "udp")]),
    ],
    ids=["eth", "eth-v6", "vlan", "qinq-88a8", "qinq-9100", "sll", "sll2", "raw101", "raw12", "raw14",
         "ipv4", "ipv6", "null-le", "null-be-v6", "loop", "eth-padding"],
)
def test_link_types(linktype: int, packet: bytes, expected: list):
    result, _, _ = decode((linktype, packet))
    assert sip_summary(result) == expected
    assert result.sip_messages[0].raw in (INVITE, OK_200)


def test_ipv6_extension_headers_are_skipped():
    hop_by_hop = bytes((60, 0)) + bytes(6)  # next: destination options
    destination = bytes((17, 0)) + bytes(6)  # next: UDP
    result, _, _ = decode((229, ipv6(hop_by_hop + destination + udp(INVITE, 5062, 5070), next_header=0)))
    assert sip_summary(result) == V6_ROW


def gre(payload: bytes, protocol: int, flags: int = 0, extra: bytes = b"") -> bytes:
    return ipv4(struct.pack("!HH", flags, protocol) + extra + payload, protocol=47, src="192.0.2.1", dst="192.0.2.2")


INNER_V4, INNER_V6 = "10.0.0.1", "2001:db8::1"


@pytest.mark.parametrize(
    ("outer", "inner_src"),
    [
        (gre(SIP_V4, 0x0800), INNER_V4),
        (gre(SIP_V4, 0x0800, flags=0xB000, extra=bytes(12)), INNER_V4),  # checksum, key, sequence present
        (gre(ethernet(SIP_V6, 0x86DD), 0x6558), INNER_V6),
        (gre(bytes(8) + ethernet(SIP_V4), 0x88BE, flags=0x1000, extra=bytes(4)), INNER_V4),  # ERSPAN II
        (gre(ethernet(SIP_V4), 0x88BE), INNER_V4),  # ERSPAN I: no sequence, no ERSPAN header
        (gre(bytes(12) + ethernet(SIP_V4), 0x22EB, flags=0x1000, extra=bytes(4)), INNER_V4),  # ERSPAN III
        (gre(bytes(11) + b"\x01" + bytes(8) + ethernet(SIP_V4), 0x22EB, flags=0x1000, extra=bytes(4)), INNER_V4),
        (ipv4(SIP_V4, protocol=4, src="192.0.2.1", dst="192.0.2.2"), INNER_V4),  # IP-in-IP
        (ipv4(SIP_V6, protocol=41, src="192.0.2.1", dst="192.0.2.2"), INNER_V6),  # 6in4
        (ipv6(SIP_V4, next_header=4, src="2001:db8::99"), INNER_V4),  # 4in6
        (ipv4(udp(b"\x08\x00\x00\x00\x00\x00\x01\x00" + ethernet(SIP_V4), 51000, 4789), src="192.0.2.1"), INNER_V4),
        (ipv4(gre(b"\xff\x03\x00\x21" + SIP_V4, 0x880B, flags=0x3081, extra=bytes(12)), protocol=4), INNER_V4),
    ],
    ids=["gre", "gre-options", "gre-teb-v6", "erspan2", "erspan1", "erspan3", "erspan3-sub", "ipip", "6in4", "4in6",
         "vxlan", "pptp-ppp"],
)
def test_tunnels_deliver_the_inner_message(outer: bytes, inner_src: str):
    result, _, _ = decode((1, ethernet(outer, 0x86DD if outer[0] >> 4 == 6 else 0x0800)))
    assert [(m.frame, m.method, m.src_ip) for m in result.sip_messages] == [(1, "INVITE", inner_src)]


def test_pppoe_session():
    result, _, _ = decode((1, ethernet(b"\x11\x00\x00\x01\x00\x00" + b"\x00\x21" + SIP_V4, 0x8864)))
    assert sip_summary(result) == V4_ROW


def hep3(chunks: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(struct.pack("!HHH", 0, kind, 6 + len(value)) + value for kind, value in chunks)
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body


def test_hep3_gives_the_inner_endpoints_and_the_outer_frame():
    packet = hep3([
        (1, b"\x02"), (2, b"\x11"), (3, addr("198.51.100.7")), (4, addr("198.51.100.8")),
        (7, struct.pack("!H", 5080)), (8, struct.pack("!H", 5090)), (9, struct.pack("!I", 1)),
        (11, b"\x01"), (15, OK_200),
    ])
    not_sip = hep3([(3, addr("198.51.100.7")), (4, addr("198.51.100.8")), (7, b"\x00\x01"), (8, b"\x00\x02"),
                    (11, b"\x64"), (15, b"{}")])
    result, decoder, _ = decode((1, ethernet(ipv4(udp(not_sip, 40000, 9060)))),
                                (1, ethernet(ipv4(udp(packet, 40000, 9060)))))
    assert sip_summary(result) == [(2, 200, "198.51.100.7:5080", "198.51.100.8:5090", "udp")]
    assert decoder.warnings() == ["HEP3 payload type 100 (log): 1 packet not analyzed"]


def icmp_unreachable(quoted: bytes) -> bytes:
    return ipv4(struct.pack("!BBHI", 3, 3, 0, 0) + quoted, protocol=1, src="10.0.0.2", dst="10.0.0.1")


def test_icmp_error_is_evidence_and_its_quoted_sip_is_not_a_message():
    result, _, _ = decode((1, ethernet(icmp_unreachable(SIP_V4))))
    assert result.sip_messages == []
    [error] = result.icmp_errors
    assert (error.frame, error.reporter_ip, error.description, error.quoted_protocol) == (
        1, "10.0.0.2", "port unreachable", "udp")
    assert (error.quoted_src_ip, error.quoted_src_port, error.quoted_dst_ip, error.quoted_dst_port) == (
        "10.0.0.1", 5062, "10.0.0.2", 5070)
    assert error.quoted_sip is True


def test_icmpv6_unreachable_quoting_a_cut_sip_packet():
    quoted = SIP_V6[:48 + 40]  # routers may quote only the start
    icmp6 = struct.pack("!BBHI", 1, 4, 0, 0) + quoted
    result, _, _ = decode((229, ipv6(icmp6, next_header=58, src="2001:db8::ff")))
    assert result.sip_messages == []
    [error] = result.icmp_errors
    assert (error.reporter_ip, error.description, error.quoted_dst_ip, error.quoted_dst_port, error.quoted_sip) == (
        "2001:db8::ff", "port unreachable", "2001:db8::2", 5070, True)


def test_icmp_echo_is_ignored():
    echo = ipv4(struct.pack("!BBHI", 8, 0, 0, 0) + SIP_V4, protocol=1)
    result, _, _ = decode((1, ethernet(echo)))
    assert (result.sip_messages, result.icmp_errors) == ([], [])


def test_dns_query_over_udp():
    query = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0) + b"\x04_sip\x04_udp\x07example\x03com\x00" + b"\x00\x21\x00\x01"
    result, _, _ = decode((1, ethernet(ipv4(udp(query, 33000, 53)))))
    [message] = result.dns_messages
    assert (message.frame, message.id, message.qtype, message.src_ip, message.src_port, message.transport) == (
        1, 0xBEEF, "SRV", "10.0.0.1", 33000, "udp")
    assert message.qname.rstrip(".") == "_sip._udp.example.com"


def test_rtp_goes_to_the_tracker_and_sdp_announces_it():
    packets = [(1, ethernet(ipv4(udp(INVITE))))]
    packets += [(1, ethernet(ipv4(udp(rtp(seq), 4002, 4000), src="10.0.0.2", dst="10.0.0.1"))) for seq in range(50)]
    result, _, tracker = decode(*packets)
    [stream] = [s for s in tracker.streams() if s.dst == "10.0.0.1:4000"]
    assert (stream.src, stream.packets, stream.first_frame, stream.last_frame, stream.lost) == ("10.0.0.2:4002", 50, 2, 51, 0)
    assert len(result.sip_messages) == 1


def test_unsupported_link_type_is_counted():
    result, decoder, _ = decode((147, b"\x00" * 40), (147, b"\x00" * 40), (1, ethernet(SIP_V4)))
    assert decoder.warnings() == ["link type 147 (USER0): 2 packets not analyzed"]
    assert len(result.sip_messages) == 1


@pytest.mark.parametrize("cut", range(0, len(ethernet(SIP_V4)), 7))
def test_truncated_packets_never_raise(cut: int):
    packet = ethernet(ipv4(udp(INVITE)))[:cut]
    for linktype in (0, 1, 101, 113, 276):
        decode((linktype, packet))


def nested_ipip(depth: int) -> bytes:
    packet = SIP_V4
    for _ in range(depth):
        packet = ipv4(packet, protocol=4, src="192.0.2.1", dst="192.0.2.2")
    return packet


@pytest.mark.parametrize(
    ("linktype", "packet", "kind"),
    [
        (1, ethernet(b"\x02\x07\x04" + bytes(40), 0x88CC), "ethertype 0x88cc (LLDP)"),
        (1, ethernet(bytes(46), 0x1234), "ethertype 0x1234"),
        (1, ethernet(b"\x42\x42\x03" + bytes(35), 38), "802.3 frames with LLC (STP)"),
        (1, ethernet(b"\xaa\xaa\x03\x00\x00\x0c\x20\x00" + bytes(30), 38), "802.3 frames with LLC (CDP)"),
        (1, ethernet(b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + SIP_V4, 38), "802.3 frames with LLC (SNAP 00:00:00 protocol 0x0800)"),
        (1, ethernet(ipv4(bytes(40), protocol=89)), "IP protocol 89 (OSPF)"),
        (1, ethernet(ipv6(bytes(40), next_header=50), 0x86DD), "IP protocol 50 (ESP, encrypted)"),
        (1, ethernet(ipv4(bytes(20), protocol=253)), "IP protocol 253"),
        (9, b"\xff\x03\xc0\x21" + bytes(10), "PPP protocol 0xc021 (LCP)"),
        (1, ethernet(b"\x00\x01\x01\x40" + b"\x50" + bytes(30), 0x8847),
         "MPLS payloads that are neither IP nor an Ethernet pseudowire"),
        (105, b"\x80\x00" + bytes(40), "802.11 management and control frames"),
        (105, b"\x08\x40" + bytes(40), "802.11 protected (encrypted) data frames"),
        (105, b"\x08\x00" + bytes(22) + b"\x12\x34" + bytes(20), "802.11 data frames without an LLC/SNAP header (A-MSDU or other)"),
        (101, b"\x50" + bytes(30), "packets of IP version 5, where IPv4 or IPv6 was expected"),
        (1, ethernet(ipv4(udp(b"\x30\xff\x00\x04" + bytes(4) + b"\x50\x00\x00\x00", 2152, 2152))),
         "GTP-U payloads that are not IP"),
        (101, nested_ipip(5), "tunnels nested more than 4 deep"),
        (231, bytes(20), "link type 231 (D-Bus)"),
    ],
    ids=["lldp", "unnamed-ethertype", "stp", "cdp", "snap-ip", "ospf", "esp-v6", "ip-253",
         "ppp-lcp", "mpls-other", "wifi-beacon", "wifi-protected", "wifi-no-snap", "ip-version-5", "gtp-not-ip",
         "too-deep", "dbus"],
)
def test_what_is_not_read_is_counted_by_kind(linktype: int, packet: bytes, kind: str):
    result, decoder, _ = decode((linktype, packet), (linktype, packet), (1, ethernet(SIP_V4)))
    assert decoder.warnings() == [f"{kind}: 2 packets not analyzed"]
    assert len(result.sip_messages) == 1


@pytest.mark.parametrize(
    ("linktype", "packet"),
    [
        (1, ethernet(ipv6(b"", next_header=59), 0x86DD)),  # "no next header": nothing left to read
        (105, b"\x48\x00" + bytes(22)),  # 802.11 null data frame (power save): no body
        (101, nested_ipip(4)),  # four tunnels deep is still read
        (1, ethernet(ipv4(struct.pack("!BBHI", 8, 0, 0, 0), protocol=1))),  # ICMP echo: read, nothing for us
    ],
    ids=["ipv6-no-next", "wifi-null", "four-deep", "icmp-echo"],
)
def test_packets_read_to_their_end_are_not_counted(linktype: int, packet: bytes):
    _, decoder, _ = decode((linktype, packet))
    assert decoder.warnings() == []


def test_unread_kinds_each_get_one_line_with_their_count():
    lldp = (1, ethernet(bytes(46), 0x88CC))
    _, decoder, _ = decode(lldp, (1, ethernet(ipv4(bytes(20), protocol=2))), lldp, (147, bytes(8)), lldp)
    assert decoder.warnings() == [
        "link type 147 (USER0): 1 packet not analyzed",
        "ethertype 0x88cc (LLDP): 3 packets not analyzed",
        "IP protocol 2 (IGMP): 1 packet not analyzed",
    ]


def test_many_kinds_of_unread_packets_stay_a_short_list():
    packets = [(1, ethernet(bytes(46), 0x9100 + n)) for n in range(1, 31)] + [(1, ethernet(bytes(46), 0x9101))]
    _, decoder, _ = decode(*packets)
    warnings = decoder.warnings()
    assert warnings[0] == "ethertype 0x9101: 2 packets not analyzed"  # most common first
    assert len(warnings) == 21 and warnings[-1] == "10 more kinds: 10 packets not analyzed"
