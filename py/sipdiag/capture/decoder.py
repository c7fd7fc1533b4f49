"""Per-packet decoding: link layers and tunnels down to SIP, DNS, RTP, ICMP, TCP.

The scan kernel (capture/scan.py) takes the bulk of a capture, RTP on the
common path, and hands every other packet here. Each is still judged by a few
byte comparisons (UDP port 53, an upper-case first payload byte, the RTP
version bits, a known TCP stream) and only what can matter is decoded fully;
RTP found here (in tunnels, reassembled fragments, ...) goes back to the
kernel's accounting. Addresses stay raw bytes until a message needs them as
text, and their text forms are cached because the same endpoints repeat.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from operator import attrgetter
from struct import Struct

from ..model import CaptureResult, DnsMessage, IcmpError, SipMessage, TlsConnection, hostport
from ..protocols import tls
from ..protocols.dns import DnsStreamFramer, parse_dns
from ..protocols.rtp import RtpTracker
from ..protocols.sip import SipStreamFramer, looks_like_sip, parse_message
from ..protocols.websocket import WebSocketStream, starts_http
from .ipfrag import FragmentReassembler
from .tcp import TcpFlow, TcpTracker

# Link types (https://www.tcpdump.org/linktypes.html); 12 and 14 are raw IP in
# libpcap's DLT numbering on most platforms.
LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_LOOP = 0, 1, 108
LINKTYPE_RAW = (101, 12, 14)
LINKTYPE_IPV4, LINKTYPE_IPV6 = 228, 229
LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = 113, 276
LINKTYPE_PPP, LINKTYPE_PPP_HDLC, LINKTYPE_C_HDLC = 9, 50, 104
LINKTYPE_IEEE802_11, LINKTYPE_RADIOTAP, LINKTYPE_NFLOG = 105, 127, 239

ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
ETH_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
ETH_TRANSPARENT_BRIDGING, ETH_ERSPAN_2, ETH_ERSPAN_3 = 0x6558, 0x88BE, 0x22EB
ETH_PPPOE_SESSION, ETH_PPP = 0x8864, 0x880B
ETH_MPLS = (0x8847, 0x8848)
LLC_SNAP = b"\xaa\xaa\x03"
NFLOG_PAYLOAD = 9
RADIOTAP_FCS = 0x10  # flags field: the frame ends in its 4-byte FCS
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057

IP_ICMP, IP_IPV4, IP_TCP, IP_UDP, IP_IPV6, IP_GRE, IP_ICMPV6, IP_SCTP = 1, 4, 6, 17, 41, 47, 58, 132
IPV6_FRAGMENT = 44
IPV6_NO_NEXT_HEADER = 59  # nothing follows: nothing left unread
# Extension headers with the generic (next header, length in 8-octet units) layout.
IPV6_EXTENSIONS = frozenset((0, 43, 60, 135, 139, 140))
IPV6_AH = 51

DNS_PORTS = frozenset((53, 5353))
VXLAN_PORT = 4789
GTP_U_PORT = 2152  # 3GPP TS 29.281
GTP_T_PDU = 0xFF
SCTP_DATA = 0
# An SCTP message cut into more chunks than this is not waited for.
MAX_SCTP_PIECES = 64
HEP3_MAGIC = b"HEP3"
HEP_SIP = 1

MAX_TUNNEL_DEPTH = 4
TOO_DEEP = f"tunnels nested more than {MAX_TUNNEL_DEPTH} deep"
# Kinds of unread packets named one per line; the rest are summed in one.
MAX_UNREAD_LINES = 20
# Below this an Ethernet type field is an 802.3 length, and an LLC header follows (IEEE 802.2).
ETH_FIRST_TYPE = 0x0600
# Text-form caches are cleared when they reach this size (address scans).
MAX_CACHED_FLOWS = 65536
_UPPER_FIRST = frozenset(range(0x41, 0x5B))

_U16 = Struct("!H")
_U16_PAIR = Struct("!HH")
_IPV4_FIELDS = Struct("!HHHBB")  # total length, id, flags+offset, ttl, protocol (from byte 2)
_TCP_FIELDS = Struct("!HHIIH")  # ports, seq, ack, data offset + flags
_HEP_CHUNK = Struct("!HHH")

ICMP_DESCRIPTIONS = {
    (4, 3, 0): "network unreachable", (4, 3, 1): "host unreachable", (4, 3, 2): "protocol unreachable",
    (4, 3, 3): "port unreachable", (4, 3, 4): "fragmentation needed", (4, 3, 9): "network administratively prohibited",
    (4, 3, 10): "host administratively prohibited", (4, 3, 13): "communication administratively prohibited",
    (4, 11, 0): "TTL exceeded in transit", (4, 11, 1): "fragment reassembly time exceeded",
    (6, 1, 0): "no route to destination", (6, 1, 1): "communication administratively prohibited",
    (6, 1, 3): "address unreachable", (6, 1, 4): "port unreachable", (6, 1, 5): "source address failed policy",
    (6, 1, 6): "reject route to destination", (6, 2, 0): "packet too big",
    (6, 3, 0): "hop limit exceeded in transit", (6, 3, 1): "fragment reassembly time exceeded",
}
ICMP_ERROR_TYPES = {4: frozenset((3, 11)), 6: frozenset((1, 2, 3))}

# Names for what the decoder does not read, so the warning that counts them
# says what they are (tcpdump.org link types, IEEE and IANA registries).
LINK_TYPE_NAMES = {
    3: "AX.25", 6: "Token Ring", 8: "SLIP", 10: "FDDI", 119: "Prism", 139: "SS7 MTP2 with pseudo-header",
    140: "SS7 MTP2", 141: "SS7 MTP3", 142: "SS7 SCCP", 143: "DOCSIS", 163: "802.11 AVS",
    187: "Bluetooth HCI H4", 189: "Linux USB", 192: "802.11 PPI", 195: "IEEE 802.15.4",
    201: "Bluetooth HCI H4 with pseudo-header", 220: "Linux USB (memory-mapped)", 231: "D-Bus",
    249: "USBPcap", 251: "Bluetooth LE link layer", 252: "Wireshark upper PDU",
    **{147 + n: f"USER{n}" for n in range(16)},
}
ETHERTYPE_NAMES = {
    0x0806: "ARP", 0x0842: "Wake-on-LAN", 0x22F0: "AVTP", 0x22F3: "TRILL", 0x8035: "RARP",
    0x809B: "AppleTalk", 0x80F3: "AARP", 0x8137: "IPX", 0x8808: "Ethernet flow control",
    0x8809: "slow protocols (LACP)", 0x8863: "PPPoE discovery", 0x887B: "HomePlug", 0x888E: "802.1X (EAPOL)",
    0x8892: "PROFINET", 0x88A2: "ATA over Ethernet", 0x88A4: "EtherCAT", 0x88B5: "local experimental",
    0x88B6: "local experimental", 0x88CC: "LLDP", 0x88E1: "HomePlug AV", 0x88E3: "MRP", 0x88E5: "MACsec",
    0x88E7: "802.1ah PBB", 0x88F7: "PTP", 0x88FB: "PRP", 0x8902: "802.1ag CFM", 0x8906: "FCoE",
    0x8914: "FCoE initialization", 0x8915: "RoCE", 0x892F: "HSR", 0x893A: "IEEE 1905.1",
    0x9000: "Ethernet loopback",
}
LLC_NAMES = {0x42: "STP", 0xE0: "IPX", 0xF0: "NetBIOS", 0xFE: "OSI: IS-IS, ES-IS"}
SNAP_NAMES = {  # (OUI, protocol) after AA AA 03
    (b"\x00\x00\x0c", 0x2000): "CDP", (b"\x00\x00\x0c", 0x2003): "VTP", (b"\x00\x00\x0c", 0x2004): "DTP",
    (b"\x00\x00\x0c", 0x010B): "PVST+", (b"\x00\x00\x0c", 0x0111): "UDLD",
}
IP_PROTOCOL_NAMES = {
    2: "IGMP", 33: "DCCP", 46: "RSVP", 50: "ESP, encrypted", 51: "AH", 88: "EIGRP", 89: "OSPF", 103: "PIM",
    112: "VRRP", 115: "L2TP", 136: "UDP-Lite", 137: "MPLS in IP",
}
HEP_TYPE_NAMES = {  # HEP3 chunk 11, "protocol type"
    2: "XMPP", 3: "SDP", 4: "RTP", 5: "RTCP", 6: "MGCP", 7: "MEGACO", 8: "M2UA", 9: "M3UA", 10: "IAX",
    34: "MOS report", 35: "MOS report", 53: "DNS", 55: "RTSP", 56: "Diameter", 100: "log",
}
PPP_NAMES = {
    0x002D: "Van Jacobson compressed TCP/IP", 0x002F: "Van Jacobson uncompressed TCP/IP", 0x00FD: "compressed data",
    0x0281: "MPLS", 0x8021: "IPCP", 0x8057: "IPv6CP", 0x80FD: "CCP", 0xC021: "LCP", 0xC023: "PAP",
    0xC223: "CHAP", 0xC227: "EAP",
}


def _named(layer: str, number: int, names: dict[int, str], written: str = "{}") -> str:
    name = names.get(number)
    text = f"{layer} {written.format(number)}"
    return f"{text} ({name})" if name else text


def _llc_kind(data: bytes, offset: int) -> str:
    """What an 802.3 frame's LLC header says it carries."""
    if data[offset : offset + 3] == LLC_SNAP and len(data) >= offset + 8:
        oui, protocol = data[offset + 3 : offset + 6], _U16.unpack_from(data, offset + 6)[0]
        name = SNAP_NAMES.get((oui, protocol)) or f"SNAP {oui.hex(':')} protocol 0x{protocol:04x}"
    elif offset < len(data):
        name = LLC_NAMES.get(data[offset]) or f"DSAP 0x{data[offset]:02x}"
    else:
        name = "no LLC header"
    return f"802.3 frames with LLC ({name})"


def _packets(count: int) -> str:
    return f"{count} packet" if count == 1 else f"{count} packets"


class PacketDecoder:
    """Feeds one capture's packets into a CaptureResult (and RTP into an RtpTracker)."""

    def __init__(self, result: CaptureResult, rtp: RtpTracker) -> None:
        self.result = result
        self.rtp = rtp
        self.fragments = FragmentReassembler()
        self.tcp = TcpTracker(self._stream_handler, self.address_text)
        self.unsupported_link_types: Counter[int] = Counter()
        # Packets left unread at some layer, by what they are ("ethertype 0x88cc (LLDP)").
        self.unread: Counter[str] = Counter()
        # SIP over TCP: bytes the framers skipped because they start no message.
        self.skipped_stretches = self.skipped_bytes = 0
        self._first_skip: tuple[int, tuple] | None = None
        self._address_text: dict[bytes, str] = {}
        self._link_decoders = {
            LINKTYPE_ETHERNET: self._ethernet,
            LINKTYPE_LINUX_SLL: self._linux_sll,
            LINKTYPE_LINUX_SLL2: self._linux_sll2,
            LINKTYPE_NULL: self._null,
            LINKTYPE_LOOP: self._null,
            LINKTYPE_IPV4: self._raw_ip,
            LINKTYPE_IPV6: self._raw_ip,
            **{linktype: self._raw_ip for linktype in LINKTYPE_RAW},
            LINKTYPE_PPP: self._ppp_frame,
            LINKTYPE_PPP_HDLC: self._ppp_frame,
            LINKTYPE_C_HDLC: self._cisco_hdlc,
            LINKTYPE_IEEE802_11: self._wifi,
            LINKTYPE_RADIOTAP: self._radiotap,
            LINKTYPE_NFLOG: self._nflog,
        }
        # SIP cut into several SCTP DATA chunks, per association and stream: pieces so far.
        self._sctp_pieces: dict[tuple, list[bytes]] = {}

    # -- entry points ------------------------------------------------------

    def decode_records(self, records: list, undecodable) -> None:
        """Every (frame, time, linktype, data) record the scan kernel handed over.

        `undecodable(frame, error)` hears of a packet that broke a decoder; the
        rest still count. The bulk of a VoIP capture (RTP in UDP in IP in
        Ethernet) never gets here: the kernel accounts it (capture/scan.py).
        """
        for frame, time, linktype, data in records:
            try:
                decoder = self._link_decoders.get(linktype)
                if decoder is None:
                    self.unsupported_link_types[linktype] += 1
                else:
                    decoder(frame, time, data)
            except Exception as error:  # noqa: BLE001 - one bad packet must not end the analysis
                undecodable(frame, error)

    def finish(self) -> None:
        """End of input. TCP streams give back the messages they still hold, and
        messages go back into frame order: a message that framing could only
        close later (the next start line, a hole, the end) carries the frame of
        its own last byte, earlier than messages already seen."""
        self.tcp.close()
        self.result.sip_messages.sort(key=attrgetter("frame"))

    def warnings(self) -> list[str]:
        """Capture-level problems found while decoding (call after `finish`)."""
        notes = [
            f"{_named('link type', linktype, LINK_TYPE_NAMES)}: {_packets(count)} not analyzed"
            for linktype, count in sorted(self.unsupported_link_types.items())
        ]
        # Most common first; a file misread as Ethernet could name thousands of ethertypes.
        kinds = self.unread.most_common()
        notes += [f"{kind}: {_packets(count)} not analyzed" for kind, count in kinds[:MAX_UNREAD_LINES]]
        if len(kinds) > MAX_UNREAD_LINES:
            rest = kinds[MAX_UNREAD_LINES:]
            notes.append(f"{len(rest)} more kinds: {_packets(sum(count for _, count in rest))} not analyzed")
        if self.skipped_bytes:
            frame, (src, sport, dst, dport) = self._first_skip
            notes.append(
                f"SIP over TCP: {self.skipped_bytes} bytes in {self.skipped_stretches} "
                f"{'place' if self.skipped_stretches == 1 else 'places'} start no SIP message "
                f"and were skipped to the next start line (first: frame {frame}, "
                f"{hostport(self.address_text(src), sport)} → {hostport(self.address_text(dst), dport)})"
            )
        notes += self.fragments.warnings()
        if self.tcp.untracked_connections:
            notes.append(f"{self.tcp.untracked_connections} TCP connections beyond the tracking limit were not recorded")
        return notes

    def address_text(self, raw: bytes) -> str:
        text = self._address_text.get(raw)
        if text is None:
            if len(self._address_text) >= MAX_CACHED_FLOWS:
                self._address_text.clear()
            text = str(ipaddress.ip_address(raw))
            self._address_text[raw] = text
        return text

    # -- link layers -------------------------------------------------------

    def _ethernet(self, frame: int, time: float, data: bytes, offset: int = 0, depth: int = 0) -> None:
        if len(data) >= offset + 14:
            self._ethertype(frame, time, data, _U16.unpack_from(data, offset + 12)[0], offset + 14, depth)

    def _ethertype(self, frame: int, time: float, data: bytes, ethertype: int, offset: int, depth: int) -> None:
        while ethertype in ETH_VLAN_TAGS and len(data) >= offset + 4:
            ethertype = _U16.unpack_from(data, offset + 2)[0]
            offset += 4
        if ethertype == ETH_IPV4:
            self._ipv4(frame, time, data, offset, depth)
        elif ethertype == ETH_IPV6:
            self._ipv6(frame, time, data, offset, depth)
        elif ethertype == ETH_PPPOE_SESSION:
            self._ppp(frame, time, data, offset + 6, depth)  # RFC 2516 session header: 6 bytes
        elif ethertype in ETH_MPLS:
            if depth < MAX_TUNNEL_DEPTH:
                self._mpls(frame, time, data, offset, depth + 1)
            else:
                self.unread[TOO_DEEP] += 1
        elif ethertype < ETH_FIRST_TYPE:
            self.unread[_llc_kind(data, offset)] += 1
        else:
            self.unread[_named("ethertype", ethertype, ETHERTYPE_NAMES, "0x{:04x}")] += 1

    def _mpls(self, frame: int, time: float, data: bytes, offset: int, depth: int) -> None:
        """An MPLS label stack (RFC 3032), then IP by its version nibble, or an
        Ethernet pseudowire behind its zero control word (RFC 4448)."""
        while len(data) >= offset + 4:
            bottom = data[offset + 2] & 1
            offset += 4
            if bottom:
                break
        else:
            return
        if len(data) <= offset:
            return
        version = data[offset] >> 4
        if version == 4:
            self._ipv4(frame, time, data, offset, depth)
        elif version == 6:
            self._ipv6(frame, time, data, offset, depth)
        elif version == 0:
            self._ethernet(frame, time, data, offset + 4, depth)
        else:
            self.unread["MPLS payloads that are neither IP nor an Ethernet pseudowire"] += 1

    def _ppp_frame(self, frame: int, time: float, data: bytes) -> None:
        self._ppp(frame, time, data, 0, 0)

    def _cisco_hdlc(self, frame: int, time: float, data: bytes) -> None:
        # Address (unicast 0x0F, broadcast 0x8F), control 0, then an ethertype.
        if len(data) >= 4:
            self._ethertype(frame, time, data, _U16.unpack_from(data, 2)[0], 4, 0)

    def _wifi(self, frame: int, time: float, data: bytes, offset: int = 0, end: int | None = None) -> None:
        """An 802.11 data frame: its LLC/SNAP header names the ethertype. Protected
        frames are encrypted and management or control frames carry no IP."""
        end = len(data) if end is None else end
        if offset + 24 > end:
            return
        control, flags = data[offset], data[offset + 1]
        if (control >> 2) & 3 != 2:
            self.unread["802.11 management and control frames"] += 1
            return
        if flags & 0x40:
            self.unread["802.11 protected (encrypted) data frames"] += 1
            return
        header = 24 + (6 if flags & 3 == 3 else 0)  # a fourth address between two access points
        if control & 0x80:  # QoS data: a QoS field, and an HT control field with the order bit
            header += 2 + (4 if flags & 0x80 else 0)
        llc = offset + header
        if data[llc : llc + 3] == LLC_SNAP and llc + 8 <= end:
            self._ethertype(frame, time, data[:end], _U16.unpack_from(data, llc + 6)[0], llc + 8, 0)
        elif not control & 0x40:  # (null data subtypes carry nothing)
            self.unread["802.11 data frames without an LLC/SNAP header (A-MSDU or other)"] += 1

    def _radiotap(self, frame: int, time: float, data: bytes) -> None:
        if len(data) < 8:
            return
        length = data[2] | data[3] << 8
        present, words = int.from_bytes(data[4:8], "little"), 8
        while present >> 31 & 1 and len(data) >= words + 4:  # more presence words follow
            present = int.from_bytes(data[words : words + 4], "little")
            words += 4
        first = int.from_bytes(data[4:8], "little")
        fields = words + ((-words) % 8) + 8 if first & 1 else words  # TSFT: 8 bytes, 8-aligned
        fcs = first & 2 and len(data) > fields and data[fields] & RADIOTAP_FCS
        self._wifi(frame, time, data, length, len(data) - 4 if fcs else len(data))

    def _nflog(self, frame: int, time: float, data: bytes) -> None:
        """Linux NFLOG: a 4-byte header, then TLVs in the capturing host's byte
        order (4-byte aligned); the packet is the payload TLV, from IP up."""
        offset = 4
        order = "little" if len(data) >= 6 and 4 <= int.from_bytes(data[4:6], "little") <= len(data) - 4 else "big"
        while offset + 4 <= len(data):
            length = int.from_bytes(data[offset : offset + 2], order)
            kind = int.from_bytes(data[offset + 2 : offset + 4], order) & 0x7FFF
            if length < 4:
                return
            if kind == NFLOG_PAYLOAD:
                self._raw_ip(frame, time, data[: offset + length], offset + 4)
                return
            offset += (length + 3) & ~3
    def _ppp(self, frame: int, time: float, data: bytes, offset: int, depth: int) -> None:
        if data[offset : offset + 2] == b"\xff\x03":  # HDLC address/control, absent after ACFC
            offset += 2
        if len(data) < offset + 2:
            return
        if data[offset] & 1:  # protocol-field compression: one byte
            protocol, offset = data[offset], offset + 1
        else:
            protocol, offset = _U16.unpack_from(data, offset)[0], offset + 2
        if protocol == PPP_IPV4:
            self._ipv4(frame, time, data, offset, depth)
        elif protocol == PPP_IPV6:
            self._ipv6(frame, time, data, offset, depth)
        else:
            self.unread[_named("PPP protocol", protocol, PPP_NAMES, "0x{:04x}")] += 1

    def _linux_sll(self, frame: int, time: float, data: bytes) -> None:
        if len(data) >= 16:
            self._ethertype(frame, time, data, _U16.unpack_from(data, 14)[0], 16, 0)

    def _linux_sll2(self, frame: int, time: float, data: bytes) -> None:
        if len(data) >= 20:
            self._ethertype(frame, time, data, _U16.unpack_from(data, 0)[0], 20, 0)

    def _null(self, frame: int, time: float, data: bytes) -> None:
        # The family is a host-order 32-bit AF_ value (2 = IPv4; 10, 24, 28, 30 =
        # IPv6 on Linux and the BSDs); the version nibble says the same thing
        # whatever the byte order of the machine that captured it.
        if len(data) > 4:
            self._raw_ip(frame, time, data, 4)

    def _raw_ip(self, frame: int, time: float, data: bytes, offset: int = 0) -> None:
        if len(data) > offset:
            version = data[offset] >> 4
            if version == 4:
                self._ipv4(frame, time, data, offset, 0)
            elif version == 6:
                self._ipv6(frame, time, data, offset, 0)
            else:
                self.unread[f"packets of IP version {version}, where IPv4 or IPv6 was expected"] += 1

    # -- IP ------------------------------------------------------------------

    def _ipv4(self, frame: int, time: float, data: bytes, offset: int, depth: int) -> None:
        if len(data) < offset + 20:
            return
        header_length = (data[offset] & 0x0F) * 4
        if data[offset] >> 4 != 4 or header_length < 20 or len(data) < offset + header_length:
            return
        total, ident, fragment, _ttl, protocol = _IPV4_FIELDS.unpack_from(data, offset + 2)
        # Ethernet pads short frames; the IP length says where the datagram ends.
        end = offset + total if header_length <= total and offset + total <= len(data) else len(data)
        src = data[offset + 12 : offset + 16]
        dst = data[offset + 16 : offset + 20]
        start = offset + header_length
        if fragment & 0x3FFF:  # more-fragments flag or a non-zero offset
            datagram = self.fragments.add(
                (4, src, dst, protocol, ident), (fragment & 0x1FFF) * 8, bool(fragment & 0x2000),
                data[start:end], frame, time,
            )
            if datagram is None:
                return
            data, start, end = datagram, 0, len(datagram)
        self._transport(frame, time, protocol, data, start, end, src, dst, 4, depth)

    def _ipv6(self, frame: int, time: float, data: bytes, offset: int, depth: int) -> None:
        if len(data) < offset + 40 or data[offset] >> 4 != 6:
            return
        payload_length, next_header = _IPV6_FIELDS.unpack_from(data, offset + 4)
        start = offset + 40
        end = start + payload_length if payload_length and start + payload_length <= len(data) else len(data)
        src = data[offset + 8 : offset + 24]
        dst = data[offset + 24 : offset + 40]
        self._ipv6_payload(frame, time, next_header, data, start, end, src, dst, depth)

    def _ipv6_payload(self, frame: int, time: float, next_header: int, data: bytes, start: int, end: int,
                      src: bytes, dst: bytes, depth: int) -> None:
        while True:
            if next_header in IPV6_EXTENSIONS:
                if start + 2 > end:
                    return
                next_header, start = data[start], start + (data[start + 1] + 1) * 8
            elif next_header == IPV6_AH:
                if start + 2 > end:
                    return
                next_header, start = data[start], start + (data[start + 1] + 2) * 4
            elif next_header == IPV6_FRAGMENT:
                if start + 8 > end:
                    return
                offset_flags = _U16.unpack_from(data, start + 2)[0]
                datagram = self.fragments.add(
                    (6, src, dst, data[start + 4 : start + 8]), offset_flags & 0xFFF8, bool(offset_flags & 1),
                    data[start + 8 : end], frame, time,
                )
                if datagram is None:
                    return
                next_header, data, start, end = data[start], datagram, 0, len(datagram)
            else:
                break
        self._transport(frame, time, next_header, data, start, end, src, dst, 6, depth)

    def _transport(self, frame: int, time: float, protocol: int, data: bytes, start: int, end: int,
                   src: bytes, dst: bytes, version: int, depth: int) -> None:
        if protocol == IP_UDP:
            self._udp(frame, time, data, start, end, src, dst, depth)
        elif protocol == IP_TCP:
            self._tcp(frame, time, data, start, end, src, dst)
        elif protocol == IP_ICMP or protocol == IP_ICMPV6:
            self._icmp(frame, time, data, start, end, src, version)
        elif protocol == IP_SCTP:
            self._sctp(frame, time, data, start, end, src, dst)
        elif protocol in (IP_GRE, IP_IPV4, IP_IPV6) and depth >= MAX_TUNNEL_DEPTH:
            self.unread[TOO_DEEP] += 1
        elif protocol == IP_GRE:
            self._gre(frame, time, data, start, end, depth + 1)
        elif protocol == IP_IPV4:
            self._ipv4(frame, time, data[:end], start, depth + 1)
        elif protocol == IP_IPV6:
            self._ipv6(frame, time, data[:end], start, depth + 1)
        elif protocol != IPV6_NO_NEXT_HEADER:
            self.unread[_named("IP protocol", protocol, IP_PROTOCOL_NAMES)] += 1

    # -- tunnels -------------------------------------------------------------

    def _gre(self, frame: int, time: float, data: bytes, start: int, end: int, depth: int) -> None:
        if start + 4 > end:
            return
        flags, protocol = _U16_PAIR.unpack_from(data, start)
        # Optional checksum(+reserved), key and sequence number words (RFC 2890);
        # PPTP's enhanced GRE (version 1, RFC 2637) adds an acknowledgment word.
        start += 4 + 4 * ((flags >> 15) & 1) + 4 * ((flags >> 13) & 1) + 4 * ((flags >> 12) & 1)
        if flags & 0x7 == 1:
            start += 4 * ((flags >> 7) & 1)
        inner = data[:end]
        if protocol == ETH_PPP:
            self._ppp(frame, time, inner, start, depth)
        elif protocol == ETH_ERSPAN_2:
            # Type II carries an 8-byte ERSPAN header and sets the sequence bit;
            # type I has neither.
            self._ethernet(frame, time, inner, start + 8 if flags & 0x1000 else start, depth)
        elif protocol == ETH_ERSPAN_3:
            if start + 12 <= end:
                # The O bit announces an 8-byte platform-specific subheader.
                self._ethernet(frame, time, inner, start + (20 if data[start + 11] & 1 else 12), depth)
        elif protocol == ETH_TRANSPARENT_BRIDGING:
            self._ethernet(frame, time, inner, start, depth)
        else:
            self._ethertype(frame, time, inner, protocol, start, depth)

    def _hep3(self, frame: int, time: float, data: bytes, start: int, end: int) -> None:
        """HEP v3 (Homer): the SIP message and its original endpoints, in TLV chunks."""
        if start + 6 > end:
            return
        end = min(end, start + _U16.unpack_from(data, start + 4)[0])
        chunks: dict[int, bytes] = {}
        offset = start + 6
        while offset + 6 <= end:
            vendor, chunk_type, length = _HEP_CHUNK.unpack_from(data, offset)
            if length < 6:
                break
            if vendor == 0:
                chunks[chunk_type] = data[offset + 6 : offset + length]
            offset += length
        src, dst = chunks.get(3) or chunks.get(5), chunks.get(4) or chunks.get(6)
        payload, ports = chunks.get(15), (chunks.get(7), chunks.get(8))
        kind = chunks.get(11)
        if kind and kind != bytes((HEP_SIP,)):
            self.unread[_named("HEP3 payload type", kind[0], HEP_TYPE_NAMES)] += 1
            return
        if not kind or not payload or not src or not dst or None in ports:
            return
        if len(ports[0]) != 2 or len(ports[1]) != 2 or len(src) not in (4, 16) or len(dst) != len(src):
            return
        transport = "tcp" if chunks.get(2) == bytes((IP_TCP,)) else "udp"
        self.add_sip(frame, time, payload, src, _U16.unpack(ports[0])[0], dst, _U16.unpack(ports[1])[0], transport)

    # -- UDP -----------------------------------------------------------------

    def _udp(self, frame: int, time: float, data: bytes, start: int, end: int, src: bytes, dst: bytes,
             depth: int) -> None:
        if start + 8 > end:
            return
        sport, dport, length = _UDP_FIELDS.unpack_from(data, start)
        payload_start = start + 8
        if 8 < length and start + length < end:
            end = start + length
        if payload_start >= end:
            return
        first = data[payload_start]
        if sport in DNS_PORTS or dport in DNS_PORTS:
            self._dns(frame, time, data[payload_start:end], src, sport, dst, dport, "udp")
        elif 0x80 <= first < 0xC0:
            self.rtp.account(frame, time, src, sport, dst, dport, data, payload_start, end)
        elif first in _UPPER_FIRST:
            payload = data[payload_start:end]
            if looks_like_sip(payload):
                self.add_sip(frame, time, payload, src, sport, dst, dport, "udp")
            elif first == 0x48 and payload.startswith(HEP3_MAGIC):
                self._hep3(frame, time, data, payload_start, end)
        elif dport == VXLAN_PORT and first & 0x08 and depth < MAX_TUNNEL_DEPTH:
            self._ethernet(frame, time, data[:end], payload_start + 8, depth + 1)
        elif (sport == GTP_U_PORT or dport == GTP_U_PORT) and first >> 5 == 1 and depth < MAX_TUNNEL_DEPTH:
            self._gtp_u(frame, time, data[:end], payload_start, depth + 1)

    def _gtp_u(self, frame: int, time: float, data: bytes, start: int, depth: int) -> None:
        """GTP-U (3GPP TS 29.281): a user's IP packet inside the mobile core, after
        the 8-byte header, its optional sequence word and any extension headers."""
        if start + 8 > len(data) or data[start + 1] != GTP_T_PDU:
            return
        flags = data[start]
        offset = start + 8
        if flags & 0x07:
            if offset + 4 > len(data):
                return
            next_type, offset = data[offset + 3], offset + 4
            while next_type:
                if offset >= len(data) or data[offset] == 0:
                    return  # an extension header of length 0 is damage
                offset += data[offset] * 4
                if offset > len(data):
                    return
                next_type = data[offset - 1]
        end = min(len(data), start + 8 + _U16.unpack_from(data, start + 2)[0])
        if offset < end:
            version = data[offset] >> 4
            if version == 4:
                self._ipv4(frame, time, data[:end], offset, depth)
            elif version == 6:
                self._ipv6(frame, time, data[:end], offset, depth)
            else:
                self.unread["GTP-U payloads that are not IP"] += 1

    # -- SCTP ----------------------------------------------------------------

    def _sctp(self, frame: int, time: float, data: bytes, start: int, end: int, src: bytes, dst: bytes) -> None:
        """SIP in SCTP DATA chunks (RFC 9260), on any port: several may share one
        packet, and one message may be cut into several (B and E flags)."""
        if start + 12 > end:
            return
        sport, dport = _U16_PAIR.unpack_from(data, start)
        offset = start + 12
        while offset + 4 <= end:
            kind, flags = data[offset], data[offset + 1]
            length = _U16.unpack_from(data, offset + 2)[0]
            if length < 4 or offset + length > end:
                return
            if kind == SCTP_DATA and length > 16:
                stream = _U16.unpack_from(data, offset + 8)[0]
                self._sctp_data(frame, time, data[offset + 16 : offset + length], flags, (src, sport, dst, dport, stream))
            offset += (length + 3) & ~3

    def _sctp_data(self, frame: int, time: float, piece: bytes, flags: int, key: tuple) -> None:
        begins, ends = flags & 2, flags & 1
        if begins and ends:
            message = piece
        else:
            pieces = self._sctp_pieces.setdefault(key, [])
            if begins:
                pieces.clear()
            elif not pieces:
                return  # the message's first piece is not in the capture
            pieces.append(piece)
            if not ends:
                if len(pieces) > MAX_SCTP_PIECES:
                    del self._sctp_pieces[key]
                return
            message = b"".join(self._sctp_pieces.pop(key))
        if looks_like_sip(message):
            src, sport, dst, dport, _ = key
            self.add_sip(frame, time, message, src, sport, dst, dport, "sctp")

    def _dns(self, frame: int, time: float, payload: bytes, src: bytes, sport: int, dst: bytes, dport: int,
             transport: str) -> None:
        message: DnsMessage | None = parse_dns(payload)
        if message is None:
            return
        message.frame, message.time, message.transport = frame, time, transport
        message.src_ip, message.src_port = self.address_text(src), sport
        message.dst_ip, message.dst_port = self.address_text(dst), dport
        self.result.dns_messages.append(message)

    def add_sip(self, frame: int, time: float, raw: bytes, src: bytes, sport: int, dst: bytes, dport: int,
                transport: str, framing_errors: list[str] | None = None) -> None:
        message: SipMessage = parse_message(raw)
        if framing_errors:
            message.errors[:0] = framing_errors  # first: they explain the parser's complaints
        message.frame, message.time, message.transport = frame, time, transport
        message.src_ip, message.src_port = self.address_text(src), sport
        message.dst_ip, message.dst_port = self.address_text(dst), dport
        self.result.sip_messages.append(message)
        sdp = message.sdp
        if sdp is not None:
            for media in sdp.media:
                address = media.connection or sdp.connection
                if address and media.port:
                    self.rtp.expect(address, media.port, media.rtpmap)

    # -- ICMP ----------------------------------------------------------------

    def _icmp(self, frame: int, time: float, data: bytes, start: int, end: int, reporter: bytes,
              version: int) -> None:
        if start + 8 > end or data[start] not in ICMP_ERROR_TYPES[version]:
            return
        icmp_type, code = data[start], data[start + 1]
        quoted = _quoted_packet(data[start + 8 : end])
        protocol, quoted_src, quoted_dst, sport, dport, payload = quoted or (None, None, None, None, None, b"")
        self.result.icmp_errors.append(IcmpError(
            frame=frame, time=time, reporter_ip=self.address_text(reporter), icmp_type=icmp_type, icmp_code=code,
            description=ICMP_DESCRIPTIONS.get((version, icmp_type, code), f"type {icmp_type} code {code}"),
            quoted_protocol=protocol,
            quoted_src_ip=self.address_text(quoted_src) if quoted_src else None, quoted_src_port=sport,
            quoted_dst_ip=self.address_text(quoted_dst) if quoted_dst else None, quoted_dst_port=dport,
            # Evidence only: the quoted copy is never counted as a SIP message.
            quoted_sip=looks_like_sip(payload),
        ))

    # -- TCP -----------------------------------------------------------------

    def _tcp(self, frame: int, time: float, data: bytes, start: int, end: int, src: bytes, dst: bytes) -> None:
        if start + 20 > end:
            return
        sport, dport, seq, _ack, offset_flags = _TCP_FIELDS.unpack_from(data, start)
        payload_start = start + (offset_flags >> 12) * 4
        payload = data[payload_start:end] if payload_start < end else b""
        self.tcp.segment(frame, time, src, sport, dst, dport, seq, offset_flags & 0x3F, payload)

    def _stream_handler(self, flow: TcpFlow, key: tuple) -> "_StreamContent":
        return _StreamContent(self, flow, key)

    def note_skipped(self, frame: int, key: tuple, stretches: int, count: int) -> None:
        if self._first_skip is None:
            self._first_skip = (frame, key)
        self.skipped_stretches += stretches
        self.skipped_bytes += count


_IPV6_FIELDS = Struct("!HB")  # payload length, next header (from byte 4)
_UDP_FIELDS = Struct("!HHH")


def _quoted_packet(quoted: bytes) -> tuple | None:
    """(protocol, src, dst, sport, dport, payload) of the packet an ICMP error quotes."""
    if len(quoted) < 20:
        return None
    if quoted[0] >> 4 == 4:
        start, protocol, src, dst = (quoted[0] & 0x0F) * 4, quoted[9], quoted[12:16], quoted[16:20]
    elif quoted[0] >> 4 == 6 and len(quoted) >= 40:
        start, protocol, src, dst = 40, quoted[6], quoted[8:24], quoted[24:40]
    else:
        return None
    name = {IP_UDP: "udp", IP_TCP: "tcp"}.get(protocol)
    if name is None or len(quoted) < start + 4:
        return name, src, dst, None, None, b""
    sport, dport = _U16_PAIR.unpack_from(quoted, start)
    payload_start = start + 8 if name == "udp" else start + 20
    return name, src, dst, sport, dport, quoted[payload_start:]


def _looks_like_server(port: int, peer_port: int) -> bool:
    """Without a SYN: the SIP-over-TLS port, else the lower port, is the server's."""
    if tls.SIP_TLS_PORT in (port, peer_port):
        return port == tls.SIP_TLS_PORT
    return port < peer_port


# After this many chunks without a recognizable start, a stream is not SIP.
MAX_UNDECIDED_CHUNKS = 32
MAX_FIRST_LINE = 2048
MAX_TLS_RECORD = 16 * 1024 + 5 + 256  # RFC 8446 5.1 plaintext limit plus header and slack


class _StreamContent:
    """What one TCP direction carries (SIP, SIP over WebSocket, TLS, DNS) and its messages."""

    __slots__ = ("decoder", "flow", "key", "kind", "framer", "undecided", "start", "tls_record", "last_frame")

    def __init__(self, decoder: PacketDecoder, flow: TcpFlow, key: tuple) -> None:
        self.decoder = decoder
        self.flow = flow
        self.key = key
        self.kind: str | None = None
        self.framer = None
        self.undecided = 0
        self.start = b""  # first bytes, held until they show what the stream is
        self.tls_record = b""
        self.last_frame = 0

    def data(self, frame: int, time: float, chunk: bytes) -> bool:
        self.last_frame = frame
        if self.kind is None:
            self.start += chunk
            kind = self._classify(self.start.lstrip(b"\r\n"))
            if kind is None:
                return True  # wait for a whole first line
            if not kind:
                self.start = b""
                self.undecided += 1
                return self.undecided < MAX_UNDECIDED_CHUNKS
            chunk, self.start = self.start, b""
        src, sport, dst, dport = self.key
        decoder = self.decoder
        if self.kind == "sip":
            self._sip(self.framer.feed(chunk, (frame, time)))
        elif self.kind == "ws":
            for raw in self.framer.feed(chunk):
                if looks_like_sip(raw):
                    decoder.add_sip(frame, time, raw, src, sport, dst, dport, "ws")
            return self.framer.upgraded
        elif self.kind == "dns":
            for raw in self.framer.feed(chunk):
                decoder._dns(frame, time, raw, src, sport, dst, dport, "tcp")
        else:
            return self._tls_hello(frame, chunk)
        return True

    def gap(self) -> None:
        if self.kind == "sip":
            # The open message ends incomplete; the framer resynchronises at the next start line.
            self._sip(self.framer.gap())
        else:
            # Bytes were lost: restart at the next recognizable message.
            self.kind = None
            self.framer = None

    def end(self) -> None:
        if self.kind == "sip":
            self._sip(self.framer.close())

    def _sip(self, messages: list) -> None:
        src, sport, dst, dport = self.key
        for message in messages:
            frame, time = message.tag
            self.decoder.add_sip(frame, time, message.data, src, sport, dst, dport, "tcp", message.errors)
        stretches, skipped = self.framer.take_skipped()
        if skipped:
            self.decoder.note_skipped(self.last_frame, self.key, stretches, skipped)

    def _classify(self, head: bytes) -> bool | None:
        """Pick the stream's kind from its first bytes: True when known, False when not ours, None to wait."""
        _src, sport, _dst, dport = self.key
        if sport in DNS_PORTS or dport in DNS_PORTS:
            self.kind, self.framer = "dns", DnsStreamFramer()
        elif tls.starts_tls_record(head):
            self.kind = "tls"
        elif b"\n" not in head and len(head) < MAX_FIRST_LINE:
            return None
        elif starts_http(head):
            self.kind, self.framer = "ws", WebSocketStream()
        elif looks_like_sip(head):
            self.kind, self.framer = "sip", SipStreamFramer()
        else:
            return False
        return True

    def _tls_hello(self, frame: int, chunk: bytes) -> bool:
        """Collect the first TLS record and record the connection once. Then stop reading.

        The ClientHello names the client and the SNI; a capture joined
        mid-connection has neither, and the SYN (else the port) tells which
        side is the server.
        """
        self.tls_record += chunk
        needed = tls.record_length(self.tls_record)
        if needed is None or len(self.tls_record) < min(needed, MAX_TLS_RECORD):
            return True
        is_hello, sni = tls.client_hello_sni(self.tls_record[:needed])
        self.tls_record = b""
        flow = self.flow
        if flow.tls is not None:
            if is_hello:
                flow.tls.sni = sni
            return False
        src, sport, dst, dport = self.key
        if not is_hello and (self.key != flow.client_key if flow.record else _looks_like_server(sport, dport)):
            src, sport, dst, dport = dst, dport, src, sport
        text = self.decoder.address_text
        flow.tls = TlsConnection(text(src), sport, text(dst), dport, first_frame=frame, sni=sni, packets=1)
        self.decoder.result.tls_connections.append(flow.tls)
        return False
