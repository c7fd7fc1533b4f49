"""Byte-level packet builders for the packet-layer tests (headers per the RFCs)."""

from __future__ import annotations

import ipaddress
import struct


def internet_checksum(data: bytes) -> int:
    """RFC 1071: the one's complement of the one's complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: call-1@10.0.0.1\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n" % len(SDP)
) + SDP
OK_200 = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\n"
    b"Call-ID: call-1@10.0.0.1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def ethernet(payload: bytes, ethertype: int = 0x0800, vlans: tuple[int, ...] = ()) -> bytes:
    head = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01"
    for tpid in vlans:
        head += struct.pack("!HH", tpid, 100)
    return head + struct.pack("!H", ethertype) + payload


def ipv4(payload: bytes, protocol: int = 17, src: str = "10.0.0.1", dst: str = "10.0.0.2", ident: int = 1,
         fragment: int = 0) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, fragment, 64, protocol, 0,
                       addr(src), addr(dst)) + payload


def ipv6(payload: bytes, next_header: int = 17, src: str = "2001:db8::1", dst: str = "2001:db8::2") -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_header, 64, addr(src), addr(dst)) + payload


def udp(payload: bytes, sport: int = 5060, dport: int = 5060) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(payload: bytes, seq: int, flags: int = 0x18, sport: int = 40000, dport: int = 5060) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload


def rtp(seq: int, ssrc: int = 0x1234, payload_type: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type, seq, seq * 160, ssrc) + bytes(160)


def pcap_pieces(packets, endian="<", nanos=False, linktype=1, snaplen=65535):
    """A pcap file's bytes piece by piece, from (seconds, fraction, data, original length) records:
    a file far larger than memory can be written from a generator of records."""
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    yield struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)
    for sec, frac, data, orig in packets:
        yield struct.pack(endian + "IIII", sec, frac, len(data), orig)
        yield data


def pcap(packets, *file_header, **named):
    """A pcap file of (seconds, fraction, data, original length) records."""
    return b"".join(pcap_pieces(packets, *file_header, **named))  # one join: thousands of packets stay linear


def pcapng(packets, linktype=1, tsresol=None, tsoffset=None):
    """A little-endian pcapng file: one interface, an enhanced packet block per (ticks, data)."""

    def block(block_type, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", block_type, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    def option(code, value):
        return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)

    options = b""
    if tsresol is not None:
        options += option(9, bytes([tsresol]))
    if tsoffset is not None:
        options += option(14, struct.pack("<q", tsoffset))
    if options:
        options += option(0, b"")
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", linktype, 0, 0) + options)
    for ticks, data in packets:
        out += block(6, struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)) + data)
    return out
