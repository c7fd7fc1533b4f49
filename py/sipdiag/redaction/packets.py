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
import struct
from bisect import bisect_right
from contextlib import contextmanager
from typing import Callable

from ..protocols.sip import looks_like_sip
from ..protocols.tls import RECORD_HEADER, client_hello_sni, starts_tls_record
from ..protocols.websocket import starts_http
from .addressmap import AddressMap, mac_replacement
from .checksums import (
    adjusted_checksum,
    internet_checksum,
    ipv4_pseudo_header,
    ipv6_pseudo_header,
    transport_checksum,
)
from .encapsulations import (
    cdp_checksum,
    ieee80211_fcs,
    netbios_decode,
    netbios_encode,
    nflog_byte_order,
    radiotap_flags,
    sctp_checksum,
    stun_fingerprint,
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
LINKTYPE_PPP, LINKTYPE_PPP_HDLC, LINKTYPE_C_HDLC, LINKTYPE_NFLOG = 9, 50, 104, 239
LINKTYPE_IEEE802_11, LINKTYPE_RADIOTAP = 105, 127

ETH_IPV4, ETH_IPV6, ETH_ARP, ETH_PPPOE = 0x0800, 0x86DD, 0x0806, 0x8864
VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
ETH_MPLS = (0x8847, 0x8848)  # unicast, multicast
ETH_LLDP = 0x88CC
ETH_MAX_LENGTH = 1500  # an Ethernet type field up to this is an 802.3 length: LLC follows
SNAP_ETHERTYPE_OUIS = (b"\0\0\0", b"\0\0\xf8")  # RFC 1042 and 802.1H: the SNAP protocol id is an ethertype
CISCO_OUI, CDP_PROTOCOL = b"\0\0\x0c", 0x2000
CHDLC_ADDRESSES = (0x0F, 0x8F)  # unicast, broadcast
IEEE80211_OTHER_FRAMES = {0: "management", 1: "control", 3: "extension"}  # by frame type; 2 is data
GRE_ETHERNET, GRE_ERSPAN2, GRE_ERSPAN3, GRE_PPP = 0x6558, 0x88BE, 0x22EB, 0x880B
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057
IPV6_EXTENSIONS = (0, 43, 60)
IPV6_FRAGMENT = 44
DNS_PORTS = (53, 5353, 5355)
DHCP_PORTS = (67, 68)
DHCP_ADDRESS_OPTIONS = frozenset((3, 6, 28, 50, 54))  # router, DNS servers, broadcast, requested, server id
DHCP_HOST_NAME, DHCP_CLIENT_ID, DHCP_CLIENT_FQDN = 12, 61, 81
VXLAN_PORT = 4789
GTPU_PORT = 2152
GTPU_T_PDU = 0xFF
DHCPV6_PORTS = (546, 547)
NETBIOS_NAME_PORT, NETBIOS_DATAGRAM_PORT = 137, 138
ICMP_ERRORS = (3, 4, 5, 11, 12)
ICMPV6_ERRORS = (1, 2, 3, 4)
MLD_QUERY_REPORT_DONE, MLDV2_REPORT = (130, 131, 132), 143
IGMP_GROUP_MESSAGES, IGMPV3_REPORT = (0x11, 0x12, 0x16, 0x17), 0x22  # query, v1/v2 reports, leave
# Neighbour discovery (RFC 4861): where the options start; before them, in
# NS, NA and Redirect, the target (and Redirect's destination) address.
ND_OPTIONS_AT = {133: 0, 134: 8, 135: 16, 136: 16, 137: 32}
ND_SOURCE_LINK, ND_TARGET_LINK, ND_PREFIX, ND_ROUTE, ND_RDNSS, ND_DNSSL = 1, 2, 3, 24, 25, 31
ND_NUMBER_OPTIONS = frozenset((5, 14, 26))  # MTU, nonce, RA flags extension
DNS_TXT = 16
DNS_NAME_TYPES = {2: 0, 5: 0, 12: 0, 15: 2, 33: 6}  # rdata offset of the name
# A SIP message longer than this over TCP is damage; stop waiting for its end.
MAX_HELD_SEGMENTS = 64
# What "keep only signalling" keeps: the payload kinds a diagnosis reads
# (SCTP's association control as TCP's: the SIP over it needs its handshake).
# Payloads the generic binary sweep passes over: not text (SIP, DNS names), not
# voice, not encrypted (TLS), where a chance match would be rewritten for nothing.
SWEPT_KINDS = frozenset(("dhcp", "other", "sctp-control"))
SIGNALLING_KINDS = frozenset(("sip", "tls", "dns", "rtp", "icmp", "tcp-control", "sctp-control"))
# TLS records whose bytes hide nothing readable: change_cipher_spec, alert, application data.
TLS_OPAQUE_RECORDS = (20, 21, 23)

# NFLOG attributes (linux/netfilter/nfnetlink_log.h) that hold numbers only:
# packet header, mark, timestamp, interface indexes, uid, sequence numbers,
# gid, hardware type and header length, conntrack info, VLAN.
NFLOG_NUMBERS = frozenset((1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15, 17, 19, 20))
NFULA_HWADDR, NFULA_PAYLOAD, NFULA_PREFIX, NFULA_HWHEADER = 8, 9, 10, 16

# LLDP (802.1AB): chassis (1) and port (2) id subtypes holding a MAC or a
# network address; port id subtype 6 (agent circuit id) is binary; the other
# subtypes are names.
LLDP_ID_MAC = {1: 4, 2: 3}
LLDP_ID_ADDRESS = {1: 5, 2: 4}
LLDP_PORT_CIRCUIT_ID = 6
LLDP_TEXT = frozenset((4, 6))  # port description, system description
LLDP_NUMBERS = frozenset((3, 7))  # TTL, capabilities
LLDP_SYSTEM_NAME, LLDP_MANAGEMENT_ADDRESS, LLDP_ORGANISATION = 5, 8, 127
# Organisation-specific TLVs of numbers only, by (OUI, subtype): 802.1 VLAN
# ids, link aggregation, congestion notification, ETS, PFC, application
# priority; 802.3 MAC/PHY, power, aggregation, frame size, EEE, additional
# capabilities; LLDP-MED capabilities, network policy, extended power.
# Names, locations and inventory (serial numbers, asset ids) are not here.
LLDP_ORGANISATION_NUMBERS = frozenset(
    [(b"\x00\x80\xc2", n) for n in (1, 2, 7, 8, 9, 10, 11, 12)]
    + [(b"\x00\x12\x0f", n) for n in (1, 2, 3, 4, 5, 7)]
    + [(b"\x00\x12\xbb", n) for n in (1, 2, 4)])
# IANA address family numbers, as LLDP addresses start: IPv4, IPv6, 802 (a MAC).
ADDRESS_FAMILY_LENGTHS = {1: 4, 2: 16, 6: 6}

CDP_HOST_NAMES = frozenset((1, 20))  # device id, system name
CDP_ADDRESSES = frozenset((2, 22))  # addresses, management addresses
CDP_TEXT = frozenset((3, 5, 6, 9))  # port id, software version, platform, VTP domain
# Capabilities, native VLAN, duplex, VoIP VLAN reply/query, power, MTU,
# trust bitmap, untrusted CoS, system object id, power available.
CDP_NUMBERS = frozenset((4, 10, 11, 14, 15, 16, 17, 18, 19, 21, 26))

# SCTP (RFC 9260 and extensions).
SCTP_DATA, SCTP_INIT, SCTP_INIT_ACK, SCTP_HEARTBEAT, SCTP_HEARTBEAT_ACK = 0, 1, 2, 4, 5
SCTP_COOKIE_ECHO = 10
SCTP_ABORT, SCTP_ERROR = 6, 9
# Chunks of numbers: SACK, SHUTDOWN (ACK, COMPLETE), COOKIE ACK, ECNE, CWR,
# AUTH (its HMAC cannot be recomputed without the shared key: kept),
# RE-CONFIG, FORWARD TSN, I-FORWARD TSN.
SCTP_NUMBER_CHUNKS = frozenset((3, 7, 8, 11, 12, 13, 14, 15, 130, 192, 194))
SCTP_IPV4_ADDRESS, SCTP_IPV6_ADDRESS, SCTP_STATE_COOKIE, SCTP_HEARTBEAT_INFO = 5, 6, 7, 1
# A state cookie is its server's own format: Linux signs, but does not hide, the
# association's addresses in it. The INIT ACK and the COOKIE ECHO that
# returns it are zeroed alike.
SCTP_COOKIE_UNREAD = "SCTP state cookie (its server's own format: may hold the addresses)"
# Parameters of numbers: cookie preservative, supported address types, ECN,
# random, chunk list, HMAC algorithms, supported extensions, forward TSN,
# adaptation layer indication.
SCTP_NUMBER_PARAMETERS = frozenset((9, 12, 0x8000, 0x8002, 0x8003, 0x8004, 0x8008, 0xC000, 0xC006))

DHCPV6_RELAY_MESSAGES = (12, 13)  # relay-forward, relay-reply
DHCPV6_CLIENT_ID, DHCPV6_SERVER_ID, DHCPV6_IA_NA, DHCPV6_IA_TA = 1, 2, 3, 4
DHCPV6_IA_ADDRESS, DHCPV6_RELAY_MESSAGE, DHCPV6_STATUS, DHCPV6_IA_PD, DHCPV6_IA_PREFIX = 5, 9, 13, 25, 26
DHCPV6_FQDN = 39
DHCPV6_ADDRESS_LISTS = frozenset((22, 23, 31))  # SIP servers, DNS servers, SNTP servers
DHCPV6_NAME_LISTS = frozenset((21, 24))  # SIP server domains, domain search list
# Option request, preference, elapsed time, rapid commit, reconfigure
# message/accept, information refresh time, SOL_MAX_RT, INF_MAX_RT.
DHCPV6_NUMBERS = frozenset((6, 7, 8, 14, 19, 20, 32, 82, 83))
DUID_LLT, DUID_LL, HARDWARE_ETHERNET = 1, 3, 1

STUN_COOKIE = b"\x21\x12\xa4\x42"
STUN_XOR_ADDRESSES = frozenset((0x0020, 0x8020, 0x0012, 0x0016))  # XOR-MAPPED (and its draft code), XOR-PEER, XOR-RELAYED
# MAPPED-ADDRESS, RFC 3489's SOURCE-, CHANGED-ADDRESS and REFLECTED-FROM,
# RESPONSE-ORIGIN, OTHER-ADDRESS, ALTERNATE-SERVER.
STUN_ADDRESSES = frozenset((0x0001, 0x0004, 0x0005, 0x000B, 0x802B, 0x802C, 0x8023))
STUN_FAMILIES = ((b"\x01", 8), (b"\x02", 20))  # (family, attribute length): IPv4, IPv6
STUN_TEXT = frozenset((0x0006, 0x0014, 0x0015, 0x8022))  # USERNAME, REALM, NONCE, SOFTWARE
STUN_ERROR_CODE, STUN_FINGERPRINT = 0x0009, 0x8028
# Numbers: CHANGE-REQUEST, MESSAGE-INTEGRITY (and -SHA256: without the
# password they cannot be recomputed, so they are kept as sent),
# UNKNOWN-ATTRIBUTES, CHANNEL-NUMBER, LIFETIME, EVEN-PORT,
# REQUESTED-TRANSPORT, DONT-FRAGMENT, RESERVATION-TOKEN, PRIORITY,
# USE-CANDIDATE, RESPONSE-PORT, ICE-CONTROLLED, ICE-CONTROLLING, and
# Google's network info (network id and cost).
STUN_NUMBERS = frozenset((0x0003, 0x0008, 0x001C, 0x000A, 0x000C, 0x000D, 0x0018, 0x0019, 0x001A, 0x0022,
                          0x0024, 0x0025, 0x0027, 0x8029, 0x802A, 0xC057))

NBNS_NB, NBNS_NBSTAT = 0x20, 0x21
# Names every NetBIOS host uses: the wildcard of a node status query and the browse master group.
NETBIOS_WELL_KNOWN = frozenset((b"*" + bytes(15), b"\x01\x02__MSBROWSE__\x02\x01"))
NETBIOS_DIRECT_DATAGRAMS = (0x10, 0x11, 0x12)  # direct unique, direct group, broadcast
NETBIOS_DATAGRAM_QUERIES = (0x14, 0x15, 0x16)  # name query request, positive and negative response
NETBIOS_DATAGRAM_TYPES = frozenset(NETBIOS_DIRECT_DATAGRAMS + NETBIOS_DATAGRAM_QUERIES + (0x13,))  # 0x13: error


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
        self.map = addresses
        # original -> replacement bytes in first-seen order: the scan kernel's redaction tables copy it.
        self.known: dict[bytes, bytes] = {}

    def replace_packed(self, packed: bytes) -> bytes:
        found = self.known.get(packed)
        if found is None:
            found = self.known[packed] = self.map.replace_packed(packed)
        return found


class MacMap:
    def __init__(self, secret: bytes, text: TextRedactor, keep_oui: bool = False) -> None:
        self._key = hashlib.sha256(b"sipdiag-mac\0" + secret).digest()
        self.known: dict[bytes, bytes] = {}  # original -> replacement, first seen first (copied like PackedAddressCache's)
        self._replaced: list[tuple[bytes, bytes]] = []  # (original, replacement) of every MAC that changed
        self._text = text
        self._keep_oui = keep_oui

    def replaced(self) -> list[tuple[bytes, bytes]]:
        return self._replaced

    def replace(self, mac: bytes) -> bytes:
        found = self.known.get(mac)
        if found is None:
            found = self.known[mac] = mac_replacement(self._key, mac, self._keep_oui)
            if found != mac:
                self._replaced.append((mac, found))
            if found != mac:  # group addresses and the null MAC stay
                self._text.mac_text[mac.hex(":")] = found.hex(":")
                self._text.remember("mac_addresses", mac.hex(":"))
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


def is_stun(payload: bytes) -> bool:
    """A STUN message (RFC 8489): two zero bits, the magic cookie, a length in whole words that fits."""
    if len(payload) < 20 or payload[0] >> 6 or payload[4:8] != STUN_COOKIE:
        return False
    length = struct.unpack_from("!H", payload, 2)[0]
    return length % 4 == 0 and 20 + length <= len(payload)


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
        self.macs = MacMap(secret, text, options.keep_oui)
        if isinstance(addresses, PackedAddressCache):
            addresses.map.interface_mac = self._mac
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
        elif linktype == LINKTYPE_NFLOG:
            self.nflog(data, done)
        elif linktype == LINKTYPE_C_HDLC or (linktype == LINKTYPE_PPP_HDLC and data[:1] and data[0] in CHDLC_ADDRESSES):
            self.chdlc(data, done)  # link type 50 is PPP or Cisco HDLC, told apart by the address byte
        elif linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC):
            self.ppp(data, done)
        elif linktype == LINKTYPE_IEEE802_11:
            self.ieee80211(data, done)
        elif linktype == LINKTYPE_RADIOTAP:
            self.radiotap(data, done)
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
        pos = 12
        ethertype = struct.unpack_from("!H", data, pos)[0]
        while ethertype in VLAN_TYPES and len(data) >= pos + 6:
            pos += 4
            ethertype = struct.unpack_from("!H", data, pos)[0]
        head = self._group_mac(data[0:6], ethertype, data[pos + 2 :]) + self._mac(data[6:12])
        if ethertype <= ETH_MAX_LENGTH:
            return self.ieee8023(head + data[12:pos], ethertype, data[pos + 2 :], done)
        head += data[12 : pos + 2]
        self.by_ethertype(ethertype, data[pos + 2 :], lambda inner: done(head + inner))

    def _group_mac(self, mac: bytes, ethertype: int, packet: bytes) -> bytes:
        """A destination MAC; a multicast one is made of its IP group's last
        bits (RFC 2464, RFC 1112) and follows the group's replacement: the
        solicited-node group of a SLAAC address ends in its MAC's last 3 bytes."""
        if not self.options.mac_addresses:
            return mac
        if ethertype == ETH_IPV6 and mac[:2] == b"\x33\x33" and len(packet) >= 40 and packet[24] == 0xFF:
            return mac[:2] + self.addresses.replace_packed(packet[24:40])[12:]
        if ethertype == ETH_IPV4 and mac[:3] == b"\x01\x00\x5e" and len(packet) >= 20 and packet[16] >> 4 == 0xE:
            group = self.addresses.replace_packed(packet[16:20])
            return mac[:3] + bytes((mac[3] & 0x80 | group[1] & 0x7F,)) + group[2:]
        return self.macs.replace(mac)

    def ieee8023(self, head: bytes, length: int, payload: bytes, done: Wrap) -> None:
        """An 802.3 frame: its length field covers the LLC frame; the padding
        after it (to the minimum frame size) means nothing and is zeroed."""
        frame, padding = payload[:length], bytes(max(0, len(payload) - length))
        # A frame the capture cut short keeps its length field as short of the truth.
        self.llc(frame, lambda inner: done(head + struct.pack("!H", length + len(inner) - len(frame)) + inner + padding))

    def llc(self, data: bytes, wrap: Wrap) -> None:
        """An 802.2 LLC frame: SNAP with an ethertype, CDP, or a spanning-tree BPDU."""
        if data[:3] == b"\xaa\xaa\x03" and len(data) >= 8:
            oui, protocol = data[3:6], struct.unpack_from("!H", data, 6)[0]
            if oui in SNAP_ETHERTYPE_OUIS:
                return self.by_ethertype(protocol, data[8:], lambda inner: wrap(data[:8] + inner))
            if oui == CISCO_OUI and protocol == CDP_PROTOCOL:
                return wrap(data[:8] + self.read("other", data[8:], self.cdp))
            return wrap(data[:8] + self.unread(data[8:], f"SNAP protocol {oui.hex(':')}/0x{protocol:04x}"))
        if data[:3] == b"\x42\x42\x03":
            return wrap(data[:3] + self.read("other", data[3:], self.stp))
        wrap(self.unread(data, f"LLC frame to SAP 0x{data[0]:02x}" if data else "empty LLC frame"))

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
        elif ethertype in ETH_MPLS:
            self.mpls(data, wrap)
        elif ethertype == ETH_LLDP:
            wrap(self.read("other", data, self.lldp))
        else:
            wrap(self.unread(data, f"ethertype 0x{ethertype:04x}"))

    def arp(self, data: bytes) -> bytes:
        if len(data) < 28 or data[2:6] != b"\x08\x00\x06\x04":
            return self.unread(data, "ARP for other than IPv4 over Ethernet")
        return (data[:8] + self._mac(data[8:14]) + self.addresses.replace_packed(data[14:18])
                + self._mac(data[18:24]) + self.addresses.replace_packed(data[24:28]) + data[28:])

    # -- other link layers ------------------------------------------------------

    def nflog(self, data: bytes, done: Wrap) -> None:
        """NFLOG: a 4-byte header (family, version, group), then attributes as
        TLVs, each padded to 4 bytes; NFULA_PAYLOAD is the IP packet."""
        if len(data) < 4:
            return done(self.unread(data, "NFLOG header too short"))
        order = nflog_byte_order(data)
        attributes: list[list] = []  # [type field, value, padded]
        payload_at = None
        pos = 4
        while pos + 4 <= len(data):
            length, kind = struct.unpack_from(order + "HH", data, pos)
            if length < 4 or pos + length > len(data):
                break
            value = data[pos + 4 : pos + length]
            padded = (length + 3) & ~3
            if kind & 0x7FFF == NFULA_PAYLOAD:
                payload_at = len(attributes)
            else:
                value = self._nflog_attribute(kind & 0x7FFF, value)  # the top bits are netlink flags
            attributes.append([kind, value, pos + padded <= len(data)])
            pos += padded
        rest = self.unread(data[pos:], "bytes after the NFLOG attributes")

        def build(payload: bytes | None = None) -> None:
            if payload is not None:
                attributes[payload_at][1] = payload
            out = [data[:4]]
            for kind, value, padded in attributes:
                out.append(struct.pack(order + "HH", 4 + len(value), kind) + value)
                if padded:
                    out.append(bytes(-len(value) % 4))
            done(b"".join(out) + rest)

        if payload_at is None:
            return build()
        self.ip(attributes[payload_at][1], build)

    def _nflog_attribute(self, kind: int, value: bytes) -> bytes:
        if kind in NFLOG_NUMBERS:
            return value
        if kind == NFULA_HWADDR and len(value) >= 10 and value[:2] == b"\0\x06":
            return value[:4] + self._mac(value[4:10]) + value[10:]  # be16 address length, 2 pad bytes, 8 address bytes
        if kind == NFULA_HWHEADER and len(value) == 14:
            return self._mac(value[:6]) + self._mac(value[6:12]) + value[12:]  # the Ethernet header
        if kind == NFULA_PREFIX:
            text, nul, rest = value.partition(b"\0")
            return self.read("other", text, self.text.text) + nul + rest
        return self.unread(value, f"NFLOG attribute {kind}")

    def ppp(self, data: bytes, wrap: Wrap, where: str = "") -> None:
        """A PPP frame: maybe HDLC address and control (FF 03), then the
        protocol, one byte when compressed (odd), else two."""
        skip = 2 if data[:2] == b"\xff\x03" else 0
        width = 1 if len(data) > skip and data[skip] & 1 else 2
        if len(data) < skip + width:
            return wrap(self.unread(data, f"PPP frame too short{where}"))
        protocol = int.from_bytes(data[skip : skip + width], "big")
        skip += width
        if protocol in (PPP_IPV4, PPP_IPV6):
            self.ip(data[skip:], lambda inner: wrap(data[:skip] + inner))
        else:
            wrap(data[:skip] + self.unread(data[skip:], f"PPP protocol 0x{protocol:04x}{where}"))

    def chdlc(self, data: bytes, wrap: Wrap) -> None:
        """Cisco HDLC: address, control, then an ethertype (or CDP's protocol number)."""
        if len(data) < 4:
            return wrap(self.unread(data, "Cisco HDLC frame too short"))
        protocol = struct.unpack_from("!H", data, 2)[0]
        if protocol == CDP_PROTOCOL:
            return wrap(data[:4] + self.read("other", data[4:], self.cdp))
        self.by_ethertype(protocol, data[4:], lambda inner: wrap(data[:4] + inner))

    def ieee80211(self, frame: bytes, wrap: Wrap, padded: bool = False) -> None:
        """An 802.11 frame: every address field is a MAC; a data frame's body
        is LLC. `padded`: radiotap says the body starts 4-byte aligned."""
        if len(frame) < 10:
            return wrap(self.unread(frame, "802.11 frame too short"))
        kind, subtype, flags = (frame[0] >> 2) & 3, frame[0] >> 4, frame[1]
        if kind == 2:  # data: 3 addresses, 4 between two access points, QoS control, HT control
            addresses = 4 if flags & 3 == 3 else 3
            header = 24 + 6 * (addresses == 4) + (2 + 4 * bool(flags & 0x80) if subtype & 8 else 0)
        elif kind == 0:  # management: 3 addresses, HT control when ordered
            addresses, header = 3, 24 + 4 * bool(flags & 0x80)
        elif kind == 1:  # control: CTS, ACK and the control wrapper name only their receiver
            addresses = 1 if subtype in (7, 12, 13) else 2
            header = 4 + 6 * addresses
        else:
            addresses, header = 0, 2
        if len(frame) < header:
            return wrap(self.unread(frame, "802.11 header cut short"))
        head = bytearray(frame[:header])
        for at in (4, 10, 16, 24)[:addresses]:
            head[at : at + 6] = self._mac(frame[at : at + 6])
        start = (header + 3) & ~3 if padded else header
        head += frame[header:start]
        body = frame[start:]
        if kind != 2:
            return wrap(bytes(head) + self.unread(body, f"802.11 {IEEE80211_OTHER_FRAMES[kind]} frame body"))
        if flags & 0x40:
            return wrap(bytes(head) + self.unread(body, "protected (encrypted) 802.11 data"))
        if subtype & 8 and frame[header - 2 - 4 * bool(flags & 0x80)] & 0x80:
            return wrap(bytes(head) + self.unread(body, "802.11 A-MSDU"))
        if subtype & 4:  # null data subtypes carry no body
            return wrap(bytes(head) + self.unread(body, "bytes in a null 802.11 data frame"))
        self.llc(body, lambda inner: wrap(bytes(head) + inner))

    def radiotap(self, data: bytes, done: Wrap) -> None:
        """Radiotap: a header of radio numbers, then the 802.11 frame, which
        ends with its FCS when the flags say so: recomputed over the new frame
        when it was right, kept (still wrong) when it was not."""
        length = struct.unpack_from("<H", data, 2)[0] if len(data) >= 8 else 0
        if not 8 <= length <= len(data):
            return done(self.unread(data, "damaged radiotap header"))
        flags = radiotap_flags(data[:length])
        frame = data[length:]
        if flags & 0x10 and len(frame) >= 4:
            frame, fcs = frame[:-4], frame[-4:]
            right = ieee80211_fcs(frame) == fcs
            self.ieee80211(frame, lambda new: done(data[:length] + new + (ieee80211_fcs(new) if right else fcs)),
                           padded=bool(flags & 0x20))
        else:
            self.ieee80211(frame, lambda new: done(data[:length] + new), padded=bool(flags & 0x20))

    def mpls(self, data: bytes, wrap: Wrap) -> None:
        """MPLS: labels (numbers) down to the bottom of the stack, then IP by
        its version nibble, or an Ethernet pseudowire after its zero control word."""
        pos = 0
        while pos + 4 <= len(data) and not data[pos + 2] & 1:
            pos += 4
        pos += 4
        payload = data[pos:]
        if pos > len(data) or not payload:
            return wrap(self.unread(data, "MPLS label stack without its bottom"))
        if payload[0] >> 4 in (4, 6):
            self.ip(payload, lambda inner: wrap(data[:pos] + inner))
        elif payload[0] >> 4 == 0 and len(payload) >= 18:
            self.ethernet(payload[4:], lambda inner: wrap(data[: pos + 4] + inner))
        else:
            wrap(data[:pos] + self.unread(payload, "MPLS payload that is neither IP nor an Ethernet pseudowire"))

    # -- LAN discovery protocols ----------------------------------------------

    def lldp(self, data: bytes) -> bytes:
        """LLDP TLVs (7-bit type, 9-bit length) up to the End TLV; what follows it is padding."""
        out, pos = [], 0
        while pos + 2 <= len(data):
            header = struct.unpack_from("!H", data, pos)[0]
            kind, length = header >> 9, header & 0x1FF
            value = data[pos + 2 : pos + 2 + length]
            pos += 2 + length
            if kind == 0:
                out.append(struct.pack("!H", header) + self.unread(value, "bytes in the LLDP End TLV"))
                break
            new = self._lldp_value(kind, value)
            if len(new) > 0x1FF:
                new = self.unread(value, "LLDP TLV too long once rewritten")
            out.append(struct.pack("!H", (kind << 9) | (length + len(new) - len(value))) + new)
        return b"".join(out) + bytes(max(0, len(data) - pos))

    def _lldp_value(self, kind: int, value: bytes) -> bytes:
        if kind in LLDP_NUMBERS:
            return value
        if kind in LLDP_ID_MAC and value:
            subtype, identifier = value[0], value[1:]
            if subtype == LLDP_ID_MAC[kind] and len(identifier) == 6:
                return value[:1] + self._mac(identifier)
            if subtype == LLDP_ID_ADDRESS[kind]:
                return value[:1] + self._family_address(identifier)
            if kind == 2 and subtype == LLDP_PORT_CIRCUIT_ID:
                return value[:1] + self.unread(identifier, "LLDP port id (agent circuit id)")
            return value[:1] + self.text.text(identifier)  # a component, alias or interface name
        if kind in LLDP_TEXT:
            return self.text.text(value)
        if kind == LLDP_SYSTEM_NAME:
            return self._host_name(value)
        if kind == LLDP_MANAGEMENT_ADDRESS and value and 2 <= value[0] <= len(value) - 1:
            end = 1 + value[0]  # the address string: family and address
            return value[:1] + self._family_address(value[1:end]) + value[end:]  # then interface number and OID
        if kind == LLDP_ORGANISATION and len(value) >= 4:
            if (value[:3], value[3]) in LLDP_ORGANISATION_NUMBERS:
                return value
            return value[:4] + self.unread(value[4:], f"LLDP organisation-specific TLV {value[:3].hex(':')}/{value[3]}")
        return self.unread(value, f"LLDP TLV type {kind}")

    def _family_address(self, data: bytes) -> bytes:
        """An IANA address family number (1 byte) and the address: IPv4, IPv6 or a MAC."""
        size = ADDRESS_FAMILY_LENGTHS.get(data[0]) if data else None
        if size is None or len(data) != 1 + size:
            return self.unread(data, "address of an unknown family")
        address = data[1:]
        return data[:1] + (self._mac(address) if size == 6 else self.addresses.replace_packed(address))

    def _host_name(self, value: bytes) -> bytes:
        """A machine's name in a length-delimited field (its length may change)."""
        if not self.options.domains or not value:
            return value
        return self.text.host_name(value.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def cdp(self, pdu: bytes) -> bytes:
        """CDP: version, TTL, checksum, then TLVs (type, length with its header)."""
        if len(pdu) < 4:
            return self.unread(pdu, "CDP header too short")
        out, pos = [pdu[:2], b"\0\0"], 4
        while pos + 4 <= len(pdu):
            kind, length = struct.unpack_from("!HH", pdu, pos)
            if length < 4:
                break
            value = pdu[pos + 4 : pos + length]
            new = self._cdp_value(kind, value)
            out.append(struct.pack("!HH", kind, length + len(new) - len(value)) + new)
            pos += length
        body = b"".join(out) + self.unread(pdu[pos:], "bytes after the CDP TLVs")
        return body[:2] + struct.pack("!H", cdp_checksum(body)) + body[4:]

    def _cdp_value(self, kind: int, value: bytes) -> bytes:
        if kind in CDP_NUMBERS:
            return value
        if kind in CDP_HOST_NAMES:
            return self._host_name(value)
        if kind in CDP_TEXT:
            return self.text.text(value)
        if kind in CDP_ADDRESSES:
            return self._cdp_addresses(value)
        return self.unread(value, f"CDP TLV type 0x{kind:04x}")

    def _cdp_addresses(self, value: bytes) -> bytes:
        """A count, then per address: protocol type, protocol length, protocol, address length, address."""
        out, pos = bytearray(value), 4
        for _ in range(struct.unpack_from("!I", value)[0] if len(value) >= 4 else 0):
            if pos + 2 > len(value):
                break
            at = pos + 2 + value[pos + 1]
            if at + 2 > len(value):
                break
            size = struct.unpack_from("!H", value, at)[0]
            address = value[at + 2 : at + 2 + size]
            if size in (4, 16) and len(address) == size:
                out[at + 2 : at + 2 + size] = self.addresses.replace_packed(address)
            else:
                out[at + 2 : at + 2 + size] = self.unread(address, "CDP address of another protocol")
            pos = at + 2 + size
        return bytes(out[:pos]) + self.unread(value[pos:], "bytes after the CDP addresses")

    def stp(self, bpdu: bytes) -> bytes:
        """A spanning-tree BPDU: the root and bridge identifiers are a 2-byte
        priority and a MAC; the rest are numbers. MSTP's extension (a region
        name, more bridge ids) is not read."""
        if len(bpdu) >= 35 and bpdu[3] in (0x00, 0x02):  # configuration and RST BPDUs
            out = bytearray(bpdu[:36])
            out[7:13], out[19:25] = self._mac(bpdu[7:13]), self._mac(bpdu[19:25])
            return bytes(out) + self.unread(bpdu[36:], "MSTP extension of a BPDU")
        if bpdu[3:4] == b"\x80":  # topology change notification: nothing else in it
            return bpdu[:4] + self.unread(bpdu[4:], "bytes after a topology change BPDU")
        return self.unread(bpdu, "spanning-tree BPDU of another kind")

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
        new = rewrite(data)
        return self._sweep(new) if kind in SWEPT_KINDS else new

    def _sweep(self, data: bytes) -> bytes:
        """The last, generic pass over binary payloads (DHCP, LLDP, STUN, ...):
        an address or MAC the maps already know, still spelled in binary where
        the protocol's own rewriting did not look, becomes its replacement. Same
        length, so nothing shifts; the layers outside fix their checksums."""
        for original, new in self.addresses.map.replaced_packed() + self.macs.replaced():
            if original in data:
                data = data.replace(original, new)
        return data

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
        elif protocol == 132 and len(segment) >= 12:
            wrap(self.sctp(endpoints, segment))
        elif protocol == 2 and len(segment) >= 8:
            wrap(self.igmp(endpoints, segment))
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
        if GTPU_PORT in (sport, dport) and len(payload) >= 8 and payload[0] >> 4 == 3:  # GTPv1, PT 1
            return self.gtp_u(payload, build)
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
        if sport in DHCPV6_PORTS and dport in DHCPV6_PORTS:
            return self.read("dhcp", payload, self.dhcpv6)
        if payload.startswith(b"HEP3"):
            return self.read("sip", payload, self.hep3)
        # Before the RTP test: these may start with RTP's version bits.
        if is_stun(payload):
            return self.read("other", payload, self.stun)
        if NETBIOS_NAME_PORT in (sport, dport):
            return self.read("other", payload, self.nbns)
        if sport == NETBIOS_DATAGRAM_PORT and dport == NETBIOS_DATAGRAM_PORT:
            return self.read("other", payload, self.netbios_datagram)
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
        if is_stun(payload):
            return self.read("other", payload, self.stun)
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
        rewritten: list[bytes] = []
        if kind in errors and protocol == 1 and len(body) >= 20 and body[0] >> 4 == 4:
            self.read("icmp", body, lambda quote: self.ipv4(quote, rewritten.append, quoted=True))
        elif kind in errors and protocol == 58 and len(body) >= 40 and body[0] >> 4 == 6:
            self.read("icmp", body, lambda quote: self.ipv6(quote, rewritten.append, quoted=True))
        elif protocol == 58 and (kind in ND_OPTIONS_AT or kind in MLD_QUERY_REPORT_DONE or kind == MLDV2_REPORT):
            rewritten.append(self.read("icmp", body, lambda data: self.neighbour_discovery(kind, data)))
        else:
            self.handling.signalling.update(self._in_play())
        body = rewritten[0] if rewritten else self.unread(body, f"ICMP type {kind} data")
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
            self.ppp(payload, build, " in GRE")
        else:
            build(self.unread(payload, f"GRE protocol 0x{protocol:04x}"))

    # -- tunnels ----------------------------------------------------------------

    def gtp_u(self, message: bytes, wrap: Wrap) -> None:
        """GTP-U (TS 29.281): a T-PDU is an IP packet after the 8-byte header,
        the optional sequence/N-PDU/next-type word (when E, S or PN is set) and
        the chain of extension headers (4-octet units; the last byte names the
        next). The length field counts everything after the first 8 bytes."""
        flags, kind, length = message[0], message[1], struct.unpack_from("!H", message, 2)[0]
        header = 12 if flags & 0x07 else 8
        next_type = message[11] if flags & 0x04 and len(message) >= 12 else 0
        while next_type and header < len(message) and message[header]:
            header += 4 * message[header]
            next_type = message[header - 1] if header <= len(message) else 0
        if kind != GTPU_T_PDU:
            return wrap(message[:8] + self.unread(message[8:], f"GTP-U message type {kind}"))
        if next_type or header > min(len(message), 8 + length):
            return wrap(message[:8] + self.unread(message[8:], "damaged GTP-U header"))
        inner, trailer = message[header : 8 + length], message[8 + length :]
        trailer = self.unread(trailer, "bytes after the GTP-U message")

        def build(new: bytes) -> None:
            head = bytearray(message[:header])
            struct.pack_into("!H", head, 2, length + len(new) - len(inner))
            wrap(bytes(head) + new + trailer)

        self.ip(inner, build)

    def sctp(self, endpoints: Endpoints, packet: bytes) -> bytes:
        """SCTP (RFC 9260): the common header, then chunks (type, flags,
        length without the padding to 4 bytes); the CRC32c covers the packet."""
        out, pos = [packet[:12]], 12
        while pos + 4 <= len(packet):
            kind, flags, length = struct.unpack_from("!BBH", packet, pos)
            if length < 4:
                break
            value = packet[pos + 4 : pos + length]
            new = self._sctp_chunk(endpoints, kind, flags, value)
            out.append(struct.pack("!BBH", kind, flags, length + len(new) - len(value)) + new)
            padded = (length + 3) & ~3
            if pos + padded <= len(packet):
                out.append(bytes(-len(new) % 4))
            pos += padded
        new_packet = b"".join(out) + self.unread(packet[pos:], "bytes after the SCTP chunks")
        if not endpoints.complete:
            return new_packet
        return new_packet[:8] + sctp_checksum(new_packet) + new_packet[12:]

    def _sctp_chunk(self, endpoints: Endpoints, kind: int, flags: int, value: bytes) -> bytes:
        if kind == SCTP_DATA and len(value) >= 12:
            data = value[12:]  # after TSN, stream id, stream sequence number, payload protocol id
            if flags & 3 != 3 and struct.unpack_from("!I", value, 8)[0] == 0:
                # A message over several chunks (SIP's payload protocol is 0): the
                # first piece is rewritten as the start of a SIP message, whose
                # Content-Length follows what changed in it, the rest as its text.
                # A value cut by a chunk boundary is left to the verification.
                rewrite = self.text.sip if flags & 2 and looks_like_sip(data) else self.text.text
                return value[:12] + self.read("sip", data, rewrite)
            if looks_like_sip(data):
                return value[:12] + self.read("sip", data, self.text.sip)
            return value[:12] + self.unread(data, f"SCTP DATA of payload protocol {struct.unpack_from('!I', value, 8)[0]}")
        if kind in (SCTP_INIT, SCTP_INIT_ACK) and len(value) >= 16:
            # Initiate tag, window, stream counts, initial TSN; then parameters.
            return value[:16] + self.read("sctp-control", value[16:], lambda params: self._sctp_parameters(endpoints, params))
        if kind in (SCTP_HEARTBEAT, SCTP_HEARTBEAT_ACK):
            return self.read("sctp-control", value, lambda params: self._sctp_parameters(endpoints, params))
        if kind in SCTP_NUMBER_CHUNKS or (kind in (SCTP_ABORT, SCTP_ERROR) and not value):
            return self.read("sctp-control", value, bytes)
        if kind == SCTP_COOKIE_ECHO:
            return self.unread(value, SCTP_COOKIE_UNREAD)
        return self.unread(value, f"SCTP chunk type {kind}")

    def _sctp_parameters(self, endpoints: Endpoints, data: bytes) -> bytes:
        out, pos = [], 0
        while pos + 4 <= len(data):
            kind, length = struct.unpack_from("!HH", data, pos)
            if length < 4:
                break
            value = data[pos + 4 : pos + length]
            if kind in (SCTP_IPV4_ADDRESS, SCTP_IPV6_ADDRESS) and len(value) in (4, 16):
                new = self.addresses.replace_packed(value)
            elif kind == SCTP_HEARTBEAT_INFO:
                new = self._heartbeat_info(endpoints, value)
            elif kind in SCTP_NUMBER_PARAMETERS:
                new = value
            elif kind == SCTP_STATE_COOKIE:
                new = self.unread(value, SCTP_COOKIE_UNREAD)
            else:
                new = self.unread(value, f"SCTP parameter 0x{kind:04x}")
            padded = (length + 3) & ~3
            out.append(struct.pack("!HH", kind, length + len(new) - len(value)) + new)
            if pos + padded <= len(data):
                out.append(bytes(-len(new) % 4))
            pos += padded
        return b"".join(out) + self.unread(data[pos:], "bytes after the SCTP parameters")

    def _heartbeat_info(self, endpoints: Endpoints, info: bytes) -> bytes:
        """Sender-specific, echoed back as it was: Linux puts the peer's
        sockaddr in it, so the association's own addresses are replaced
        wherever they stand, and the text rules apply to the rest."""
        for original, new in ((endpoints.src, endpoints.new_src), (endpoints.dst, endpoints.new_dst)):
            info = info.replace(original, new)
        return self.text.text(info)

    # -- LAN payloads -----------------------------------------------------------

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
            elif code == DHCP_CLIENT_FQDN and length >= 3 and value[0] & 0x04:
                value = value[:3] + self._dns_names(value[3:])  # flags, two rcodes, the name in DNS wire format (E)
            out[value_start : value_start + len(value)] = value
            pos = value_start + length
        # Names learnt elsewhere (client FQDN option): same-length replacements only.
        return self.text.replace_known_values(bytes(out).decode("latin-1")).encode("latin-1")

    def neighbour_discovery(self, kind: int, body: bytes) -> bytes:
        """ICMPv6 after its first 8 bytes: MLD groups and sources, or ND
        target addresses (NS, NA, Redirect) and options."""
        if kind in MLD_QUERY_REPORT_DONE:
            return self._group_query(body, 16)
        if kind == MLDV2_REPORT:
            return self._group_records(body, 16)
        start = ND_OPTIONS_AT[kind]
        if len(body) < start:
            return self.unread(body, f"ICMPv6 type {kind} cut short")
        # RS and RA have none; NS and NA a target; Redirect a target and a destination.
        addresses = self._address_list(body[:start], 16) if kind >= 135 else body[:start]
        return addresses + self._nd_options(body[start:])

    def _nd_options(self, data: bytes) -> bytes:
        """ND options: type, length in 8-byte units (with these 2 bytes), value."""
        out, pos = [], 0
        while pos + 2 <= len(data) and data[pos + 1]:
            kind, end = data[pos], pos + 8 * data[pos + 1]
            value = data[pos + 2 : end]
            if kind in (ND_SOURCE_LINK, ND_TARGET_LINK) and len(value) == 6:
                value = self._mac(value)
            elif kind == ND_PREFIX and len(value) == 30:  # length, flags, lifetimes, reserved, prefix
                value = value[:14] + self._prefix(value[14:], value[0])
            elif kind == ND_ROUTE and len(value) >= 6:  # length, flags, lifetime, 0, 8 or 16 prefix bytes
                value = value[:6] + self._prefix(value[6:].ljust(16, b"\0"), value[0])[: len(value) - 6]
            elif kind == ND_RDNSS and len(value) >= 6:  # reserved, lifetime, addresses
                value = value[:6] + self._address_list(value[6:], 16)
            elif kind == ND_DNSSL and len(value) >= 6:  # reserved, lifetime, names, zero padding
                value = value[:6] + self._dns_names(value[6:])
            elif kind not in ND_NUMBER_OPTIONS:
                value = self.unread(value, f"neighbour discovery option {kind}")
            out.append(data[pos : pos + 2] + value)
            pos = end
        return b"".join(out) + self.unread(data[pos:], "bytes after the neighbour discovery options")

    def _group_query(self, body: bytes, size: int) -> bytes:
        """An MLD or IGMP message's group; in a version 2/3 query then flags,
        QQIC, a source count and the sources."""
        if len(body) < size:
            return self.unread(body, "multicast group message cut short")
        group = self.addresses.replace_packed(body[:size])
        if len(body) < size + 4:
            return group + self.unread(body[size:], "bytes after the multicast group")
        end = size + 4 + size * struct.unpack_from("!H", body, size + 2)[0]
        return (group + body[size : size + 4] + self._address_list(body[size + 4 : end], size)
                + self.unread(body[end:], "bytes after the multicast sources"))

    def _group_records(self, body: bytes, size: int) -> bytes:
        """MLDv2 and IGMPv3 report records: type, auxiliary data length
        (words), source count, group, sources, auxiliary data."""
        out, pos = [], 0
        while pos + 4 + size <= len(body):
            auxiliary, count = body[pos + 1], struct.unpack_from("!H", body, pos + 2)[0]
            end = pos + 4 + size * (1 + count)
            out += [body[pos : pos + 4], self._address_list(body[pos + 4 : end], size),
                    self.unread(body[end : end + 4 * auxiliary], "multicast record auxiliary data")]
            pos = end + 4 * auxiliary
        return b"".join(out) + self.unread(body[pos:], "bytes after the multicast records")

    def igmp(self, endpoints: Endpoints, message: bytes) -> bytes:
        """IGMP (RFC 3376): groups and sources as in MLD; the checksum covers the message."""
        kind = message[0]
        if kind == IGMPV3_REPORT:
            body = self.read("other", message[4:], lambda data: data[:4] + self._group_records(data[4:], 4))
        elif kind in IGMP_GROUP_MESSAGES:
            body = self.read("other", message[4:], lambda data: self._group_query(data, 4))
        else:
            body = self.unread(message[4:], f"IGMP type 0x{kind:02x}")
        header = bytearray(message[:4])
        if endpoints.complete:
            header[2:4] = b"\0\0"
            struct.pack_into("!H", header, 2, internet_checksum(bytes(header) + body))
        return bytes(header) + body

    def _prefix(self, prefix: bytes, length: int) -> bytes:
        """A prefix's network bits mapped like any address's, its other bits (zero) kept."""
        bits = 8 * len(prefix)
        keep = ((1 << bits) - 1) >> min(length, bits)
        mapped = int.from_bytes(self.addresses.replace_packed(prefix), "big")
        original = int.from_bytes(prefix, "big")
        return ((mapped & ~keep) | (original & keep)).to_bytes(len(prefix), "big")

    def _address_list(self, data: bytes, size: int) -> bytes:
        whole = len(data) - len(data) % size
        addresses = b"".join(self.addresses.replace_packed(data[i : i + size]) for i in range(0, whole, size))
        return addresses + self.unread(data[whole:], "part of an address")

    def _dns_names(self, names: bytes) -> bytes:
        """Uncompressed DNS names one after the other, rewritten in place (same
        lengths). A root label is added for the walk: a partial name (DHCPv6
        client FQDN) ends without one."""
        message = names + b"\0"
        out = bytearray(message)
        pos = 0
        try:
            while pos < len(names):
                pos = self._dns_name(message, out, pos)
        except IndexError:
            return self.unread(names, "damaged DNS names")
        return bytes(out[: len(names)])

    def dhcpv6(self, message: bytes) -> bytes:
        """DHCPv6 (RFC 8415): type and transaction id, or a relay's hop count,
        link and peer addresses; then options."""
        if message[:1] and message[0] in DHCPV6_RELAY_MESSAGES:
            if len(message) < 34:
                return self.unread(message, "DHCPv6 relay message cut short")
            return message[:2] + self._address_list(message[2:34], 16) + self._dhcpv6_options(message[34:])
        if len(message) < 4:
            return self.unread(message, "DHCPv6 message cut short")
        return message[:4] + self._dhcpv6_options(message[4:])

    def _dhcpv6_options(self, data: bytes) -> bytes:
        out, pos = [], 0
        while pos + 4 <= len(data):
            code, length = struct.unpack_from("!HH", data, pos)
            value = data[pos + 4 : pos + 4 + length]
            new = self._dhcpv6_option(code, value)
            out.append(struct.pack("!HH", code, length + len(new) - len(value)) + new)
            pos += 4 + length
        return b"".join(out) + self.unread(data[pos:], "bytes after the DHCPv6 options")

    def _dhcpv6_option(self, code: int, value: bytes) -> bytes:
        if code in DHCPV6_NUMBERS:
            return value
        if code in (DHCPV6_CLIENT_ID, DHCPV6_SERVER_ID):
            return self._duid(value)
        if code in (DHCPV6_IA_NA, DHCPV6_IA_PD) and len(value) >= 12:  # IAID, T1, T2, options
            return value[:12] + self._dhcpv6_options(value[12:])
        if code == DHCPV6_IA_TA and len(value) >= 4:  # IAID, options
            return value[:4] + self._dhcpv6_options(value[4:])
        if code == DHCPV6_IA_ADDRESS and len(value) >= 24:  # address, lifetimes, options
            return self.addresses.replace_packed(value[:16]) + value[16:24] + self._dhcpv6_options(value[24:])
        if code == DHCPV6_IA_PREFIX and len(value) >= 25:  # lifetimes, prefix length, prefix, options
            return value[:9] + self._prefix(value[9:25], value[8]) + self._dhcpv6_options(value[25:])
        if code == DHCPV6_RELAY_MESSAGE:
            return self.dhcpv6(value)
        if code == DHCPV6_STATUS and len(value) >= 2:  # status code, UTF-8 message
            return value[:2] + self.text.text(value[2:])
        if code in DHCPV6_ADDRESS_LISTS:
            return self._address_list(value, 16)
        if code in DHCPV6_NAME_LISTS:
            return self._dns_names(value)
        if code == DHCPV6_FQDN and value:  # flags, name
            return value[:1] + self._dns_names(value[1:])
        return self.unread(value, f"DHCPv6 option {code}")

    def _duid(self, duid: bytes) -> bytes:
        """DUID-LLT (type, hardware type, time, link-layer address) and DUID-LL
        (type, hardware type, address) name a MAC; other DUIDs are unread."""
        kind = struct.unpack_from("!H", duid)[0] if len(duid) >= 2 else None
        at = 8 if kind == DUID_LLT else 4 if kind == DUID_LL else None
        if at is not None and len(duid) == at + 6 and struct.unpack_from("!H", duid, 2)[0] == HARDWARE_ETHERNET:
            return duid[:at] + self._mac(duid[at:])
        return duid[:2] + self.unread(duid[2:], f"DUID of type {kind}")

    def stun(self, data: bytes) -> bytes:
        """STUN messages (several over a TCP stream): addresses mapped, XORed
        ones un-XORed first and XORed again, text kept to its length."""
        out, pos = [], 0
        while is_stun(data[pos:]):
            end = pos + 20 + struct.unpack_from("!H", data, pos + 2)[0]
            out.append(self._stun_message(data[pos:end]))
            pos = end
        return b"".join(out) + self.unread(data[pos:], "bytes after the STUN messages")

    def _stun_message(self, message: bytes) -> bytes:
        out = bytearray(message)
        pos = 20
        while pos + 4 <= len(message):
            kind, length = struct.unpack_from("!HH", message, pos)
            start, end = pos + 4, pos + 4 + length
            if kind == STUN_FINGERPRINT and length == 4:
                out[start:end] = stun_fingerprint(bytes(out[:pos]))
            else:
                out[start:end] = self._stun_attribute(kind, message[start:end], message[4:20])
            pos = end + -length % 4
            out[end:pos] = bytes(len(out[end:pos]))  # padding: anything may be in it, nothing reads it
        return bytes(out)

    def _stun_attribute(self, kind: int, value: bytes, cookie_and_id: bytes) -> bytes:
        if kind in STUN_NUMBERS:
            return value
        if (kind in STUN_ADDRESSES or kind in STUN_XOR_ADDRESSES) and (value[1:2], len(value)) in STUN_FAMILIES:
            address = value[4:]  # after a reserved byte, the family and the port
            if kind in STUN_XOR_ADDRESSES:
                # XORed with the cookie, and for IPv6 with the transaction id after it.
                mask = cookie_and_id[: len(address)]
                plain = bytes(a ^ m for a, m in zip(address, mask, strict=True))
                return value[:4] + bytes(a ^ m for a, m in zip(self.addresses.replace_packed(plain), mask, strict=True))
            return value[:4] + self.addresses.replace_packed(address)
        if kind in STUN_TEXT:
            return self._same_length_text(value)
        if kind == STUN_ERROR_CODE and len(value) >= 4:  # class and number, then the reason
            return value[:4] + self._same_length_text(value[4:])
        return self.unread(value, f"STUN attribute 0x{kind:04x}")

    def _same_length_text(self, value: bytes) -> bytes:
        """Values learnt elsewhere replaced in text that cannot change its length."""
        text = value.decode("utf-8", "surrogateescape")
        new = self.text.replace_known_values(text).encode("utf-8", "surrogateescape")
        return new if len(new) == len(value) else self.unread(value, "text that could not keep its length")

    def nbns(self, message: bytes) -> bytes:
        """NetBIOS name service (RFC 1002): DNS's layout with NetBIOS names;
        NB records hold addresses, node status the names and the MAC."""
        if len(message) < 12:
            return self.unread(message, "NetBIOS name service message cut short")
        out = bytearray(message)
        counts = struct.unpack_from("!HHHH", message, 4)
        pos = 12
        try:
            for _ in range(counts[0]):
                pos = self._netbios_name(message, out, pos) + 4
            for _ in range(sum(counts[1:])):
                at = self._netbios_name(message, out, pos)
                rtype, _, _, rdlength = struct.unpack_from("!HHIH", message, at)
                rdata = message[at + 10 : at + 10 + rdlength]
                out[at + 10 : at + 10 + len(rdata)] = self._nbns_rdata(rtype, rdata)
                pos = at + 10 + rdlength
        except (IndexError, struct.error):
            pass  # what follows the last whole record is unread below
        return bytes(out[:pos]) + self.unread(message[pos:], "bytes after the NetBIOS name service records")

    def _nbns_rdata(self, rtype: int, rdata: bytes) -> bytes:
        if rtype == NBNS_NB:  # per name: 2 bytes of flags, an IPv4 address
            whole = len(rdata) - len(rdata) % 6
            entries = [rdata[i : i + 2] + self.addresses.replace_packed(rdata[i + 2 : i + 6]) for i in range(0, whole, 6)]
            return b"".join(entries) + self.unread(rdata[whole:], "part of an NB record")
        # Node status: a count, per name 16 bytes and 2 of flags, then statistics (the MAC first).
        end = 1 + 18 * rdata[0] if rdata else 0
        if rtype == NBNS_NBSTAT and len(rdata) >= end + 6:
            names = [self._netbios_plain_name(rdata[i : i + 16]) + rdata[i + 16 : i + 18] for i in range(1, end, 18)]
            return rdata[:1] + b"".join(names) + self._mac(rdata[end : end + 6]) + rdata[end + 6 :]
        return self.unread(rdata, f"NetBIOS name service record type 0x{rtype:04x}")

    def _netbios_name(self, message: bytes, out: bytearray, pos: int) -> int:
        """The name at `pos`, rewritten in place: its first label the 32-letter
        encoding of a 16-byte NetBIOS name, the labels after it (the scope) a
        DNS name. Returns the position after the name."""
        if message[pos] & 0xC0 == 0xC0:
            return pos + 2  # a pointer: that name is rewritten where it stands
        if message[pos] == 32:
            name = netbios_decode(message[pos + 1 : pos + 33])
            if name is not None:
                out[pos + 1 : pos + 33] = netbios_encode(self._netbios_plain_name(name))
                pos += 33
        return self._dns_name(message, out, pos)

    def _netbios_plain_name(self, name: bytes) -> bytes:
        """15 name bytes (space padded) and the service suffix byte: the name
        becomes a host-name pseudonym of the same 15 bytes, the suffix stays."""
        if not self.options.domains or name in NETBIOS_WELL_KNOWN or len(name) != 16:
            return name
        text = name[:15].rstrip(b" ").decode("latin-1")
        replaced = self.text.host_name(text).encode("latin-1", "replace")
        return replaced[:15].ljust(15, b" ") + name[15:]

    def netbios_datagram(self, message: bytes) -> bytes:
        """NetBIOS datagram service (RFC 1002 4.4): type, flags, id, source
        address and port; the names; the SMB it carries is not read."""
        if len(message) < 11 or message[0] not in NETBIOS_DATAGRAM_TYPES:
            return self.unread(message, "NetBIOS datagram of an unknown type")
        kind = message[0]
        out = bytearray(message)
        out[4:8] = self.addresses.replace_packed(message[4:8])
        try:
            if kind in NETBIOS_DIRECT_DATAGRAMS:  # then length and offset, source and destination names
                pos = self._netbios_name(message, out, self._netbios_name(message, out, 14))
            elif kind in NETBIOS_DATAGRAM_QUERIES:  # then the destination name
                pos = self._netbios_name(message, out, 10)
            else:
                pos = 11  # an error: its code
        except IndexError:
            pos = 10
        return bytes(out[:pos]) + self.unread(message[pos:], f"NetBIOS datagram payload (type 0x{kind:02x})")

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
                elif rtype == DNS_TXT:
                    out[pos:rdata_end] = self._txt_strings(message[pos:rdata_end])
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
            replacement = self.pseudonyms.domain(name)
            if replacement != name:  # service names (_sip._udp.local) are kept whole and name nobody
                self.text.remember("domains", name.lower())
            replaced = replacement.split(".")
            for index, start in positions:
                out[start : start + len(labels[index])] = replaced[index].encode("latin-1")
        return end

    def _txt_strings(self, rdata: bytes) -> bytes:
        """TXT strings (DNS-SD keys like `aor=sip:alice@example.test`): values
        learnt elsewhere replaced, each string keeping its length byte."""
        out, pos = bytearray(rdata), 0
        while pos < len(rdata):
            end = pos + 1 + rdata[pos]
            out[pos + 1 : end] = self._same_length_text(rdata[pos + 1 : end])
            pos = end
        return bytes(out)
