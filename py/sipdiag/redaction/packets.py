"""Rewriting packets layer by layer so a redacted capture stays a valid capture.

Each layer rewrites its header (addresses, MACs), hands its payload down and
gets the rewritten payload back through a continuation (`wrap`): the layer
then fixes its lengths and checksums. Continuations let a packet wait: an IP
fragment waits for the rest of its datagram and a TCP segment for the rest of
its SIP message, because text can only be rewritten (and Content-Length
fixed) on whole messages; the new bytes are then spread back over the same
packets, so the packet count never changes.

Nothing passes through unread. Bytes that no layer here decodes (a link type,
ethertype, IP protocol or payload the rewriter does not know) go through
`unread`, which names them per frame in `FrameHandling` and, under the
default policy, zeroes them: the record stays, with everything past the
headers that were understood blanked. The redactor turns what is left into
its summary, or drops or refuses those frames when the user asked for that.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from bisect import bisect_right
from contextlib import contextmanager
from typing import Callable

from ..protocols.sip import looks_like_sip
from ..protocols.tls import RECORD_HEADER, client_hello_sni, starts_tls_record
from ..protocols.websocket import starts_http
from .addressmap import AddressMap
from .checksums import (
    adjusted_checksum,
    internet_checksum,
    ipv4_pseudo_header,
    ipv6_pseudo_header,
    transport_checksum,
)
from .text import (
    HEADER_END,
    Pseudonyms,
    RedactionOptions,
    TextRedactor,
    looks_like_domain,
)
from .websocket import frames_incomplete, handshake_end, rewrite_frames

Wrap = Callable[[bytes], None]

LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP = 0, 1, 101, 108
LINKTYPE_SLL, LINKTYPE_SLL2, LINKTYPE_IPV4, LINKTYPE_IPV6 = 113, 276, 228, 229
RAW_IP_LINKTYPES = (LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6)

ETH_IPV4, ETH_IPV6, ETH_ARP, ETH_PPPOE = 0x0800, 0x86DD, 0x0806, 0x8864
VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
GRE_ETHERNET, GRE_ERSPAN2, GRE_ERSPAN3, GRE_PPP = 0x6558, 0x88BE, 0x22EB, 0x880B
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057
IPV6_EXTENSIONS = (0, 43, 60)
IPV6_FRAGMENT = 44
DNS_PORTS = (53, 5353, 5355)
DHCP_PORTS = (67, 68)
DHCP_ADDRESS_OPTIONS = frozenset((3, 6, 28, 50, 54))  # router, DNS servers, broadcast, requested, server id
DHCP_HOST_NAME, DHCP_CLIENT_ID = 12, 61
VXLAN_PORT = 4789
ICMP_ERRORS = (3, 4, 5, 11, 12)
ICMPV6_ERRORS = (1, 2, 3, 4)
DNS_NAME_TYPES = {2: 0, 5: 0, 12: 0, 15: 2, 33: 6}  # rdata offset of the name
# A SIP message longer than this over TCP is damage; stop waiting for its end.
MAX_HELD_SEGMENTS = 64
# What "keep only signalling" keeps: the payload kinds a diagnosis reads.
SIGNALLING_KINDS = frozenset(("sip", "tls", "dns", "rtp", "icmp", "tcp-control"))
# TLS records whose bytes hide nothing readable: change_cipher_spec, alert, application data.
TLS_OPAQUE_RECORDS = (20, 21, 23)


class FrameHandling:
    """What the rewriter could not read, frame by frame (original frame numbers).

    `scrub` (the default policy) zeroes unread bytes as they are met; without
    it they are kept and only named, for the redactor to drop or refuse the
    frame. `scrub_frames` are frames the verification found still leaking:
    every payload in them is zeroed, whatever its protocol.
    """

    def __init__(self, scrub: bool = True, scrub_frames: frozenset = frozenset()) -> None:
        self.scrub = scrub
        self.scrub_frames = scrub_frames
        self.unread: dict[int, str] = {}  # frame -> the first part of it no layer could read
        self.signalling: set[int] = set()  # frames with a payload of one of SIGNALLING_KINDS


def split_like(original_sizes: list[int], total: int, unit: int = 1) -> list[int]:
    """New piece sizes for `total` bytes over the same number of pieces.

    Every piece but the last keeps its size (so offsets and sequence numbers of
    the leading pieces do not move); IP fragments need multiples of 8.
    """
    sizes = []
    remaining = total
    for size in original_sizes[:-1]:
        size = min(size, max(0, (remaining - 1) // unit * unit))
        sizes.append(size)
        remaining -= size
    return sizes + [remaining]


class PackedAddressCache:
    """Header addresses by their bytes: the hot path meets the same few
    addresses millions of times and need not build ipaddress objects each time."""

    def __init__(self, addresses: AddressMap) -> None:
        self._addresses = addresses
        self._cache: dict[bytes, bytes] = {}

    def replace_packed(self, packed: bytes) -> bytes:
        found = self._cache.get(packed)
        if found is None:
            found = self._cache[packed] = self._addresses.replace_packed(packed)
        return found


class MacMap:
    def __init__(self, secret: bytes, text: TextRedactor) -> None:
        self._key = hashlib.sha256(b"sipdiag-mac\0" + secret).digest()
        self._cache: dict[bytes, bytes] = {}
        self._text = text

    def replace(self, mac: bytes) -> bytes:
        found = self._cache.get(mac)
        if found is None:
            if mac[0] & 1 or mac == b"\0" * 6:
                found = mac  # broadcast/multicast groups and null name no machine
            else:
                digest = hmac.new(self._key, mac, hashlib.sha256).digest()
                # Keep the unicast and locally-administered bits as they were.
                found = bytes([(digest[0] & 0xFC) | (mac[0] & 0x03)]) + digest[1:6]
                self._text.mac_text[mac.hex(":")] = found.hex(":")
                self._text.remember("mac_addresses", mac.hex(":"))
            self._cache[mac] = found
        return found


class Endpoints:
    """Addresses of the IP header around a transport segment, original and new."""

    __slots__ = ("version", "src", "dst", "new_src", "new_dst", "complete")

    def __init__(self, version, src, dst, new_src, new_dst, complete):
        self.version, self.src, self.dst, self.new_src, self.new_dst = version, src, dst, new_src, new_dst
        self.complete = complete  # the segment was captured whole, so checksums can be computed

    def pseudo(self, protocol: int, length: int) -> bytes:
        build = ipv4_pseudo_header if self.version == 4 else ipv6_pseudo_header
        return build(self.new_src, self.new_dst, protocol, length)


class FragmentSet:
    def __init__(self, protocol: int, endpoints: Endpoints) -> None:
        self.protocol = protocol
        self.endpoints = endpoints
        self.pieces: list[tuple[int, bytes, Callable[[bytes, int, bool], None], int]] = []  # (offset, data, emit, frame)
        self.total: int | None = None

    def complete(self) -> bool:
        if self.total is None:
            return False
        covered = 0
        for offset, data, _, _ in sorted(self.pieces, key=lambda p: p[0]):
            if offset > covered:
                return False
            covered = max(covered, offset + len(data))
        return covered >= self.total


class TcpDirection:
    """One direction of a TCP connection: where rewriting moved its bytes."""

    def __init__(self, base: int) -> None:
        self.base = base  # sequence number of relative position 0
        self.next = 0  # next in-order relative position
        self.ends: list[int] = []  # relative end of each length-changing unit
        self.deltas: list[int] = []  # cumulative length change after that unit
        self.held: list[tuple[int, bytes, Callable[[bytes, int], None], int]] = []  # (relative, data, emit, frame)
        self.kind: str | None = None  # "sip", "websocket", "tls" or "other", from the first data
        self.handshake_done = False  # websocket: frames from here on
        self.tls_left = 0  # tls: bytes of the current record still to come
        self.tls_type = 0  # tls: content type of the current record

    def delta_at(self, relative: int) -> int:
        index = bisect_right(self.ends, relative)
        return self.deltas[index - 1] if index else 0

    def record(self, end: int, change: int) -> None:
        if change:
            self.ends.append(end)
            self.deltas.append((self.deltas[-1] if self.deltas else 0) + change)


def sip_message_incomplete(data: bytes) -> bool:
    """True when a SIP stream's bytes end inside a message (head or body)."""
    pos = 0
    while pos < len(data):
        while data.startswith(b"\r\n", pos):
            pos += 2  # keep-alives between messages
        if pos >= len(data):
            return False
        end = HEADER_END.search(data, pos)
        if end is None:
            return True
        head = data[pos : end.start()].lower()
        length = 0
        for line in head.split(b"\n"):
            name, colon, value = line.partition(b":")
            if colon and name.strip() in (b"content-length", b"l"):
                length = int(value.strip()) if value.strip().isdigit() else 0
        pos = end.end() + length
    return pos > len(data)


def stream_kind(first_data: bytes) -> str:
    if looks_like_sip(first_data):
        return "sip"
    if starts_http(first_data) and b"upgrade: websocket" in first_data[:4096].lower():
        return "websocket"
    if starts_tls_record(first_data):
        return "tls"
    return "other"


class PacketRewriter:
    def __init__(self, addresses: PackedAddressCache, pseudonyms: Pseudonyms, text: TextRedactor,
                 options: RedactionOptions, secret: bytes, learning: bool = False,
                 handling: FrameHandling | None = None) -> None:
        self.addresses = addresses  # anything with replace_packed(bytes) -> bytes
        self.learning = learning  # a first pass that only collects values; its output is dropped
        self.handling = handling or FrameHandling()
        self.frame = 0  # the frame being rewritten, set by the caller
        # Frames whose bytes a reassembled payload came from (else just `frame`).
        self._frames: tuple[int, ...] = ()
        self.pseudonyms = pseudonyms
        self.text = text
        self.options = options
        self.macs = MacMap(secret, text)
        self.fragments: dict[tuple, FragmentSet] = {}
        self.streams: dict[tuple, TcpDirection] = {}

    # -- link layers ----------------------------------------------------------

    def rewrite(self, linktype: int, data: bytes, done: Wrap) -> None:
        if linktype == LINKTYPE_ETHERNET:
            self.ethernet(data, done)
        elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP) and len(data) >= 4:
            self.ip(data[4:], lambda inner: done(data[:4] + inner))
        elif linktype == LINKTYPE_SLL and len(data) >= 16:
            head = data[:6] + self._mac_field(data[6:14], data[4:6]) + data[14:16]
            self.by_ethertype(struct.unpack_from("!H", data, 14)[0], data[16:], lambda inner: done(head + inner))
        elif linktype == LINKTYPE_SLL2 and len(data) >= 20:
            head = data[:12] + self._mac_field(data[12:20], data[10:12], short=True)
            self.by_ethertype(struct.unpack_from("!H", data, 0)[0], data[20:], lambda inner: done(head + inner))
        elif linktype in RAW_IP_LINKTYPES:
            self.ip(data, done)
        else:
            done(self.unread(data, f"link type {linktype} is not one the redactor decodes"))

    def _mac_field(self, field: bytes, halen: bytes, short: bool = False) -> bytes:
        length = halen[-1] if short else struct.unpack("!H", halen)[0]
        if length == 6 and self.options.mac_addresses:
            return self.macs.replace(field[:6]) + field[6:]
        return field

    def _mac(self, mac: bytes) -> bytes:
        return self.macs.replace(mac) if self.options.mac_addresses else mac

    def ethernet(self, data: bytes, done: Wrap) -> None:
        if len(data) < 14:
            return done(self.unread(data, "Ethernet frame too short"))
        head = self._mac(data[0:6]) + self._mac(data[6:12])
        pos = 12
        ethertype = struct.unpack_from("!H", data, pos)[0]
        while ethertype in VLAN_TYPES and len(data) >= pos + 6:
            pos += 4
            ethertype = struct.unpack_from("!H", data, pos)[0]
        head += data[12 : pos + 2]
        self.by_ethertype(ethertype, data[pos + 2 :], lambda inner: done(head + inner))

    def by_ethertype(self, ethertype: int, data: bytes, wrap: Wrap) -> None:
        if ethertype in (ETH_IPV4, ETH_IPV6):
            self.ip(data, wrap)
        elif ethertype == ETH_ARP:
            wrap(self.arp(data))
        elif ethertype == ETH_PPPOE and len(data) >= 8:
            # PPPoE session: its length field covers the PPP protocol and payload.
            def pppoe(inner: bytes) -> None:
                wrap(data[:4] + struct.pack("!H", len(inner) + 2) + data[6:8] + inner)

            protocol = struct.unpack_from("!H", data, 6)[0]
            if protocol in (PPP_IPV4, PPP_IPV6):
                self.ip(data[8:], pppoe)
            else:
                wrap(data[:8] + self.unread(data[8:], f"PPP protocol 0x{protocol:04x}"))
        else:
            wrap(self.unread(data, f"ethertype 0x{ethertype:04x}"))

    def arp(self, data: bytes) -> bytes:
        if len(data) < 28 or data[2:6] != b"\x08\x00\x06\x04":
            return self.unread(data, "ARP for other than IPv4 over Ethernet")
        return (data[:8] + self._mac(data[8:14]) + self.addresses.replace_packed(data[14:18])
                + self._mac(data[18:24]) + self.addresses.replace_packed(data[24:28]) + data[28:])

    # -- IP ---------------------------------------------------------------------

    def ip(self, data: bytes, wrap: Wrap) -> None:
        version = data[0] >> 4 if data else 0
        if version == 4 and len(data) >= 20:
            self.ipv4(data, wrap)
        elif version == 6 and len(data) >= 40:
            self.ipv6(data, wrap)
        else:
            wrap(self.unread(data, "not an IPv4 or IPv6 header"))

    def ipv4(self, data: bytes, wrap: Wrap, quoted: bool = False) -> None:
        ihl = (data[0] & 0x0F) * 4
        total = struct.unpack_from("!H", data, 2)[0]
        if ihl < 20 or len(data) < ihl:
            return wrap(self.unread(data, "damaged IPv4 header"))
        end = total if ihl <= total <= len(data) else len(data)
        complete = total == end
        src, dst = data[12:16], data[16:20]
        new_src, new_dst = self.addresses.replace_packed(src), self.addresses.replace_packed(dst)
        protocol = data[9]
        payload, trailer = data[ihl:end], data[end:]
        frag = struct.unpack_from("!H", data, 6)[0]
        # An ICMP error may quote a whole UDP datagram: then it is rewritten
        # like one, so its lengths and checksum stay right too.
        whole_quote = quoted and complete and protocol == 17
        endpoints = Endpoints(4, src, dst, new_src, new_dst, complete and (not quoted or whole_quote))

        def build(new_payload: bytes, frag_field: int = frag) -> bytes:
            header = bytearray(data[:ihl])
            struct.pack_into("!H", header, 2, total + len(new_payload) - len(payload))
            struct.pack_into("!H", header, 6, frag_field)
            header[10:12] = b"\0\0"
            header[12:16], header[16:20] = new_src, new_dst
            struct.pack_into("!H", header, 10, internet_checksum(bytes(header)))
            return bytes(header) + new_payload + trailer

        if whole_quote and len(payload) >= 8:
            return self.udp(endpoints, payload, lambda new: wrap(build(new)))
        if quoted:
            return wrap(build(self.quoted_transport(protocol, payload, src + dst, new_src + new_dst)))
        if frag & 0x3FFF:
            key = (4, src, dst, data[4:6], protocol)
            offset = (frag & 0x1FFF) * 8

            def emit(piece: bytes, new_offset: int, more: bool) -> None:
                wrap(build(piece, (frag & 0x4000) | (0x2000 if more else 0) | (new_offset // 8)))

            return self.fragment(key, protocol, endpoints, offset, bool(frag & 0x2000), payload, emit)
        self.transport(protocol, endpoints, payload, lambda new: wrap(build(new)))

    def ipv6(self, data: bytes, wrap: Wrap, quoted: bool = False) -> None:
        payload_length = struct.unpack_from("!H", data, 4)[0]
        end = min(40 + payload_length, len(data)) if payload_length else len(data)
        complete = 40 + payload_length == end
        src, dst = data[8:24], data[24:40]
        new_src, new_dst = self.addresses.replace_packed(src), self.addresses.replace_packed(dst)
        trailer = data[end:]
        protocol, pos = data[6], 40
        while protocol in IPV6_EXTENSIONS and pos + 8 <= end:
            protocol, pos = data[pos], pos + (data[pos + 1] + 1) * 8
        fragment = protocol == IPV6_FRAGMENT and pos + 8 <= end
        extensions_end = pos + 8 if fragment else pos
        whole_quote = quoted and complete and protocol == 17
        endpoints = Endpoints(6, src, dst, new_src, new_dst, complete and (not quoted or whole_quote))

        def build(new_payload: bytes, extensions: bytes = data[40:extensions_end]) -> bytes:
            length = payload_length + len(extensions) + len(new_payload) - (end - 40)
            header = data[:4] + struct.pack("!H", length) + data[6:8] + new_src + new_dst
            return header + extensions + new_payload + trailer

        payload = data[extensions_end:end]
        if whole_quote and len(payload) >= 8:
            return self.udp(endpoints, payload, lambda new: wrap(build(new)))
        if quoted:
            return wrap(build(self.quoted_transport(protocol, payload, src + dst, new_src + new_dst)))
        if fragment:
            upper = data[pos]
            offset_field = struct.unpack_from("!H", data, pos + 2)[0]
            key = (6, src, dst, data[pos + 4 : pos + 8], upper)

            def emit(piece: bytes, new_offset: int, more: bool) -> None:
                header = data[pos : pos + 2] + struct.pack("!H", new_offset | (offset_field & 6) | int(more)) + data[pos + 4 : pos + 8]
                wrap(build(piece, data[40:pos] + header))

            return self.fragment(key, upper, endpoints, offset_field & 0xFFF8, bool(offset_field & 1), payload, emit)
        self.transport(protocol, endpoints, payload, lambda new: wrap(build(new)))

    def fragment(self, key, protocol, endpoints, offset, more, piece, emit) -> None:
        fragments = self.fragments.get(key)
        if fragments is None:
            fragments = self.fragments[key] = FragmentSet(protocol, endpoints)
        if any(o == offset for o, _, _, _ in fragments.pieces):
            # A duplicate would make the datagram ambiguous: not read on its own.
            return emit(self.unread(piece, "duplicate IP fragment"), offset, more)
        fragments.pieces.append((offset, piece, emit, self.frame))
        if not more:
            fragments.total = offset + len(piece)
        if fragments.complete():
            del self.fragments[key]
            self._reassembled(fragments)

    def _reassembled(self, fragments: FragmentSet) -> None:
        ordered = sorted(fragments.pieces, key=lambda p: p[0])
        datagram = bytearray(fragments.total)
        for offset, data, _, _ in ordered:
            datagram[offset : offset + len(data)] = data

        def spread(new: bytes) -> None:
            sizes = split_like([len(data) for _, data, _, _ in ordered], len(new), unit=8)
            offset = 0
            placed = {}
            for (original_offset, _, _, _), size in zip(ordered, sizes):
                placed[original_offset] = (offset, new[offset : offset + size])
                offset += size
            last = ordered[-1][0]
            # Emit in capture order, each packet keeping its place in the file.
            for original_offset, _, emit, _ in fragments.pieces:
                new_offset, piece = placed[original_offset]
                emit(piece, new_offset, original_offset != last)

        with self._reading([frame for _, _, _, frame in ordered]):
            self.transport(fragments.protocol, fragments.endpoints, bytes(datagram), spread)

    @contextmanager
    def _reading(self, frames: list[int]):
        """A payload put together from several frames: what is found in it concerns them all."""
        outer, self._frames = self._frames, tuple(frames)
        try:
            yield
        finally:
            self._frames = outer

    def _in_play(self) -> tuple[int, ...]:
        return self._frames or (self.frame,)

    def unread(self, data: bytes, reason: str) -> bytes:
        """Bytes no layer here decodes: named for the policy; zeroed when it scrubs."""
        if not data:
            return data
        for frame in self._in_play():
            self.handling.unread.setdefault(frame, reason)
        return bytes(len(data)) if self.handling.scrub else data

    def read(self, kind: str, data: bytes, rewrite: Callable[[bytes], bytes]) -> bytes:
        """A payload of a protocol the rewriter reads: rewritten, unless the
        verification found one of its frames leaking (then zeroed)."""
        frames = self._in_play()
        if kind in SIGNALLING_KINDS:
            self.handling.signalling.update(frames)
        if self.handling.scrub_frames and not self.handling.scrub_frames.isdisjoint(frames):
            return bytes(len(data))
        return rewrite(data)

    def flush(self) -> None:
        """End of capture: datagrams and SIP messages that never completed go out as they are, rewritten piecewise."""
        for fragments in self.fragments.values():
            for offset, piece, emit, frame in fragments.pieces:
                with self._reading([frame]):
                    emit(self.unread(piece, "IP fragment of a datagram that never completed"), offset,
                         offset + len(piece) != fragments.total)
        self.fragments.clear()
        for direction in self.streams.values():
            self._release(direction)

    # -- transport ------------------------------------------------------------

    def transport(self, protocol: int, endpoints: Endpoints, segment: bytes, wrap: Wrap) -> None:
        if protocol == 17 and len(segment) >= 8:
            self.udp(endpoints, segment, wrap)
        elif protocol == 6 and len(segment) >= 20:
            self.tcp(endpoints, segment, wrap)
        elif protocol == 1 and len(segment) >= 8:
            wrap(self.icmp(endpoints, segment, 1))
        elif protocol == 58 and len(segment) >= 8:
            wrap(self.icmp(endpoints, segment, 58))
        elif protocol in (4, 41):
            self.ip(segment, wrap)
        elif protocol == 47 and len(segment) >= 4:
            self.gre(segment, wrap)
        else:
            wrap(self.unread(segment, f"IP protocol {protocol}"))

    def udp(self, endpoints: Endpoints, segment: bytes, wrap: Wrap) -> None:
        sport, dport, length = struct.unpack_from("!HHH", segment)
        whole = endpoints.complete and length == len(segment)
        payload = segment[8:]

        def build(new_payload: bytes) -> None:
            new_length = 8 + len(new_payload) if whole else length
            header = struct.pack("!HHHH", sport, dport, new_length, 0)
            checksum = 0
            if whole:
                checksum = transport_checksum(endpoints.pseudo(17, new_length), header + new_payload, udp=True)
            elif endpoints.complete:
                checksum = struct.unpack_from("!H", segment, 6)[0]
            wrap(header[:6] + struct.pack("!H", checksum) + new_payload)

        if self.learning and payload[:1] and payload[0] >> 6 == 2 and sport not in DNS_PORTS and dport not in DNS_PORTS:
            return  # RTP teaches nothing: the learning pass skips the voice
        if dport == VXLAN_PORT and len(payload) >= 8:
            return self.ethernet(payload[8:], lambda inner: build(payload[:8] + inner))
        build(self.udp_payload(sport, dport, payload))

    def udp_payload(self, sport: int, dport: int, payload: bytes) -> bytes:
        if sport in DNS_PORTS or dport in DNS_PORTS:
            return self.read("dns", payload, self.dns)
        if looks_like_sip(payload):
            return self.read("sip", payload, self.text.sip)
        if payload.strip(b"\r\n \t\0") == b"":
            return self.read("sip", payload, bytes)  # keep-alive (RFC 5626 CRLFs, or blanks): nothing in it
        if sport in DHCP_PORTS and dport in DHCP_PORTS:
            return self.read("dhcp", payload, self.dhcp)
        if payload.startswith(b"HEP3"):
            return self.read("sip", payload, self.hep3)
        if len(payload) >= 12 and payload[0] >> 6 == 2:
            return self.read("rtp", payload, self.rtp)
        return self.unread(payload, f"UDP {sport} -> {dport}: a payload the redactor does not read")

    def rtp(self, payload: bytes) -> bytes:
        """Zero the voice (RTP) but keep headers; RTCP is left to the text rules."""
        if not self.options.rtp_payload or 64 <= payload[1] & 0x7F <= 95:
            return self.text.text(payload)
        start = 12 + 4 * (payload[0] & 0x0F)
        if payload[0] & 0x10 and len(payload) >= start + 4:
            start += 4 + 4 * struct.unpack_from("!H", payload, start + 2)[0]
        end = len(payload) - (payload[-1] if payload[0] & 0x20 else 0)
        if start >= end:
            return payload
        return payload[:start] + bytes(end - start) + payload[end:]

    def hep3(self, payload: bytes) -> bytes:
        """HEP3 carries the inner packet's addresses and text as chunks."""
        chunks, pos = [], 6
        while pos + 6 <= len(payload):
            vendor, kind, length = struct.unpack_from("!HHH", payload, pos)
            if length < 6 or pos + length > len(payload):
                break
            chunks.append([vendor, kind, payload[pos + 6 : pos + length]])
            pos += length
        # The captured payload first: the Call-ID learnt there is then found in
        # the correlation chunk, whichever comes first in the packet.
        for chunk in sorted(chunks, key=lambda c: c[:2] != [0, 15]):
            vendor, kind, value = chunk
            if vendor == 0 and kind in (3, 4, 5, 6) and len(value) in (4, 16):
                chunk[2] = self.addresses.replace_packed(value)
            elif vendor == 0 and kind == 15:
                chunk[2] = self.text.sip(value) if looks_like_sip(value) else self.text.text(value)
            elif vendor == 0 and kind == 17:
                chunk[2] = self.text.text(value)
        body = b"".join(struct.pack("!HHH", v, k, len(value) + 6) + value for v, k, value in chunks) + payload[pos:]
        return b"HEP3" + struct.pack("!H", len(body) + 6) + body

    def tcp(self, endpoints: Endpoints, segment: bytes, wrap: Wrap) -> None:
        sport, dport, seq, ack, offset_flags = struct.unpack_from("!HHIIH", segment)
        offset = (offset_flags >> 12) * 4
        if offset < 20 or offset > len(segment):
            return wrap(segment[:20] + self.unread(segment[20:], "damaged TCP header"))
        flags = offset_flags & 0x1FF
        payload = segment[offset:]
        key = (endpoints.src, sport, endpoints.dst, dport)
        direction = self.streams.get(key)
        if direction is None or flags & 0x02:
            direction = self.streams[key] = TcpDirection(seq + 1 if flags & 0x02 else seq)
        reverse = self.streams.get((endpoints.dst, dport, endpoints.src, sport))
        new_ack = ack
        if flags & 0x10 and reverse is not None:
            new_ack = (ack + reverse.delta_at((ack - reverse.base) % 2**32)) % 2**32
        relative = (seq - direction.base) % 2**32

        def emit(new_payload: bytes, new_seq: int) -> None:
            header = bytearray(segment[:offset])
            struct.pack_into("!II", header, 4, new_seq % 2**32, new_ack)
            header[16:18] = b"\0\0"
            if endpoints.complete:
                checksum = transport_checksum(endpoints.pseudo(6, offset + len(new_payload)), bytes(header) + new_payload, udp=False)
                struct.pack_into("!H", header, 16, checksum)
            else:
                header[16:18] = segment[16:18]
            wrap(bytes(header) + new_payload)

        if not payload or relative != direction.next or not endpoints.complete:
            # Control segments, retransmissions and gaps: rewritten on their own,
            # shifted by what earlier units of the stream moved.
            if payload:
                new = self.tcp_payload(direction, sport, dport, payload, alone=True)
            else:
                new = self.read("tcp-control", payload, bytes)
            return emit(new, seq + direction.delta_at(relative))
        direction.held.append((relative, payload, emit, self.frame))
        direction.next = relative + len(payload)
        if direction.kind is None and payload.strip():
            direction.kind = stream_kind(payload)
        joined = b"".join(p for _, p, _, _ in direction.held)
        if len(direction.held) < MAX_HELD_SEGMENTS and self._incomplete(direction, joined):
            return
        self._release(direction, sport, dport)

    @staticmethod
    def _incomplete(direction: TcpDirection, data: bytes) -> bool:
        if direction.kind == "sip":
            return sip_message_incomplete(data)
        if direction.kind == "websocket":
            return frames_incomplete(data, direction.handshake_done)
        return False

    def _stream_payload(self, direction: TcpDirection, data: bytes, sport: int, dport: int) -> bytes:
        if direction.kind == "sip":
            return self.read("sip", data, self.text.sip)
        if direction.kind != "websocket":
            return self.tcp_payload(direction, sport, dport, data)
        handshake = b""
        if not direction.handshake_done:
            end = handshake_end(data)
            if end < 0:
                return self.read("sip", data, self.text.text)  # the HTTP upgrade request, still coming
            handshake, data = self.read("sip", data[:end], self.text.text), data[end:]
            direction.handshake_done = True
        return handshake + self.read("sip", data, lambda frames: rewrite_frames(frames, self._message))

    def _message(self, payload: bytes) -> bytes:
        """SIP carried inside another layer (WebSocket frames, a quoted or
        retransmitted segment): read as SIP, else as text of that SIP stream."""
        return self.text.sip(payload) if looks_like_sip(payload) else self.text.text(payload)

    def _release(self, direction: TcpDirection, sport: int = 0, dport: int = 0) -> None:
        if not direction.held:
            return
        held, direction.held = direction.held, []
        joined = b"".join(p for _, p, _, _ in held)
        with self._reading([frame for _, _, _, frame in held]):
            new = self._stream_payload(direction, joined, sport, dport)
        start = held[0][0]
        shift = direction.delta_at(start)
        sizes = split_like([len(p) for _, p, _, _ in held], len(new))
        position = 0
        for (_, _, emit, _), size in zip(held, sizes):
            emit(new[position : position + size], direction.base + start + shift + position)
            position += size
        direction.record(start + len(joined), len(new) - len(joined))

    def tcp_payload(self, direction: TcpDirection, sport: int, dport: int, payload: bytes,
                    alone: bool = False) -> bytes:
        """Stream bytes that are not held for a whole SIP message: DNS, TLS,
        segments out of order, and streams of other protocols (unread)."""
        if (sport in DNS_PORTS or dport in DNS_PORTS) and len(payload) > 2:
            return self.read("dns", payload, lambda message: message[:2] + self.dns(message[2:]))
        if direction.kind == "tls" and not alone:
            return self.tls(direction, payload)
        if direction.kind in ("sip", "websocket") or looks_like_sip(payload):
            return self.read("sip", payload, self._message)
        return self.unread(payload, f"TCP {sport} -> {dport}: a stream the redactor does not read")

    def tls(self, direction: TcpDirection, data: bytes) -> bytes:
        """TLS record by record: encrypted records and alerts hide nothing and
        stay; a ClientHello stays with its server name replaced (the analysis
        reports TLS from it); every other handshake message is unread, since
        certificates name their owners."""
        out = bytearray(data)
        pos = 0
        while pos < len(data):
            if direction.tls_left:
                take = min(direction.tls_left, len(data) - pos)
                if direction.tls_type not in TLS_OPAQUE_RECORDS:
                    out[pos : pos + take] = self.unread(data[pos : pos + take], "TLS handshake message")
                direction.tls_left -= take
                pos += take
                continue
            record = data[pos:]
            if len(record) < RECORD_HEADER or not starts_tls_record(record):
                # A header cut between segments or damage: the stream is lost to the record walk.
                direction.tls_type, direction.tls_left = 0, 1 << 62
                continue
            direction.tls_type = record[0]
            direction.tls_left = (record[3] << 8) | record[4]
            pos += RECORD_HEADER
            is_hello, server_name = client_hello_sni(record)
            if is_hello and len(record) >= RECORD_HEADER + direction.tls_left:
                end = pos + direction.tls_left
                hello = self.read("tls", data[pos:end], lambda body: self._client_hello(body, server_name))
                out[pos:end] = hello
                direction.tls_left, pos = 0, end
        return bytes(out)

    def _client_hello(self, body: bytes, server_name: str | None) -> bytes:
        name = (server_name or "").encode("ascii", "replace")
        at = body.find(name) if name else -1
        if at < 0:
            return body
        replaced = self.text.host_name(server_name).encode("ascii", "replace")
        if len(replaced) != len(name):
            replaced = bytes(len(name))  # a name that cannot keep its length is blanked: lengths stay valid
        return body[:at] + replaced + body[at + len(name) :]

    def icmp(self, endpoints: Endpoints, message: bytes, protocol: int) -> bytes:
        kind = message[0]
        errors = ICMP_ERRORS if protocol == 1 else ICMPV6_ERRORS
        body = message[8:]
        quoted: list[bytes] = []
        if kind in errors and protocol == 1 and len(body) >= 20 and body[0] >> 4 == 4:
            self.read("icmp", body, lambda quote: self.ipv4(quote, quoted.append, quoted=True))
        elif kind in errors and protocol == 58 and len(body) >= 40 and body[0] >> 4 == 6:
            self.read("icmp", body, lambda quote: self.ipv6(quote, quoted.append, quoted=True))
        else:
            self.handling.signalling.update(self._in_play())
        body = quoted[0] if quoted else self.unread(body, f"ICMP type {kind} data")
        header = bytearray(message[:8])
        header[2:4] = b"\0\0"
        if endpoints.complete:
            pseudo = endpoints.pseudo(58, 8 + len(body)) if protocol == 58 else b""
            struct.pack_into("!H", header, 2, internet_checksum(pseudo + bytes(header) + body))
        else:
            header[2:4] = message[2:4]
        return bytes(header) + body

    def quoted_transport(self, protocol: int, payload: bytes, addresses: bytes, new_addresses: bytes) -> bytes:
        """The start of a segment quoted by an ICMP error. Its checksum covers
        bytes the quote left out, so it is adjusted for what changed (the
        addresses, and the quoted data, which is unread: only its start is
        here) rather than computed. A checksum that was wrong stays wrong."""
        at = 6 if protocol == 17 else 16 if protocol == 6 else None
        header = 8 if protocol == 17 else ((payload[12] >> 4) * 4 if protocol == 6 and len(payload) > 12 else 0)
        if at is None or len(payload) < at + 2:
            return payload[:header] + self.unread(payload[header:], f"IP protocol {protocol} quoted by ICMP")
        data = payload[header:]
        new = payload[:header] + self.unread(data, "the start of a quoted segment")
        checksum = struct.unpack_from("!H", payload, at)[0]
        if protocol == 17 and checksum == 0:
            return new  # no checksum sent
        # Words in the same places on both sides; the checksum field itself counts as zero.
        before = addresses + payload[:at] + b"\0\0" + payload[at + 2 :]
        after = new_addresses + new[:at] + b"\0\0" + new[at + 2 :]
        adjusted = adjusted_checksum(checksum, before, after)
        if protocol == 17 and adjusted == 0:
            adjusted = 0xFFFF
        return new[:at] + struct.pack("!H", adjusted) + new[at + 2 :]

    def gre(self, packet: bytes, wrap: Wrap) -> None:
        flags, protocol = struct.unpack_from("!HH", packet)
        length = 4 + 4 * (bool(flags & 0x8000) + bool(flags & 0x2000) + bool(flags & 0x1000))
        if flags & 7 == 1:  # enhanced GRE (PPTP): key, optional sequence and ack
            length = 8 + 4 * (bool(flags & 0x1000) + bool(flags & 0x0080))
        if len(packet) < length:
            return wrap(self.unread(packet, "damaged GRE header"))
        head = bytearray(packet[:length])

        def build(inner: bytes) -> None:
            if flags & 7 == 1:
                struct.pack_into("!H", head, 4, len(inner))
            if flags & 0x8000:
                head[4:6] = b"\0\0"
                struct.pack_into("!H", head, 4, internet_checksum(bytes(head) + inner))
            wrap(bytes(head) + inner)

        payload = packet[length:]
        if protocol in (ETH_IPV4, ETH_IPV6):
            self.ip(payload, build)
        elif protocol == GRE_ETHERNET:
            self.ethernet(payload, build)
        elif protocol in (GRE_ERSPAN2, GRE_ERSPAN3) and len(payload) >= 8:
            skip = 8 if protocol == GRE_ERSPAN2 else 12 + (8 if payload[11] & 1 else 0)
            self.ethernet(payload[skip:], lambda inner: build(payload[:skip] + inner))
        elif protocol == GRE_PPP and len(payload) >= 2:
            skip = 2 if payload[:2] == b"\xff\x03" else 0
            ppp_protocol = payload[skip] if payload[skip] & 1 else struct.unpack_from("!H", payload, skip)[0]
            skip += 1 if payload[skip] & 1 else 2
            if ppp_protocol in (PPP_IPV4, PPP_IPV6):
                self.ip(payload[skip:], lambda inner: build(payload[:skip] + inner))
            else:
                build(payload[:skip] + self.unread(payload[skip:], f"PPP protocol 0x{ppp_protocol:04x} in GRE"))
        else:
            build(self.unread(payload, f"GRE protocol 0x{protocol:04x}"))

    def dhcp(self, message: bytes) -> bytes:
        """BOOTP/DHCP: the client's MAC and every address field and option."""
        if len(message) < 240 or message[236:240] != b"\x63\x82\x53\x63":
            return self.unread(message, "BOOTP without DHCP options")
        out = bytearray(message)
        for start in (12, 16, 20, 24):
            out[start : start + 4] = self.addresses.replace_packed(message[start : start + 4])
        if message[2] == 6:
            out[28:34] = self._mac(message[28:34])
        pos = 240
        while pos + 2 <= len(message) and message[pos] != 255:
            code = message[pos]
            if code == 0:  # pad: one byte, no length
                pos += 1
                continue
            length, value_start = message[pos + 1], pos + 2
            value = message[value_start : value_start + length]
            if code in DHCP_ADDRESS_OPTIONS and length % 4 == 0:
                value = b"".join(self.addresses.replace_packed(value[i : i + 4]) for i in range(0, length, 4))
            elif code == DHCP_CLIENT_ID and length == 7 and value[0] == 1:
                value = value[:1] + self._mac(value[1:])
            elif code == DHCP_HOST_NAME and self.options.domains:
                value = self.text.host_name(value.decode("latin-1")).encode("latin-1")
            out[value_start : value_start + len(value)] = value
            pos = value_start + length
        # Names learnt elsewhere (client FQDN option): same-length replacements only.
        return self.text.replace_known_values(bytes(out).decode("latin-1")).encode("latin-1")

    # -- DNS ------------------------------------------------------------------

    def dns(self, message: bytes) -> bytes:
        """Addresses and names rewritten in place: same lengths, so compression pointers stay valid."""
        if len(message) < 12:
            return self.unread(message, "DNS message shorter than its header")
        out = bytearray(message)
        counts = struct.unpack_from("!HHHH", message, 4)
        pos = 12
        try:
            for _ in range(counts[0]):
                pos = self._dns_name(message, out, pos) + 4
            for _ in range(sum(counts[1:])):
                pos = self._dns_name(message, out, pos)
                rtype, _, _, rdlength = struct.unpack_from("!HHIH", message, pos)
                pos += 10
                rdata_end = pos + rdlength
                if rdata_end > len(message):
                    break
                if rtype in (1, 28) and rdlength in (4, 16):
                    out[pos:rdata_end] = self.addresses.replace_packed(message[pos:rdata_end])
                elif rtype in DNS_NAME_TYPES:
                    self._dns_name(message, out, pos + DNS_NAME_TYPES[rtype])
                elif rtype == 35:  # NAPTR: three strings, then the replacement name
                    name_pos = pos + 4
                    for _ in range(3):
                        name_pos += 1 + message[name_pos]
                    self._dns_name(message, out, name_pos)
                elif rtype == 6:  # SOA: primary server and mailbox
                    self._dns_name(message, out, self._dns_name(message, out, pos))
                pos = rdata_end
        except (IndexError, struct.error):
            pass  # a damaged message keeps what was rewritten so far
        return bytes(out)

    def _dns_name(self, message: bytes, out: bytearray, pos: int) -> int:
        """Rewrite the labels physically at `pos`; returns the position after the name."""
        labels, positions, end, cursor, jumps = [], [], None, pos, 0
        while True:
            length = message[cursor]
            if length & 0xC0 == 0xC0:
                if end is None:
                    end = cursor + 2
                cursor = ((length & 0x3F) << 8) | message[cursor + 1]
                jumps += 1
                if jumps > 32:
                    raise IndexError("DNS compression loop")
                continue
            if length == 0:
                break
            if end is None:
                positions.append((len(labels), cursor + 1))
            labels.append(message[cursor + 1 : cursor + 1 + length].decode("latin-1"))
            cursor += 1 + length
        if end is None:
            end = cursor + 1
        name = ".".join(labels)
        if self.options.domains and looks_like_domain(name):
            self.text.remember("domains", name.lower())
            replaced = self.pseudonyms.domain(name).split(".")
            for index, start in positions:
                out[start : start + len(labels[index])] = replaced[index].encode("latin-1")
        return end
