"""One real call taken out of a capture, to be cloned by make_capture.py.

The template is the first INVITE dialog of the source whose SDP announces
media that really flowed: its SIP packets (split into those up to the last
media packet and those after it, the BYE) and its RTP/RTCP packets grouped
into streams. Only UDP SIP over Ethernet/IPv4 is supported:
that is what the shared RTP captures are, and it lets the generator patch
media packets in place with a few struct writes.
"""

from __future__ import annotations

import re
import socket
import statistics
import struct
from dataclasses import dataclass, field

LINKTYPE_ETHERNET = 1
VLAN_ETHERTYPES = (0x8100, 0x88A8)
ETHERTYPE_IPV4 = 0x0800
IPPROTO_UDP = 17
CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
SDP_CONNECTION = re.compile(rb"^c=IN IP4 ([0-9.]+)", re.MULTILINE)
SDP_MEDIA_PORT = re.compile(rb"^m=\w+ (\d+)", re.MULTILINE)
# RTCP packet types 200-204 read as RTP payload types 72-76 once the marker bit is masked off.
RTCP_PAYLOAD_TYPES = range(72, 77)


@dataclass
class Frame:
    time: float
    data: bytes  # the whole link-layer frame
    ip_offset: int  # where the IPv4 header starts in data
    udp_offset: int  # where the UDP header starts in data
    src: tuple[str, int]
    dst: tuple[str, int]

    @property
    def payload(self) -> bytes:
        return self.data[self.udp_offset + 8:]


@dataclass
class MediaStream:
    """The packets of one 5-tuple, in arrival order."""
    frames: list[Frame]
    is_rtp: bool  # False for RTCP: its packets are repeated, not renumbered

    @property
    def interval(self) -> float:
        """Typical gap between packets (the packetization time for RTP)."""
        return statistics.median(b.time - a.time for a, b in zip(self.frames, self.frames[1:]))

    @property
    def timestamp_step(self) -> int:
        """Typical RTP timestamp increment per packet (160 for 20 ms of G.711)."""
        stamps = [int.from_bytes(f.payload[4:8], "big") for f in self.frames]
        return int(statistics.median((b - a) % 2**32 for a, b in zip(stamps, stamps[1:])))


@dataclass
class CallTemplate:
    linktype: int
    opening: list[Frame]  # SIP up to the last media packet (setup, and any mid-call requests)
    closing: list[Frame]  # SIP after the last media packet (BYE and its answer)
    streams: list[MediaStream]
    media_addresses: set[tuple[str, int]] = field(default_factory=set)  # from the SDP (RTP ports)

    @property
    def media_start(self) -> float:
        return min(s.frames[0].time for s in self.streams)

    @property
    def media_end(self) -> float:
        return max(s.frames[-1].time for s in self.streams)


def udp_frame(time: float, data: bytes) -> Frame | None:
    """The frame if it is an unfragmented UDP/IPv4 datagram over Ethernet (VLAN tags allowed)."""
    offset = 12
    ethertype = struct.unpack_from("!H", data, offset)[0]
    while ethertype in VLAN_ETHERTYPES:
        offset += 4
        ethertype = struct.unpack_from("!H", data, offset)[0]
    ip = offset + 2
    if ethertype != ETHERTYPE_IPV4 or data[ip + 9] != IPPROTO_UDP or struct.unpack_from("!H", data, ip + 6)[0] & 0x3FFF:
        return None
    udp = ip + (data[ip] & 0x0F) * 4
    sport, dport = struct.unpack_from("!HH", data, udp)
    src = (socket.inet_ntoa(data[ip + 12:ip + 16]), sport)
    dst = (socket.inet_ntoa(data[ip + 16:ip + 20]), dport)
    return Frame(time, data, ip, udp, src, dst)


def looks_like_sip(payload: bytes) -> bool:
    first_line = payload.split(b"\r\n", 1)[0]
    return first_line.startswith(b"SIP/2.0 ") or first_line.endswith(b" SIP/2.0")


def media_addresses(sip_frames: list[Frame]) -> set[tuple[str, int]]:
    addresses = set()
    for frame in sip_frames:
        connection = SDP_CONNECTION.search(frame.payload)
        if connection:
            host = connection.group(1).decode()
            addresses.update((host, int(port)) for port in SDP_MEDIA_PORT.findall(frame.payload))
    return addresses


def is_media_of(frame: Frame, addresses: set[tuple[str, int]]) -> bool:
    """RTP to/from an SDP address, or RTCP on the port above it, with an RTP version 2 header."""
    payload = frame.payload
    if len(payload) < 12 or payload[0] >> 6 != 2:
        return False
    ends = (frame.src, frame.dst)
    return any(end in addresses or (end[0], end[1] - 1) in addresses for end in ends)


def read_template(packets: list[tuple[float, bytes]], linktype: int) -> CallTemplate:
    """The first INVITE dialog with media in (time, frame) records of an Ethernet capture."""
    if linktype != LINKTYPE_ETHERNET:
        raise SystemExit(f"make_capture: the source must be an Ethernet capture (link type {linktype} is not)")
    frames = [f for f in (udp_frame(t, d) for t, d in packets) if f is not None]
    sip = [f for f in frames if looks_like_sip(f.payload)]
    invites = [f for f in sip if f.payload.startswith(b"INVITE ")]
    for invite in invites:
        call_id = CALL_ID.search(invite.payload).group(1)
        dialog = [f for f in sip if (m := CALL_ID.search(f.payload)) and m.group(1) == call_id]
        addresses = media_addresses(dialog)
        # Up to the BYE: a later call may reuse one side's media address.
        bye = next((f.time for f in dialog if f.payload.startswith(b"BYE ")), float("inf"))
        media = [f for f in frames if invite.time <= f.time <= bye and is_media_of(f, addresses)]
        by_tuple: dict[tuple, list[Frame]] = {}
        for frame in media:
            by_tuple.setdefault((frame.src, frame.dst), []).append(frame)
        # A stream needs two packets to have an interval; single probes are not media.
        streams = [MediaStream(fs, fs[0].payload[1] & 0x7F not in RTCP_PAYLOAD_TYPES)
                   for fs in by_tuple.values() if len(fs) >= 2]
        if not any(s.is_rtp for s in streams):
            continue
        template = CallTemplate(linktype, [], [], streams, addresses)
        template.opening = [f for f in dialog if f.time <= template.media_end]
        template.closing = [f for f in dialog if f.time > template.media_end]
        return template
    raise SystemExit("make_capture: the source has no INVITE dialog with RTP announced in its SDP")
