"""The verifier's own knowledge of what a capture reveals, and the search for it.

Why a module of its own: the rewriter learns the values it replaces while it
rewrites, so a check that asks it what to look for, or walks the copy with its
code, can only find what it already handled. `IdentifierCollector` decodes the
ORIGINAL capture with a compact header walk of its own (link layers, tunnels,
IP, transports, ICMP quotes), the payload fields that carry addresses, MACs
and names (STUN, DHCP, DHCPv6, DNS/mDNS/LLMNR, NetBIOS, SNMP, neighbour
discovery, LLDP, CDP, GTPv2, Diameter, HEP3, TLS SNI, SIP and SDP) and a text
scan of every packet's bytes. `LeakSearch` then reads the WRITTEN copy as a
capture of its own and looks for every identifier in every form it can take:
text (glued to other characters or not), packed binary, STUN XOR, SNMP OID
arcs, reverse DNS names, EUI-64 interface ids, DNS wire form, NetBIOS
encoding, and inside SIP messages reassembled across segments and fragments.
Nothing here imports the rewriter, its text rules or its address map: a
mistake shared with them would hide itself.
"""

from __future__ import annotations

import ipaddress
import re
import struct
import sys
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..capture.pcapfile import CaptureError
from ..capture.scan import (
    COLLECT_DECODE,
    COLLECT_DRAIN,
    DAMAGED,
    FORMAT_PCAP,
    FORMAT_PCAPNG,
    LEAK_ALL,
    LEAK_COLLECT,
    LEAK_COUNTS_OFFSET,
    LEAK_FULL,
    LEAK_HEX,
    LEAK_HIT,
    LEAK_KEY,
    LEAK_KEYS,
    LEAK_KEY_BYTES,
    LEAK_MAC,
    LEAK_MAX_KEYS,
    LEAK_RECORD,
    LEAK_STATE,
    LEAK_TEXT,
    LEAK_V4,
    LEAK_V6,
    MAX_INTERFACES,
    NEED_MORE,
    Kernel,
    KernelReader,
    leak_state,
)
from ..engine import CaptureAnalysis
from ..model import NameAddr, SipMessage
from ..protocols.sip import (
    looks_like_sip,
    parse_digest,
    parse_message,
    parse_name_addr,
    split_top_level,
    uri_parts,
)
from ..protocols.tls import client_hello_sni

__all__ = ["IdentifierCollector", "Identifiers", "Leak", "LeakSearch"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# The product keeps these verbatim: they identify no host.
EXEMPT_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("0.0.0.0", "255.255.255.255", "127.0.0.1", "::", "::1"))
_EXEMPT_MACS = frozenset((bytes(6), b"\xff" * 6))

# Values SIP, SDP, DNS and NetBIOS use as vocabulary: they identify nobody.
_NOBODY = frozenset((
    "anonymous", "unknown", "restricted", "unavailable", "private", "withheld", "invalid", "anonymous.invalid",
    "none", "null", "sip", "sips", "tel", "localhost", "localhost.localdomain", "localdomain", "local",
    "pcmu", "pcma", "g711", "g722", "g723", "g726", "g729", "gsm", "ilbc", "speex", "opus", "telephone-event",
    "amr", "amr-wb", "h263", "h264", "vp8", "t38", "g7221", "silk", "l16", "workgroup", "mshome", "__msbrowse__",
))
MIN_NAME = 3

_DAMAGE = (IndexError, ValueError, struct.error)
# Tunnels and ICMP quotes nest; deeper than this is a crafted loop, not traffic.
MAX_DEPTH = 8
_U16 = struct.Struct("!H").unpack_from
_U32 = struct.Struct("!I").unpack_from

STUN_COOKIE = b"\x21\x12\xa4\x42"
# MAPPED-ADDRESS, RFC 3489's SOURCE-, CHANGED- and REFLECTED-FROM, ALTERNATE-SERVER, RESPONSE-ORIGIN, OTHER-ADDRESS
_STUN_PLAIN = frozenset((0x0001, 0x0004, 0x0005, 0x000B, 0x8023, 0x802B, 0x802C))
_STUN_XOR = frozenset((0x0020, 0x8020, 0x0012, 0x0016))  # XOR-MAPPED (and its pre-RFC code), XOR-PEER, XOR-RELAYED
# RFC 3489 ("classic") STUN has no cookie; its requests and responses are known by type and exact length.
_CLASSIC_STUN_TYPES = frozenset((0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112))

_VLAN_TAGS = frozenset((0x8100, 0x88A8, 0x9100))
_IPV6_EXTENSIONS = frozenset((0, 43, 60, 44, 51, 139, 140))
_DHCP_MAGIC = b"\x63\x82\x53\x63"
# DHCP options whose value is a list of IPv4 addresses (RFC 2132 and successors), 150 = Cisco TFTP server.
_DHCP_ADDRESS_OPTIONS = frozenset((3, 4, 5, 6, 7, 8, 9, 10, 11, 28, 41, 42, 44, 45, 48, 49, 50, 54, 65, 68, 69,
                                   70, 71, 72, 73, 74, 75, 76, 118, 150))
_GTPV2_GROUPED = frozenset((93, 109, 180, 181, 195))  # Bearer Context, PDN Connection, overload/load control, remote UE
_DIAMETER_HOSTS = frozenset((264, 283, 293, 296))  # Origin-Host, Destination-Realm, Destination-Host, Origin-Realm

_SIP_IDENTITY_HEADERS = (
    "p-asserted-identity", "p-preferred-identity", "remote-party-id", "diversion", "referred-by", "refer-to",
    "p-called-party-id", "history-info", "reply-to", "route", "record-route", "path", "service-route",
    "p-associated-uri", "p-served-user",
)
_SDP_USER = re.compile(rb"(?m)^o=([^ \r\n]+) ")
# Where SIP starts in a packet whose link layer we cannot walk.
_SIP_START = re.compile(rb"[A-Z]{3,16} [^ \r\n]{1,512} SIP/2\.0\r?\n|SIP/2\.0 [1-6][0-9][0-9] ")
_CDP_PHONE = re.compile(r"SEP([0-9A-Fa-f]{12})")

_MAC_SEP = re.compile(rb"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}")
_MAC_DOT = re.compile(rb"[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){2}")
_MAC_SEP_RUN = re.compile(rb"[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5,}")
_MAC_DOT_RUN = re.compile(rb"[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){2,}")
_MAC_SEPARATORS = re.compile(rb"[:-]")
_DOTS = re.compile(rb"\.")
_COLON = re.compile(rb":[0-9A-Fa-f:.]")


def _marks(characters: bytes) -> bytes:
    table = bytearray(256)
    for c in characters:
        table[c] = 1
    return bytes(table)


# Text candidates are maximal runs of these characters, so that glued characters are seen with
# them. They are found by translating to 0/1 and bytes.find: a regex tried at every position of
# mostly binary captures costs ten times as much.
_HEX = b"0123456789abcdefABCDEF"
_V4_MARKS = _marks(b"0123456789.")
_V6_MARKS = _marks(_HEX + b":.")
_SEP_MARKS = _marks(_HEX + b":-")
_DOT_MARKS = _marks(_HEX + b".")
_HEX_MARKS = _marks(_HEX)


def _runs(data: bytes, table: bytes, minimum: int):
    """(start, end) of every maximal run of `table`'s characters at least `minimum` long."""
    marks = data.translate(table)
    needle = b"\x01" * minimum
    start = marks.find(needle)
    while start >= 0:  # the leftmost hit after a non-member is where its run starts
        end = marks.find(b"\x00", start)
        end = len(marks) if end < 0 else end
        yield start, end
        start = marks.find(needle, end)


def _v6_runs(data: bytes):
    """(start, end) of every maximal run of IPv6 text characters holding two colons at least."""
    marks = data.translate(_V6_MARKS)
    pos = 0
    while colon := _COLON.search(data, pos):
        start = marks.rfind(b"\x00", 0, colon.start()) + 1
        end = marks.find(b"\x00", colon.start())
        end = len(marks) if end < 0 else end
        if data.count(b":", start, end) >= 2:
            yield start, end
        pos = end


def _mac_exempt(mac: bytes) -> bool:
    return mac in _EXEMPT_MACS or bool(mac[0] & 1)  # the I/G bit: group addresses name no interface


def _mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def _text(raw: bytes) -> str:
    """Wire bytes as a name; surrogates keep invalid UTF-8 so the bytes can be searched for again."""
    return raw.decode("utf-8", "surrogateescape")


def _valid_octets(groups: list[bytes]) -> bool:
    return all(g.isdigit() and len(g) <= 3 and (g == b"0" or g[0] != 0x30) and int(g) <= 255 for g in groups)


def _reverse_address(name: str) -> Address | None:
    """The address a reverse DNS name (RFC 1035 3.5, RFC 3596 2.5) stands for."""
    if name.endswith(".in-addr.arpa"):
        parts = name[: -len(".in-addr.arpa")].split(".")
        if len(parts) == 4 and _valid_octets([p.encode() for p in parts]):
            return ipaddress.IPv4Address(".".join(reversed(parts)))
    elif name.endswith(".ip6.arpa"):
        nibbles = name[: -len(".ip6.arpa")].split(".")
        if len(nibbles) == 32 and all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
            return ipaddress.IPv6Address(bytes.fromhex("".join(reversed(nibbles))))
    return None


def _wire_name(data: bytes, pos: int) -> tuple[list[bytes], int]:
    """(labels, offset after the name) of a DNS-format name; compression pointers followed, loops refused."""
    labels: list[bytes] = []
    after = -1
    for _ in range(128):
        length = data[pos]
        if length == 0:
            return labels, (pos + 1 if after < 0 else after)
        if length >= 0xC0:
            if after < 0:
                after = pos + 2
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            continue
        if length > 63 or pos + 1 + length > len(data):
            raise ValueError("bad label")
        labels.append(data[pos + 1 : pos + 1 + length])
        pos += 1 + length
    raise ValueError("name loops")


def _netbios_name(label: bytes) -> str | None:
    """The name in a first-level encoded NetBIOS label (RFC 1001 14.1), without padding and suffix."""
    if len(label) != 32 or any(not 0x41 <= c <= 0x50 for c in label):
        return None
    raw = bytes(((label[i] - 0x41) << 4) | (label[i + 1] - 0x41) for i in range(0, 32, 2))
    return _text(raw[:15].rstrip(b" \x00")) or None


def _netbios_encoding(name: str) -> bytes:
    return bytes(c for b in name.upper().encode("utf-8", "surrogateescape") for c in (0x41 + (b >> 4), 0x41 + (b & 15)))


def _wire_form(name: str) -> bytes:
    """A name's DNS wire form without its last label: compression usually replaces the common suffix
    (".local", ".com") by a pointer, while the labels before it stay in the message as written."""
    labels = [label for label in name.rstrip(".").split(".") if label]
    if len(labels) > 1:
        labels = labels[:-1]
    encoded = [label.encode("utf-8", "surrogateescape")[:63] for label in labels]
    return b"".join(bytes([len(label)]) + label for label in encoded)


def _eui64(mac: bytes) -> bytes:
    """The modified EUI-64 interface id of a MAC (RFC 4291 appendix A)."""
    return bytes([mac[0] ^ 2]) + mac[1:3] + b"\xff\xfe" + mac[3:]


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, key))


@dataclass
class Identifiers:
    """What one capture reveals: values no shared copy of it may contain."""

    addresses: set = field(default_factory=set)  # ipaddress.IPv4Address / IPv6Address
    macs: set = field(default_factory=set)  # 6-byte bytes
    # "users", "display_names", "host_names" (domains included), "netbios_names", "call_ids",
    # "user_agents"; a caller drops the categories its user chose to keep.
    names: dict = field(default_factory=dict)

    def add_strings(self, strings: Iterable[str], category: str = "strings") -> None:
        """Values learned elsewhere (a list the user gave, the redactor's own): searched for bare."""
        self.names.setdefault(category, set()).update(s for s in strings if s)


@dataclass(frozen=True)
class Leak:
    frame: int | None  # the written record's frame number (1-based), None for file and section headers
    what: str  # "address 192.168.1.2 as text", "MAC 00:1a:2b:3c:4d:5e as binary", "display name 'Jöhn Dœ'"


def _accounts_nothing(*_args) -> None:
    """The collector's walk (LEAK_COLLECT) accounts no RTP: nothing is ever undecodable or raised."""
    raise RuntimeError("the scan kernel accounted a packet in the collector's walk")


class IdentifierCollector:
    """Learns every identifier in the ORIGINAL capture, by its own decoding.

    Addresses come from every header at any depth (per packet: nothing is
    reassembled for them) and from the payload fields typed as addresses;
    names come from SIP (as the analysis engine reassembles it, and per packet
    where the engine cannot walk the link layer), DNS, DHCP, NetBIOS, LLDP, CDP
    and TLS; dotted, IPv6 and MAC text anywhere in a packet is learned too.
    """

    def __init__(self, keep: Callable[[Address], bool] = lambda address: False) -> None:
        self._keep = keep
        # The kernel walks the records and takes the fast path's values (scan.c, LEAK_COLLECT); the
        # records it hands back are this class's to walk.
        self._kernel = Kernel()
        self._reader = KernelReader(self._kernel, self._handed_back, _accounts_nothing, _accounts_nothing)
        self._handed: list[tuple[int, bytes, bytes]] = []  # (reason, linktype, packet) since the last feed
        self._analysis = CaptureAnalysis("original")
        self._v4: set[bytes] = set()
        self._v6: set[bytes] = set()
        self._macs: set[bytes] = set()
        self._names: dict[str, set[str]] = {}
        self._links = {
            1: self._ethernet_frame, 0: self._null, 108: self._null, 113: self._linux_sll, 276: self._linux_sll2,
            239: self._nflog, 9: self._ppp_frame, 50: self._ppp_frame, 104: self._cisco_hdlc, 105: self._wifi_frame,
            127: self._radiotap, **{linktype: self._raw_ip for linktype in (101, 12, 14, 228, 229)},
        }
        self._udp_ports = {
            53: self._dns, 5353: self._dns, 5355: self._dns, 67: self._dhcp, 68: self._dhcp, 546: self._dhcpv6,
            547: self._dhcpv6, 137: self._nbns, 138: self._nbdgm, 161: self._snmp, 162: self._snmp,
            4789: self._vxlan, 2152: self._gtpu, 2123: self._gtpv2,
        }
        # Ports whose UDP payload a decoder reads whatever its first byte: never on the fast path.
        ports = bytearray(65536 // 8)
        for port in self._udp_ports:
            ports[port >> 3] |= 1 << (port & 7)
        call = self._kernel.call
        self._state = call["leak_address"]()
        self._kernel.instance.write(call["collect_ports_address"](), bytes(ports))
        self._kernel.instance.write(self._state, leak_state(LEAK_COLLECT, LEAK_V4 | LEAK_V6 | LEAK_MAC))

    def feed(self, data: bytes) -> None:
        """Original capture bytes, any chunk sizes (CaptureError when the file is no capture at all)."""
        self._reader.feed(data)
        self._analysis.feed(data)
        self._drain()
        handed, self._handed = self._handed, []
        for reason, linktype, packet in handed:
            if reason != COLLECT_DECODE:
                continue  # the fast path's values went to the kernel's tables
            decoder = self._links.get(linktype)
            try:
                if decoder is None:
                    self._sip_anywhere(packet)
                else:
                    decoder(packet)
            except _DAMAGE:
                pass  # a damaged packet gave what it had before the damage
        if handed:
            self._scan_text(b"\0".join(packet for _reason, _linktype, packet in handed))

    def _handed_back(self, records: list) -> None:
        """Records the kernel's walk did not take whole: why (leak.reason, given with its frame), or,
        for records the Python reader read itself, the kernel's fast-path test on their first bytes."""
        kernel = self._kernel
        reason, reason_frame = LEAK_STATE.unpack(kernel.instance.read(self._state, LEAK_STATE.size))[5:7]
        for frame, _time, linktype, packet in records:
            if frame != reason_frame:
                kernel.instance.write(kernel.scratch, packet[:64])
                reason = kernel.call["collect_scratch"](linktype, len(packet))
            if reason == COLLECT_DRAIN:
                self._drain()
            self._handed.append((reason, linktype, packet))

    def _drain(self) -> None:
        """The fast path's MACs and addresses out of the kernel's tables, and the text of its records
        that could hold some, scanned (the kernel's tables emptied)."""
        kernel = self._kernel
        call, instance = kernel.call, kernel.instance
        n_macs, n_v4, n_text = LEAK_STATE.unpack(instance.read(self._state, LEAK_STATE.size))[7:]
        if not (n_macs or n_v4 or n_text):
            return
        macs = instance.read(call["collect_macs_address"](), 8 * n_macs)
        self._macs.update(macs[i : i + 6] for i in range(0, len(macs), 8))
        v4 = instance.read(call["collect_v4_address"](), 4 * n_v4)
        self._v4.update(v4[i : i + 4] for i in range(0, len(v4), 4))
        if n_text:
            self._scan_text(instance.read(call["collect_text_address"](), n_text))
        call["collect_clear"]()

    def finish(self) -> Identifiers:
        """Everything learned (CaptureError for an empty file)."""
        self._reader.close()
        self._drain()
        result = self._analysis.finish_result()
        for message in result.sip_messages:
            # The engine unmasks WebSocket frames and joins segments: text hidden from the per-packet scan.
            self._sip(message)
            self._scan_text(message.raw)
        for connection in result.tls_connections:
            self._add_host(connection.sni)  # a ClientHello longer than a segment has it in the second
        addresses = set()
        for raw in self._v4 | self._v6:
            if len(raw) in (4, 16):
                address = ipaddress.ip_address(raw)
                if address not in EXEMPT_ADDRESSES and not self._keep(address):
                    addresses.add(address)
        macs = {mac for mac in self._macs if len(mac) == 6}
        # A SLAAC address carries its interface's MAC (RFC 4291 appendix A).
        macs.update(bytes([a.packed[8] ^ 2]) + a.packed[9:11] + a.packed[13:] for a in addresses
                    if a.version == 6 and a.packed[11:13] == b"\xff\xfe")
        return Identifiers(addresses=addresses, macs={m for m in macs if not _mac_exempt(m)},
                           names={category: set(values) for category, values in self._names.items()})

    # -- names ---------------------------------------------------------------

    def _add_name(self, category: str, value: str | None) -> None:
        value = (value or "").strip()
        word = value.lower()
        head, slash, rate = word.partition("/")
        if slash and rate.replace("/", "").isdigit():
            word = head  # a codec with its clock rate ("PCMA/8000", SIPp's display name) is vocabulary too
        if len(value) >= MIN_NAME and word not in _NOBODY:
            self._names.setdefault(category, set()).add(value)

    def _add_user(self, user: str | None) -> None:
        if not user:
            return
        user = user.split(";", 1)[0]  # user-part parameters (RFC 3966 in a sip: user) are not the name
        self._add_name("users", user)
        if "," in user:
            for part in user.split(","):
                self._add_name("users", part)

    def _add_host(self, host: str | None) -> None:
        name = (host or "").strip().strip("[]").rstrip(".")
        if len(name) < MIN_NAME or name.lower() in _NOBODY:
            return
        try:
            ipaddress.ip_address(name)
            return  # an address: learned as one from its text
        except ValueError:
            pass
        lower = name.lower()
        reverse = _reverse_address(lower)
        if reverse is not None:
            (self._v4 if reverse.version == 4 else self._v6).add(reverse.packed)
            return
        if ":" in name or not any(c.isalpha() for c in name):
            return  # a cut-off address ("192.168", "2001:db8"), not a name
        # Service labels and the mDNS/reverse suffixes are vocabulary; a name of nothing else names nobody.
        if any(label and not label.startswith("_") and label not in ("local", "arpa", "in-addr", "ip6")
               for label in lower.split(".")):
            self._names.setdefault("host_names", set()).add(name)

    def _sip(self, message: SipMessage) -> None:
        if message.request_uri:
            self._sip_uri(message.request_uri)
        for name_addr in (message.from_addr, message.to_addr, *message.contacts):
            if name_addr is not None:
                self._name_addr(name_addr)
        for header in _SIP_IDENTITY_HEADERS:
            for value in message.header_values(header):
                for item in split_top_level(value, ","):
                    if item.strip():
                        self._name_addr(parse_name_addr(item))
        for via in message.vias:
            self._add_host(via.host)
        if message.call_id:
            self._add_name("call_ids", message.call_id)
            if "@" in message.call_id:
                self._add_host(message.call_id.rpartition("@")[2])
        for header in ("user-agent", "server"):
            for value in message.header_values(header):
                self._add_name("user_agents", value)
        for header in ("authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate"):
            for value in message.header_values(header):
                params = parse_digest(value).params
                self._add_user(params.get("username"))
                if "." in params.get("realm", ""):
                    self._add_host(params["realm"])
        for match in _SDP_USER.finditer(message.body):
            self._add_user(_text(match.group(1)))

    def _name_addr(self, name_addr: NameAddr) -> None:
        self._add_name("display_names", name_addr.display_name)
        self._sip_uri(name_addr.uri)

    def _sip_uri(self, uri: str) -> None:
        if uri.strip().strip("<>").partition(":")[0].lower() not in ("sip", "sips", "tel"):
            return
        user, host, _port = uri_parts(uri)
        self._add_user(user)
        self._add_host(host)

    def _sip_anywhere(self, packet: bytes) -> None:
        for match in _SIP_START.finditer(packet):
            self._sip_message(packet[match.start() :])

    def _sip_payload(self, payload: bytes) -> None:
        if looks_like_sip(payload):
            self._sip_message(payload)

    def _sip_message(self, data: bytes) -> None:
        # Only whole header blocks: a segment or fragment cut inside a header would teach "192.168"
        # or "ali" as names. The engine reassembles what it can walk; its messages come in at finish.
        if b"\n\r\n" in data or b"\n\n" in data:
            self._sip(parse_message(data))

    # -- text anywhere -------------------------------------------------------

    def _scan_text(self, data: bytes) -> None:
        for start, end in _runs(data, _V4_MARKS, 7):
            groups = data[start:end].strip(b".").split(b".")
            if len(groups) != 4 or not _valid_octets(groups[1:3]):
                continue
            # Digits glued before or after (a Via branch "...fc8192.168.1.2"): the octet is the
            # longest valid tail of the first group and head of the last.
            first = next((groups[0][-n:] for n in (3, 2, 1) if _valid_octets([groups[0][-n:]])), None)
            last = next((groups[3][:n] for n in (3, 2, 1) if _valid_octets([groups[3][:n]])), None)
            if first and last:
                self._v4.add(bytes(int(g) for g in (first, groups[1], groups[2], last)))
        for start, end in _v6_runs(data):
            run = data[start:end].strip(b".")
            packed = _parse_ipv6(run) or _parse_ipv6(run.rstrip(b":")) or _parse_ipv6(run.lstrip(b":"))
            # Two groups at least ("::ba" in "Foo::Bar" names nothing), and in space that is handed
            # out: hex text is everywhere, and a segment starting "db8:1::2" is the tail of an address.
            if packed and sum(1 for g in run.split(b":") if g) >= 2 and _allocated(packed):
                self._v6.add(packed)
        # MAC text on its own (nothing glued): colon or dash notation, and Cisco's dotted one.
        for table, length, pattern in ((_SEP_MARKS, 17, _MAC_SEP), (_DOT_MARKS, 14, _MAC_DOT)):
            for start, end in _runs(data, table, length):
                if end - start == length and pattern.fullmatch(data, start, end):
                    self._macs.add(bytes.fromhex(re.sub(rb"[:.-]", b"", data[start:end]).decode()))

    # -- link layers ---------------------------------------------------------

    def _ethernet_frame(self, data: bytes) -> None:
        self._ethernet(data, 0, 0)

    def _ethernet(self, data: bytes, off: int, depth: int) -> None:
        self._macs.add(data[off : off + 6])
        self._macs.add(data[off + 6 : off + 12])
        ethertype = _U16(data, off + 12)[0]
        if ethertype > 1500:
            self._ethertype(ethertype, data, off + 14, depth)
        elif data[off + 14 : off + 17] == b"\xaa\xaa\x03":
            self._snap(data, off + 17, depth)

    def _snap(self, data: bytes, off: int, depth: int) -> None:
        oui, protocol = data[off : off + 3], _U16(data, off + 3)[0]
        if oui == b"\x00\x00\x0c" and protocol == 0x2000:
            self._cdp(data, off + 5)
        elif oui == b"\x00\x00\x00":
            self._ethertype(protocol, data, off + 5, depth)

    def _ethertype(self, ethertype: int, data: bytes, off: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        while ethertype in _VLAN_TAGS:
            ethertype, off = _U16(data, off + 2)[0], off + 4
        if ethertype in (0x0800, 0x86DD):
            self._ip(data, off, len(data), depth)
        elif ethertype in (0x0806, 0x8035):
            self._arp(data, off)
        elif ethertype in (0x8847, 0x8848):
            self._mpls(data, off, depth)
        elif ethertype == 0x8864:
            self._ppp(data, off + 6, depth)  # PPPoE session header, then the PPP protocol
        elif ethertype == 0x880B:
            self._ppp(data, off, depth)
        elif ethertype == 0x6558:
            self._ethernet(data, off, depth + 1)
        elif ethertype == 0x88CC:
            self._lldp(data, off)

    def _null(self, data: bytes) -> None:
        self._ip(data, 4, len(data), 0)  # the address family is host-ordered; the IP version says the rest

    def _raw_ip(self, data: bytes) -> None:
        self._ip(data, 0, len(data), 0)

    def _linux_sll(self, data: bytes) -> None:
        if _U16(data, 2)[0] == 1 and _U16(data, 4)[0] == 6:  # ARPHRD_ETHER, 6-byte address
            self._macs.add(data[6:12])
        self._ethertype(_U16(data, 14)[0], data, 16, 0)

    def _linux_sll2(self, data: bytes) -> None:
        if _U16(data, 8)[0] == 1 and data[11] == 6:
            self._macs.add(data[12:18])
        self._ethertype(_U16(data, 0)[0], data, 20, 0)

    def _nflog(self, data: bytes) -> None:
        # TLVs after the 4-byte header, lengths in the logging host's byte order (libpcap copies them).
        pos = 4
        little = 4 <= (data[pos] | data[pos + 1] << 8) <= len(data) - pos
        while pos + 4 <= len(data):
            length = data[pos] | data[pos + 1] << 8 if little else _U16(data, pos)[0]
            kind = (data[pos + 2] | data[pos + 3] << 8 if little else _U16(data, pos + 2)[0]) & 0x7FFF
            if length < 4:
                return
            value = data[pos + 4 : pos + length]
            if kind == 9:  # NFULA_PAYLOAD
                self._ip(value, 0, len(value), 0)
            elif kind == 8 and len(value) >= 10 and _U16(value, 0)[0] == 6:  # NFULA_HWADDR
                self._macs.add(value[4:10])
            elif kind in (16, 21) and len(value) >= 14:  # NFULA_HWHEADER, NFULA_L2HDR: the Ethernet header
                self._macs.update((value[0:6], value[6:12]))
            pos += length + (-length % 4)

    def _ppp_frame(self, data: bytes) -> None:
        self._ppp(data, 0, 0)

    def _ppp(self, data: bytes, off: int, depth: int) -> None:
        if data[off : off + 2] == b"\xff\x03":
            off += 2
        # Protocol-field compression (RFC 1661 6.5): an odd first byte is a one-byte protocol.
        protocol, off = (data[off], off + 1) if data[off] & 1 else (_U16(data, off)[0], off + 2)
        if protocol in (0x21, 0x57):
            self._ip(data, off, len(data), depth)
        elif protocol == 0x0281:
            self._mpls(data, off, depth)

    def _cisco_hdlc(self, data: bytes) -> None:
        self._ethertype(_U16(data, 2)[0], data, 4, 0)

    def _radiotap(self, data: bytes) -> None:
        self._wifi(data, data[2] | data[3] << 8)

    def _wifi_frame(self, data: bytes) -> None:
        self._wifi(data, 0)

    def _wifi(self, data: bytes, off: int) -> None:
        control, flags = data[off], data[off + 1]
        kind, subtype = (control >> 2) & 3, control >> 4
        if kind == 1:  # control frames: receiver, and transmitter unless CTS or ACK
            self._macs.add(data[off + 4 : off + 10])
            if subtype not in (12, 13):
                self._macs.add(data[off + 10 : off + 16])
            return
        self._macs.update((data[off + 4 : off + 10], data[off + 10 : off + 16], data[off + 16 : off + 22]))
        if kind != 2:
            return
        header = 24
        if flags & 3 == 3:  # to and from the distribution system: a fourth address
            self._macs.add(data[off + 24 : off + 30])
            header = 30
        if subtype & 8:  # QoS data: QoS control, and HT control when the order bit is set
            header += 2 + (4 if flags & 0x80 else 0)
        if not flags & 0x40 and data[off + header : off + header + 3] == b"\xaa\xaa\x03":
            self._snap(data, off + header + 3, 0)

    def _arp(self, data: bytes, off: int) -> None:
        _hardware, protocol, hlen, plen = struct.unpack_from("!HHBB", data, off)
        sender = off + 8
        target = sender + hlen + plen
        if hlen == 6:
            self._macs.update((data[sender : sender + 6], data[target : target + 6]))
        if plen == 4 and protocol == 0x0800:
            self._v4.update((data[sender + hlen : sender + hlen + 4], data[target + hlen : target + hlen + 4]))

    def _mpls(self, data: bytes, off: int, depth: int) -> None:
        for _ in range(16):
            bottom = data[off + 2] & 1
            off += 4
            if bottom:
                break
        version = data[off] >> 4
        if version in (4, 6):
            self._ip(data, off, len(data), depth + 1)
        elif version == 0:
            self._ethernet(data, off + 4, depth + 1)  # an Ethernet pseudowire after its control word

    def _lldp(self, data: bytes, pos: int) -> None:
        while pos + 2 <= len(data):
            header = _U16(data, pos)[0]
            kind, length = header >> 9, header & 0x1FF
            value = data[pos + 2 : pos + 2 + length]
            pos += 2 + length
            if kind == 0:
                return
            if kind in (1, 2) and value:  # chassis id, port id, by subtype
                if (kind, value[0]) in ((1, 4), (2, 3)) and len(value) == 7:
                    self._macs.add(value[1:])
                elif (kind, value[0]) in ((1, 5), (2, 4)):
                    self._family_address(value[1:])
            elif kind == 5:
                self._add_host(_text(value))
            elif kind == 8 and value:
                self._family_address(value[1 : 1 + value[0]])  # the length counts the family byte

    def _family_address(self, value: bytes) -> None:
        """An address after its IANA address family number (1 IPv4, 2 IPv6, 6 IEEE 802)."""
        family, address = value[0], value[1:]
        if family == 1 and len(address) == 4:
            self._v4.add(address)
        elif family == 2 and len(address) == 16:
            self._v6.add(address)
        elif family == 6 and len(address) == 6:
            self._macs.add(address)

    def _cdp(self, data: bytes, pos: int) -> None:
        pos += 4  # version, TTL, checksum
        while pos + 4 <= len(data):
            kind, length = struct.unpack_from("!HH", data, pos)
            if length < 4:
                return
            value = data[pos + 4 : pos + length]
            pos += length
            if kind == 1:
                device = _text(value)
                self._add_host(device)
                phone = _CDP_PHONE.fullmatch(device)
                if phone:  # Cisco phones are named after their MAC
                    self._macs.add(bytes.fromhex(phone.group(1)))
            elif kind in (2, 0x16):
                self._cdp_addresses(value)

    def _cdp_addresses(self, value: bytes) -> None:
        pos = 4
        for _ in range(_U32(value, 0)[0]):
            kind, length = value[pos], value[pos + 1]
            protocol = value[pos + 2 : pos + 2 + length]
            pos += 2 + length
            size = _U16(value, pos)[0]
            address = value[pos + 2 : pos + 2 + size]
            pos += 2 + size
            if kind == 1 and protocol == b"\xcc" and size == 4:
                self._v4.add(address)
            elif kind == 2 and protocol.endswith(b"\x86\xdd") and size == 16:
                self._v6.add(address)

    # -- IP ------------------------------------------------------------------

    def _ip(self, data: bytes, off: int, end: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        version = data[off] >> 4
        if version == 4:
            header = (data[off] & 15) * 4
            total = _U16(data, off + 2)[0]
            if total >= header:  # 0 under segmentation offload: the capture's length is all there is
                end = min(end, off + total)
            self._v4.update((data[off + 12 : off + 16], data[off + 16 : off + 20]))
            if header > 20:
                self._ipv4_options(data, off + 20, off + header)
            if not _U16(data, off + 6)[0] & 0x1FFF:  # later fragments carry no transport header
                self._transport(data[off + 9], data, off + header, end, depth)
        elif version == 6:
            length = _U16(data, off + 4)[0]
            if length:  # 0 is a jumbogram
                end = min(end, off + 40 + length)
            self._v6.update((data[off + 8 : off + 24], data[off + 24 : off + 40]))
            next_header, pos = data[off + 6], off + 40
            while next_header in _IPV6_EXTENSIONS:
                if next_header == 44:
                    if _U16(data, pos + 2)[0] >> 3:
                        return
                    next_header, pos = data[pos], pos + 8
                    continue
                size = (data[pos + 1] + 2) * 4 if next_header == 51 else (data[pos + 1] + 1) * 8
                if next_header == 43 and data[pos + 2] in (0, 2, 4):  # type 0, MIPv6, segment routing
                    for a in range(pos + 8, pos + size - 15, 16):
                        self._v6.add(data[a : a + 16])
                elif next_header in (0, 60):
                    self._ipv6_options(data, pos + 2, pos + size)
                next_header, pos = data[pos], pos + size
            self._transport(next_header, data, pos, end, depth)

    def _ipv4_options(self, data: bytes, pos: int, end: int) -> None:
        while pos < end:
            kind = data[pos]
            if kind == 0:
                return
            if kind == 1:
                pos += 1
                continue
            length = data[pos + 1]
            if length < 2:
                return
            if kind in (7, 131, 137):  # record route, loose and strict source route
                starts = range(pos + 3, pos + length - 3, 4)
            elif kind == 68 and data[pos + 3] & 15 in (1, 3):  # timestamps with addresses
                starts = range(pos + 4, pos + length - 3, 8)
            else:
                starts = range(0)
            self._v4.update(data[a : a + 4] for a in starts)
            pos += length

    def _ipv6_options(self, data: bytes, pos: int, end: int) -> None:
        while pos < end:
            kind = data[pos]
            if kind == 0:
                pos += 1
                continue
            length = data[pos + 1]
            if kind == 0xC9 and length == 16:  # home address (RFC 6275 6.3)
                self._v6.add(data[pos + 2 : pos + 18])
            pos += 2 + length

    def _transport(self, protocol: int, data: bytes, start: int, end: int, depth: int) -> None:
        if protocol == 17:
            sport, dport, length = struct.unpack_from("!HHH", data, start)
            if length >= 8:
                end = min(end, start + length)
            self._udp(sport, dport, data[start + 8 : end], depth)
        elif protocol == 6:
            sport, dport = struct.unpack_from("!HH", data, start)
            self._stream(sport, dport, data[start + (data[start + 12] >> 4) * 4 : end], depth)
        elif protocol in (4, 41):
            self._ip(data, start, end, depth + 1)
        elif protocol == 47:
            self._gre(data, start, end, depth + 1)
        elif protocol == 1:
            self._icmp(data, start, end, depth)
        elif protocol == 58:
            self._icmpv6(data, start, end, depth)
        elif protocol == 132:
            self._sctp(data, start, end, depth)

    def _gre(self, data: bytes, pos: int, end: int, depth: int) -> None:
        flags, protocol = struct.unpack_from("!HH", data, pos)
        sequenced = flags & 0x1000
        pos += 4 + 4 * bool(flags & 0x8000) + 4 * bool(flags & 0x2000) + 4 * bool(sequenced)
        if flags & 7 == 1 and flags & 0x0080:  # enhanced GRE (PPTP) acknowledgment number
            pos += 4
        if protocol == 0x88BE:  # ERSPAN: type II has a sequence number and an 8-byte header, type I neither
            self._ethernet(data[:end], pos + (8 if sequenced else 0), depth)
        elif protocol == 0x22EB:  # ERSPAN III: 12 bytes, 8 more with the platform sub-header
            self._ethernet(data[:end], pos + 12 + (8 if data[pos + 11] & 1 else 0), depth)
        else:
            self._ethertype(protocol, data[:end], pos, depth)

    def _icmp(self, data: bytes, start: int, end: int, depth: int) -> None:
        kind = data[start]
        if kind in (3, 4, 5, 11, 12):
            if kind == 5:
                self._v4.add(data[start + 4 : start + 8])  # the redirect's gateway
            self._ip(data, start + 8, end, depth + 1)
        elif kind == 9:  # router advertisement: count, entry size in words, then the routers
            step = data[start + 5] * 4 or 8
            self._v4.update(data[start + 8 + i * step : start + 12 + i * step] for i in range(data[start + 4]))

    def _icmpv6(self, data: bytes, start: int, end: int, depth: int) -> None:
        kind = data[start]
        if kind in (1, 2, 3, 4):
            self._ip(data, start + 8, end, depth + 1)
        elif kind in (130, 131, 132):
            self._v6.add(data[start + 8 : start + 24])
        elif kind == 143:  # MLDv2 report: records of a group and its sources
            pos = start + 8
            for _ in range(_U16(data, start + 6)[0]):
                aux, sources = data[pos + 1], _U16(data, pos + 2)[0]
                self._v6.update(data[a : a + 16] for a in range(pos + 4, pos + 20 + 16 * sources, 16))
                pos += 20 + 16 * sources + 4 * aux
        elif kind in (133, 134, 135, 136, 137):
            if kind >= 135:  # the target, and the redirect's destination
                self._v6.add(data[start + 8 : start + 24])
            if kind == 137:
                self._v6.add(data[start + 24 : start + 40])
            self._nd_options(data, start + {133: 8, 134: 16, 135: 24, 136: 24, 137: 40}[kind], end)

    def _nd_options(self, data: bytes, pos: int, end: int) -> None:
        while pos + 2 <= end:
            kind, length = data[pos], data[pos + 1] * 8
            if not length:
                return
            if kind in (1, 2) and length == 8:  # source and target link-layer address
                self._macs.add(data[pos + 2 : pos + 8])
            elif kind == 3 and length == 32:  # prefix information
                self._v6.add(data[pos + 16 : pos + 32])
            elif kind == 24:  # route information: a prefix of 0, 8 or 16 bytes
                self._v6.add((data[pos + 8 : pos + length] + bytes(16))[:16])
            elif kind == 25:  # recursive DNS servers
                self._v6.update(data[a : a + 16] for a in range(pos + 8, pos + length - 15, 16))
            pos += length

    def _sctp(self, data: bytes, start: int, end: int, depth: int) -> None:
        sport, dport = struct.unpack_from("!HH", data, start)
        pos = start + 12
        while pos + 4 <= end:
            kind, length = data[pos], _U16(data, pos + 2)[0]
            if length < 4:
                return
            chunk_end = min(pos + length, end)
            if kind == 0:  # DATA: each chunk on its own, nothing is reassembled
                self._stream(sport, dport, data[pos + 16 : chunk_end], depth)
            elif kind == 64:  # I-DATA
                self._stream(sport, dport, data[pos + 20 : chunk_end], depth)
            elif kind in (1, 2):  # INIT, INIT ACK: the endpoint's other addresses
                self._sctp_parameters(data, pos + 20, chunk_end)
            elif kind == 0xC1:  # ASCONF: an address, then address changes
                self._sctp_parameters(data, pos + 8, chunk_end)
            pos += length + (-length % 4)

    def _sctp_parameters(self, data: bytes, pos: int, end: int) -> None:
        while pos + 4 <= end:
            kind, length = struct.unpack_from("!HH", data, pos)
            if length < 4:
                return
            if kind == 5 and length == 8:
                self._v4.add(data[pos + 4 : pos + 8])
            elif kind == 6 and length == 20:
                self._v6.add(data[pos + 4 : pos + 20])
            elif kind in (0xC001, 0xC002, 0xC004):  # add, delete, set primary: correlation id, then the address
                self._sctp_parameters(data, pos + 8, pos + length)
            pos += length + (-length % 4)

    # -- payloads ------------------------------------------------------------

    def _udp(self, sport: int, dport: int, payload: bytes, depth: int) -> None:
        if len(payload) >= 20 and payload[4:8] == STUN_COOKIE and not payload[0] & 0xC0:
            self._stun(payload, STUN_COOKIE + payload[8:20])
        elif (len(payload) >= 20 and _U16(payload, 0)[0] in _CLASSIC_STUN_TYPES
              and _U16(payload, 2)[0] + 20 == len(payload)):
            self._stun(payload, None)
        if payload.startswith(b"HEP3"):
            self._hep3(payload)
        handler = self._udp_ports.get(dport) or self._udp_ports.get(sport)
        if handler:
            handler(payload, depth)
        self._sip_payload(payload)

    def _stream(self, sport: int, dport: int, payload: bytes, depth: int) -> None:
        """A TCP segment's or an SCTP chunk's payload, on its own."""
        if not payload:
            return
        for start in (4, 6):  # STUN directly, or after an RFC 4571 length
            if payload[start : start + 4] == STUN_COOKIE and not payload[start - 4] & 0xC0:
                self._stun(payload[start - 4 :], STUN_COOKIE + payload[start + 4 : start + 16])
        if payload[0] == 0x16:
            self._add_host(client_hello_sni(payload)[1])
        if payload.startswith(b"HEP3"):
            self._hep3(payload)
        ports = (sport, dport)
        if 53 in ports or 5353 in ports or 5355 in ports:
            self._dns(payload[2:], depth)  # after the 2-byte length of DNS over TCP
        if 3868 in ports:
            self._diameter(payload)
        self._sip_payload(payload)

    def _stun(self, payload: bytes, key: bytes | None) -> None:
        pos, end = 20, min(len(payload), 20 + _U16(payload, 2)[0])
        while pos + 4 <= end:
            kind, length = struct.unpack_from("!HH", payload, pos)
            value = payload[pos + 4 : pos + 4 + length]
            if kind in _STUN_XOR and key is not None:
                self._stun_address(value, key)
            elif kind in _STUN_PLAIN:
                self._stun_address(value, bytes(16))
            pos += 4 + length + (-length % 4)

    def _stun_address(self, value: bytes, key: bytes) -> None:
        # Family 1 or 2, then the port; XOR forms use the cookie (and the transaction id for IPv6).
        if len(value) >= 8 and value[1] == 1:
            self._v4.add(_xor(value[4:8], key))
        elif len(value) >= 20 and value[1] == 2:
            self._v6.add(_xor(value[4:20], key))

    def _hep3(self, payload: bytes) -> None:
        pos, end = 6, min(len(payload), _U16(payload, 4)[0])
        while pos + 6 <= end:
            vendor, kind, length = struct.unpack_from("!HHH", payload, pos)
            if length < 6:
                return
            value = payload[pos + 6 : pos + length]
            pos += length
            if vendor:
                continue
            if kind in (3, 4) and len(value) == 4:
                self._v4.add(value)
            elif kind in (5, 6) and len(value) == 16:
                self._v6.add(value)
            elif kind == 15:
                self._sip_payload(value)

    def _vxlan(self, payload: bytes, depth: int) -> None:
        self._ethernet(payload, 8, depth + 1)

    def _gtpu(self, payload: bytes, depth: int) -> None:
        flags = payload[0]
        if flags >> 5 != 1 or payload[1] != 0xFF:  # GTPv1 G-PDU only: other messages carry no user packet
            return
        pos = 8
        if flags & 7:
            pos, extension = 12, payload[11]
            while extension:
                length = payload[pos] * 4
                if not length:
                    return
                extension, pos = payload[pos + length - 1], pos + length
        self._ip(payload, pos, len(payload), depth + 1)

    def _gtpv2(self, payload: bytes, depth: int) -> None:
        if payload[0] >> 5 != 2:
            return
        end = min(len(payload), 4 + _U16(payload, 2)[0])
        self._gtpv2_elements(payload, 12 if payload[0] & 8 else 8, end, 0)

    def _gtpv2_elements(self, data: bytes, pos: int, end: int, depth: int) -> None:
        while pos + 4 <= end and depth <= MAX_DEPTH:
            kind, length = data[pos], _U16(data, pos + 1)[0]
            value = data[pos + 4 : pos + 4 + length]
            pos += 4 + length
            if kind == 74 and length in (4, 16):  # IP Address
                (self._v4 if length == 4 else self._v6).add(value)
            elif kind == 87 and length >= 5:  # F-TEID: flags, TEID, then IPv4 and/or IPv6
                at = 5
                if value[0] & 0x80:
                    self._v4.add(value[at : at + 4])
                    at += 4
                if value[0] & 0x40:
                    self._v6.add(value[at : at + 16])
            elif kind == 79 and value:  # PDN Address Allocation
                pdn = value[0] & 7
                if pdn == 1:
                    self._v4.add(value[1:5])
                elif pdn in (2, 3):
                    self._v6.add(value[2:18])
                    if pdn == 3:
                        self._v4.add(value[18:22])
            elif kind in _GTPV2_GROUPED:
                self._gtpv2_elements(value, 0, len(value), depth + 1)

    def _diameter(self, payload: bytes) -> None:
        pos = 0
        while pos + 20 <= len(payload) and payload[pos] == 1:
            length = int.from_bytes(payload[pos + 1 : pos + 4], "big")
            if length < 20:
                return
            self._avps(payload, pos + 20, min(len(payload), pos + length), 0)
            pos += length

    def _avps(self, data: bytes, pos: int, end: int, depth: int) -> None:
        while pos + 8 <= end:
            code, length = _U32(data, pos)[0], int.from_bytes(data[pos + 5 : pos + 8], "big")
            if length < 8:
                return
            value = data[pos + (12 if data[pos + 4] & 0x80 else 8) : pos + length]
            if code in _DIAMETER_HOSTS:
                self._add_host(_text(value))
            elif len(value) == 6 and value[:2] == b"\x00\x01" or len(value) == 18 and value[:2] == b"\x00\x02":
                (self._v4 if len(value) == 6 else self._v6).add(value[2:])  # the Address type (RFC 6733 4.3.1)
            elif code == 8 and len(value) == 4:  # Framed-IP-Address
                self._v4.add(value)
            elif depth < MAX_DEPTH and _avp_list(value):  # a grouped AVP
                self._avps(value, 0, len(value), depth + 1)
            pos += length + (-length % 4)

    def _dns(self, payload: bytes, depth: int, netbios: bool = False) -> None:
        """DNS, mDNS, LLMNR and NBNS messages: every question and record, names and address data."""
        counts = struct.unpack_from("!HHHH", payload, 4)
        pos = 12
        for _ in range(counts[0]):
            labels, pos = _wire_name(payload, pos)
            self._dns_name(labels, netbios)
            pos += 4
        for _ in range(sum(counts[1:])):
            labels, pos = _wire_name(payload, pos)
            self._dns_name(labels, netbios)
            kind, _class, _ttl, length = struct.unpack_from("!HHIH", payload, pos)
            start, pos = pos + 10, pos + 10 + length
            rdata = payload[start:pos]
            if netbios:
                self._netbios_record(kind, rdata)
            elif kind == 1 and length == 4:
                self._v4.add(rdata)
            elif kind == 28 and length == 16:
                self._v6.add(rdata)
            elif kind in (2, 5, 12, 39, 15, 33, 6):  # NS, CNAME, PTR, DNAME, MX, SRV, SOA (mname, rname)
                at = start + {15: 2, 33: 6}.get(kind, 0)
                labels, after = _wire_name(payload, at)
                self._dns_name(labels, False)
                if kind == 6:
                    self._dns_name(_wire_name(payload, after)[0], False)
            elif kind == 35:  # NAPTR: order, preference, flags, service, regexp, then the replacement
                at = start + 4
                for _ in range(3):
                    at += 1 + payload[at]
                self._dns_name(_wire_name(payload, at)[0], False)

    def _dns_name(self, labels: list[bytes], netbios: bool) -> None:
        if netbios and labels:
            self._add_name("netbios_names", _netbios_name(labels[0]))
        elif labels:
            self._add_host(_text(b".".join(labels)))

    def _netbios_record(self, kind: int, rdata: bytes) -> None:
        if kind == 0x20:  # NB: flags, then an address, per entry
            self._v4.update(rdata[a : a + 4] for a in range(2, len(rdata) - 3, 6))
        elif kind == 0x21 and rdata:  # NBSTAT: the node's names, then its MAC
            count = rdata[0]
            for i in range(count):
                self._add_name("netbios_names", _text(rdata[1 + 18 * i : 16 + 18 * i].rstrip(b" \x00")))
            self._macs.add(rdata[1 + 18 * count : 7 + 18 * count])

    def _nbns(self, payload: bytes, depth: int) -> None:
        self._dns(payload, depth, netbios=True)

    def _nbdgm(self, payload: bytes, depth: int) -> None:
        kind = payload[0]
        self._v4.add(payload[4:8])  # the source IP field
        if 0x10 <= kind <= 0x12:  # direct unique, direct group, broadcast: source and destination names
            labels, pos = _wire_name(payload, 14)
            self._dns_name(labels, True)
            self._dns_name(_wire_name(payload, pos)[0], True)
        elif 0x14 <= kind <= 0x16:  # query request and responses: the destination name
            self._dns_name(_wire_name(payload, 10)[0], True)

    def _snmp(self, payload: bytes, depth: int) -> None:
        self._ber(payload, 0, len(payload), 0)

    def _ber(self, data: bytes, pos: int, end: int, depth: int) -> None:
        """Every IpAddress (application 0, 4 bytes) in a BER message, at any depth of its constructed values."""
        while pos + 2 <= end:
            tag, length = data[pos], data[pos + 1]
            pos += 2
            if length & 0x80:
                size = length & 0x7F
                if not 0 < size <= 4:
                    return
                length, pos = int.from_bytes(data[pos : pos + size], "big"), pos + size
            if tag == 0x40 and length == 4 and pos + 4 <= end:
                self._v4.add(data[pos : pos + 4])
            elif tag & 0x20 and depth < 16:
                # A message cut by the snap length still holds the values before the cut.
                self._ber(data, pos, min(pos + length, end), depth + 1)
            pos += length

    def _dhcp(self, payload: bytes, depth: int) -> None:
        if payload[236:240] != _DHCP_MAGIC:
            return
        self._v4.update(payload[a : a + 4] for a in (12, 16, 20, 24))  # ciaddr, yiaddr, siaddr, giaddr
        if payload[1] == 1 and payload[2] == 6:
            self._macs.add(payload[28:34])  # chaddr
        pos = 240
        while pos < len(payload) and payload[pos] != 255:
            code = payload[pos]
            if code == 0:
                pos += 1
                continue
            value = payload[pos + 2 : pos + 2 + payload[pos + 1]]
            pos += 2 + len(value)
            if code in _DHCP_ADDRESS_OPTIONS:
                self._v4.update(value[a : a + 4] for a in range(0, len(value) - 3, 4))
            elif code in (12, 15):  # host name, domain name
                self._add_host(_text(value.rstrip(b"\x00")))
            elif code == 81 and len(value) > 3:  # client FQDN: flags, two rcodes, the name (wire form with E)
                self._add_host(".".join(map(_text, _wire_names(value[3:]))) if value[0] & 4 else _text(value[3:]))
            elif code == 119:  # domain search list
                for name in _wire_name_list(value):
                    self._add_host(name)
            elif code == 61 and value:  # client identifier: a MAC, or an IAID and a DUID (RFC 4361)
                if value[0] == 1 and len(value) == 7:
                    self._macs.add(value[1:])
                elif value[0] == 255:
                    self._duid(value[5:])

    def _duid(self, duid: bytes) -> None:
        kind, hardware = struct.unpack_from("!HH", duid)
        # DUID-LLT: hardware type, time, address; DUID-LL: hardware type, address (RFC 8415 11).
        address = duid[8:] if kind == 1 else duid[4:]
        if kind in (1, 3) and hardware == 1 and len(address) == 6:
            self._macs.add(address)

    def _dhcpv6(self, payload: bytes, depth: int) -> None:
        if payload[0] in (12, 13):  # relay messages: link and peer address, then options
            self._v6.update((payload[2:18], payload[18:34]))
            self._dhcpv6_options(payload, 34, depth)
        else:
            self._dhcpv6_options(payload, 4, depth)

    def _dhcpv6_options(self, data: bytes, pos: int, depth: int) -> None:
        while pos + 4 <= len(data) and depth <= MAX_DEPTH:
            code, length = struct.unpack_from("!HH", data, pos)
            value = data[pos + 4 : pos + 4 + length]
            pos += 4 + length
            if code in (1, 2):  # client and server id
                self._duid(value)
            elif code in (3, 25):  # IA_NA, IA_PD: IAID, T1, T2, options
                self._dhcpv6_options(value, 12, depth + 1)
            elif code == 4:  # IA_TA: IAID, options
                self._dhcpv6_options(value, 4, depth + 1)
            elif code == 5:  # IA address
                self._v6.add(value[:16])
                self._dhcpv6_options(value, 24, depth + 1)
            elif code == 26:  # IA prefix
                self._v6.add(value[9:25])
                self._dhcpv6_options(value, 25, depth + 1)
            elif code in (22, 23, 31):  # SIP servers, DNS servers, SNTP servers
                self._v6.update(value[a : a + 16] for a in range(0, len(value) - 15, 16))
            elif code in (21, 24):  # SIP server names, domain search list
                for name in _wire_name_list(value):
                    self._add_host(name)
            elif code == 39 and value:  # client FQDN
                self._add_host(".".join(map(_text, _wire_names(value[1:]))))
            elif code == 79 and len(value) == 8 and _U16(value, 0)[0] == 1:  # client link-layer address
                self._macs.add(value[2:])
            elif code == 9:  # relayed message
                self._dhcpv6(value, depth + 1)


def _avp_list(value: bytes) -> bool:
    """Whether bytes read as Diameter AVPs whose lengths add up: how a grouped AVP is told from data."""
    pos = 0
    while pos + 8 <= len(value):
        length = int.from_bytes(value[pos + 5 : pos + 8], "big")
        if length < 8:
            return False
        pos += length + (-length % 4)
    return len(value) >= 8 and len(value) <= pos <= len(value) + 3


def _wire_names(value: bytes) -> list[bytes]:
    """The labels of one uncompressed name that may lack its final zero (DHCP FQDN options)."""
    labels, pos = [], 0
    while pos < len(value) and value[pos]:
        labels.append(value[pos + 1 : pos + 1 + value[pos]])
        pos += 1 + value[pos]
    return labels


def _wire_name_list(value: bytes) -> list[str]:
    """Names one after another, compression relative to the option (RFC 3397)."""
    names, pos = [], 0
    while pos < len(value):
        labels, pos = _wire_name(value, pos)
        names.append(_text(b".".join(labels)))
    return names


_ALLOCATED = tuple(ipaddress.ip_network(n) for n in ("2000::/3", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
                                                        "::ffff:0:0/96", "64:ff9b::/96"))


def _allocated(packed: bytes) -> bool:
    address = ipaddress.IPv6Address(packed)
    return any(address in network for network in _ALLOCATED)


_V6_CACHE: dict[bytes, bytes | None] = {}


def _parse_ipv6(text: bytes) -> bytes | None:
    """The packed form of IPv6 text, None when it is not one (cached: the same few repeat)."""
    if text in _V6_CACHE:
        return _V6_CACHE[text]
    try:
        packed = ipaddress.IPv6Address(text.decode("ascii")).packed
    except ValueError:
        packed = None
    if len(_V6_CACHE) > 65536:
        _V6_CACHE.clear()
    _V6_CACHE[text] = packed
    return packed


# -- searching -------------------------------------------------------------

# Whether a hit may be glued to the byte before / after it (the buffer is lower-cased for names).
_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789") | frozenset(range(0x80, 0x100))
_HOST_CHARS = _ALNUM | frozenset(b"-")
_DIGITS = frozenset(b"0123456789")


def _trie_source(node: dict) -> bytes:
    """A regex for the keys below a trie node: one branch per byte, so a position costs one test per byte."""
    branches = sorted(byte for byte in node if byte >= 0)
    if not branches:
        return b""
    if len(branches) > 1 and all(set(node[b]) == {-1} for b in branches):
        body = b"[" + b"".join(re.escape(bytes([b])) for b in branches) + b"]"
    else:
        alternatives = [re.escape(bytes([b])) + _trie_source(node[b]) for b in branches]
        body = alternatives[0] if len(alternatives) == 1 else b"(?:" + b"|".join(alternatives) + b")"
    return b"(?:" + body + b")?" if -1 in node else body


# Up to this many distinct first bytes the keys are one trie regex, beyond it an index (_Dictionary).
MAX_TRIE_FIRST_BYTES = 16
_WORD = struct.calcsize("I")  # memoryview.cast("I"): 4 on every platform CPython and Pyodide run on


class _Dictionary:
    """Literal keys found in one pass over the data, overlapping hits included.

    Few distinct first bytes: one regex, a trie; SRE skips in C to a position
    whose byte starts a key and follows one branch per byte. Many (a capture
    with thousands of endpoints): SRE would try the branches one by one at
    nearly every position, so keys are indexed by their first four bytes
    instead, the data's words at the four alignments are intersected with the
    index (C speed, whatever the number of keys), and each word present is
    located with bytes.find. Keys shorter than a word stay in the trie.
    """

    def __init__(self, table: dict[bytes, set]) -> None:
        self.table = table
        self.lengths = sorted({len(key) for key in table})
        indexed = len({key[0] for key in table}) > MAX_TRIE_FIRST_BYTES
        self._by_prefix: dict[int, list[bytes]] = {}
        trie: dict = {}
        for key in table:
            if indexed and len(key) >= _WORD:
                self._by_prefix.setdefault(int.from_bytes(key[:_WORD], sys.byteorder), []).append(key)
                continue
            node = trie
            for byte in key:
                node = node.setdefault(byte, {})
            node[-1] = {}
        self._prefixes = frozenset(self._by_prefix)
        self.pattern = re.compile(_trie_source(trie)) if trie else None

    def hits(self, data: bytes):
        """(start, end, values) for every key at every position."""
        if self.pattern is not None:
            yield from self._trie_hits(data)
        if self._prefixes:
            yield from self._indexed_hits(data)

    def _trie_hits(self, data: bytes):
        search, table, lengths = self.pattern.search, self.table, self.lengths
        pos = 0
        while match := search(data, pos):
            start = match.start()
            longest = match.end() - start
            for length in lengths:
                if length > longest:
                    break
                values = table.get(data[start : start + length])
                if values:
                    yield start, start + length, values
            pos = start + 1

    def _indexed_hits(self, data: bytes):
        view = memoryview(data)
        present = set()
        for offset in range(_WORD):
            words = (len(data) - offset) // _WORD
            present.update(self._prefixes.intersection(view[offset : offset + words * _WORD].cast("I")))
        for prefix in present:
            needle = prefix.to_bytes(_WORD, sys.byteorder)
            pos = data.find(needle)
            while pos >= 0:
                for key in self._by_prefix[prefix]:
                    if data.startswith(key, pos):
                        yield pos, pos + len(key), self.table[key]
                pos = data.find(needle, pos + 1)


def _casings(value: str) -> set[bytes]:
    """A name's byte forms as searched in lower-cased bytes; bytes.lower() folds ASCII only,
    so non-ASCII case and normalisation variants are listed."""
    forms = {value, value.lower(), value.upper(), value.title(),
             unicodedata.normalize("NFC", value), unicodedata.normalize("NFD", value)}
    return {form.encode("utf-8", "surrogateescape").lower() for form in forms}


_LABELS = {"users": "user", "display_names": "display name", "host_names": "host name",
           "netbios_names": "NetBIOS name", "call_ids": "call ID", "user_agents": "user agent", "strings": "string"}
# The pcapng block types that hold a packet, numbered as frames.
_PACKET_BLOCKS = frozenset((6, 3, 2))
_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
MAX_RECORD = 64 * 1024 * 1024
# Records are scanned together once this much is waiting: one regex pass per batch, not per packet.
BATCH = 1024 * 1024
# Unreadable tails are scanned piecewise; a key this long still straddles two pieces.
RAW_OVERLAP = 4096


class LeakSearch:
    """Searches a written capture for every identifier in every form.

    The copy is read as pcap/pcapng records by this class's own walk (frame
    numbers as Wireshark's; headers and other blocks are frame None) and each
    record's bytes are searched whole. SIP messages the analysis engine
    reassembles from the copy are searched too, credited to their frame. A copy
    whose structure cannot be walked is searched as raw bytes and reported.
    """

    def __init__(self, identifiers: Identifiers, patterns: Iterable[re.Pattern] = ()) -> None:
        self._patterns = list(patterns)
        binary: dict[bytes, set[str]] = {}
        names: dict[bytes, set[tuple[str, frozenset, frozenset]]] = {}
        v4_text: dict[bytes, set[str]] = {}
        v6_text: dict[bytes, set[str]] = {}
        eui_text: dict[bytes, set[str]] = {}
        self._v6: dict[bytes, Address] = {}
        self._eui: dict[bytes, str] = {}
        self._mac_hex: dict[bytes, str] = {}
        def name(key: bytes, what: str, before: frozenset = frozenset(), after: frozenset = frozenset()) -> None:
            if len(key) >= MIN_NAME:
                names.setdefault(key, set()).add((what, before, after))

        for address in identifiers.addresses:
            if address in EXEMPT_ADDRESSES:
                continue
            packed = address.packed
            binary.setdefault(packed, set()).add(f"address {address} as binary")
            reverse = address.reverse_pointer
            name(reverse.encode(), f"address {address} as reverse DNS name")
            name(_wire_form(reverse), f"address {address} as reverse DNS name in wire form")
            if address.version == 4:
                v4_text.setdefault(str(address).encode(), set()).add(f"address {address} as text")
                binary.setdefault(_xor(packed, STUN_COOKIE), set()).add(f"address {address} as STUN XOR")
                if any(b >= 128 for b in packed):  # as OID arcs (an SNMP table index) bytes >= 128 take two
                    arcs = b"".join(bytes([0x80 | b >> 7, b & 0x7F]) if b >= 128 else bytes([b]) for b in packed)
                    binary.setdefault(arcs, set()).add(f"address {address} as SNMP OID")
            else:
                self._v6[packed] = address
                for form in {address.compressed, address.exploded}:
                    v6_text.setdefault(form.encode(), set()).add(f"address {address} as text")
        for mac in identifiers.macs:
            if _mac_exempt(mac):
                continue
            text = _mac_text(mac)
            binary.setdefault(mac, set()).add(f"MAC {text} as binary")
            self._mac_hex[mac.hex().encode()] = f"MAC {text} as text"
            eui = _eui64(mac)
            binary.setdefault(eui, set()).add(f"MAC {text} as EUI-64 binary")
            self._eui[eui] = f"MAC {text} as EUI-64 text"
            groups = [eui[i : i + 2].hex() for i in range(0, 8, 2)]
            for form in {":".join(groups), ":".join(g.lstrip("0") or "0" for g in groups)}:
                eui_text.setdefault(form.encode(), set()).add(f"MAC {text} as EUI-64 text")
        for category, values in identifiers.names.items():
            label = _LABELS.get(category, category)
            for value in values:
                if len(value) < MIN_NAME:
                    continue
                what = f"{label} {value!r}"
                for form in _casings(value):
                    self._name_forms(category, value, form, what, name)
        self._binary = _Dictionary(binary)
        self._names = _Dictionary(names)
        self._v4_text = v4_text
        self._v4_in_run = _Dictionary(v4_text)
        self._v6_in_run = _Dictionary(v6_text)
        self._eui_in_run = _Dictionary(eui_text)
        self._found: set[tuple[int | None, str]] = set()
        self._analysis: CaptureAnalysis | None = CaptureAnalysis("written copy")
        self._pending = b""  # the copy's bytes held here: before its format is known, and once it is lost
        self._format: str | None = None  # "pcap", "pcapng", or "raw" once the structure is lost
        self._endian = "<"
        self._frame = 0
        # The kernel walks the records: its unwalked bytes are buffer[_start:_end], buffer[0] is the
        # copy's byte _base.
        self._kernel = Kernel()
        self._start = self._end = self._base = 0
        self._keys: list[tuple[bool, set]] = []  # the kernel's key index -> (a name?, its values)
        self._mode = self._load_keys(binary, names)
        # Records searched whole, and records the kernel searched for keys that hold text candidates.
        self._batch: list[tuple[int | None, bytes]] = []
        self._batch_size = 0
        self._text_batch: list[tuple[int | None, bytes]] = []
        self._text_size = 0

    def _load_keys(self, binary: dict, names: dict) -> int:
        """The kernel's mode: LEAK_KEYS with every literal key in its tables, or LEAK_ALL where the
        records' bytes must all come here (user patterns; STUN's IPv6 XOR, un-XORed per message
        across the joined records; more keys than its tables hold)."""
        if self._patterns or self._v6:
            return LEAK_ALL
        keys = [(key, False, values) for key, values in binary.items()]
        keys += [(key, True, values) for key, values in names.items()]
        blob = b"".join(key for key, _folded, _values in keys)
        if len(keys) > LEAK_MAX_KEYS or len(blob) > LEAK_KEY_BYTES:
            return LEAK_ALL
        kernel = self._kernel
        call, instance = kernel.call, kernel.instance
        instance.write(call["leak_key_bytes_address"](), blob)
        table, offset = bytearray(), 0
        for key, folded, _values in keys:
            table += LEAK_KEY.pack(offset, len(key), folded, 0, 0)
            offset += len(key)
        instance.write(call["leak_keys_address"](), bytes(table))
        if call["leak_index"](len(keys)):
            return LEAK_ALL
        self._keys = [(folded, values) for _key, folded, values in keys]
        return LEAK_KEYS

    @staticmethod
    def _name_forms(category: str, value: str, form: bytes, what: str, name) -> None:
        """The byte patterns that reveal one name, by category (forms already lower-cased)."""
        if category == "users":
            if len(value) >= 6:
                # A number is not glued to other digits: "1123456" does not reveal the user 123456.
                boundary = _DIGITS if value.lstrip("+").isdigit() else frozenset()
                name(form, what, boundary, boundary)
            else:
                # Short users are common words and numbers: only where SIP and SDP write a user.
                for context in (b":%s@", b'username="%s"', b"<%s>", b"o=%s "):
                    name(context % form, what)
                name(b"tel:" + form, what, frozenset(), _ALNUM)
        elif category == "display_names":
            if len(value) >= 5 and any(c.isalpha() for c in value):
                name(form, what)
            else:
                name(b'"%s"' % form, what)
                name(form + b" <", what, _ALNUM)
                name(form + b"<", what, _ALNUM)
        elif category == "host_names":
            name(form, what, _HOST_CHARS, _HOST_CHARS)
            wire = _wire_form(form.decode("utf-8", "surrogateescape"))
            if len(wire) > MIN_NAME:  # a length byte and a label of MIN_NAME at least
                name(wire, f"{what} in DNS wire form")
        elif category == "netbios_names":
            name(form, what)
            name(_netbios_encoding(value).lower(), f"{what} encoded")
        else:
            name(form, what)

    @property
    def packets(self) -> int:
        """Packet records walked in the copy so far."""
        return self._frame

    def feed(self, chunk: bytes) -> None:
        """The written copy, any chunk sizes."""
        if self._analysis is not None:
            try:
                self._analysis.feed(chunk)
            except CaptureError:
                self._analysis = None  # the record walk says what is wrong with the copy
        if self._format in ("pcap", "pcapng"):
            self._feed_kernel(chunk)
        else:
            self._pending = self._pending + chunk if self._pending else bytes(chunk)
            if self._format is None:
                self._start_walk()
            else:
                self._walk_raw()
        if self._batch_size >= BATCH:
            self._scan_batch()
        if self._text_size >= BATCH:
            self._scan_text_batch()

    def finish(self) -> list[Leak]:
        if self._end > self._start:
            self._damage("the written copy ends inside a record", self._base + self._start)
            self._add(None, memoryview(self._kernel_bytes(self._start, self._end)))
        elif self._pending:
            if self._format != "raw":
                self._damage("the written copy ends inside a record", 0)
            self._add(None, memoryview(self._pending))
            self._pending = b""
        self._scan_batch()
        self._scan_text_batch()
        if self._analysis is not None:
            try:
                messages = self._analysis.finish_result().sip_messages
            except CaptureError:
                messages = []
            self._scan([(message.frame, message.raw) for message in messages])
        return [Leak(frame, what) for frame, what in sorted(self._found, key=lambda f: (f[0] or 0, f[1]))]

    # -- the copy's records --------------------------------------------------

    def _add(self, frame: int | None, data: memoryview) -> None:
        # Views into the bytes read: the batch's one copy is made when its records are joined.
        self._batch.append((frame, data))
        self._batch_size += len(data)

    def _damage(self, why: str, at: int) -> None:
        self._found.add((None, f"unreadable capture structure at byte {at} ({why}); searched as raw bytes"))

    def _start_walk(self) -> None:
        """The format from the copy's first bytes (a pcap file header is searched here); the rest
        goes to the kernel's walk."""
        head = self._pending[:4]
        if len(head) < 4:
            return
        kernel = self._kernel
        if head in _PCAP_MAGICS:
            if len(self._pending) < 24:
                return
            self._format, self._endian = "pcap", _PCAP_MAGICS[head]
            self._add(None, memoryview(self._pending[:24]))
            rest, self._base = self._pending[24:], 24
            kernel.set("format", FORMAT_PCAP)
        elif head == _PCAPNG_MAGIC:
            self._format = "pcapng"
            rest = self._pending
            kernel.set("format", FORMAT_PCAPNG)
            # Interfaces are no concern of the search: every packet block's interface is walked.
            kernel.set("n_interfaces", MAX_INTERFACES)
        else:
            self._format = "raw"
            self._damage("neither pcap nor pcapng", 0)
            self._walk_raw()
            return
        kernel.set("big_endian", self._endian == ">")
        text = (LEAK_V4 if self._v4_text else 0) | (LEAK_V6 if self._v6 or self._eui else 0)
        text |= LEAK_MAC | LEAK_HEX if self._mac_hex else 0
        kernel.instance.write(kernel.call["leak_address"](), leak_state(self._mode, text, len(self._keys)))
        self._pending = b""
        self._feed_kernel(rest)

    def _feed_kernel(self, data: bytes) -> None:
        kernel = self._kernel
        self._base += self._start
        self._end = kernel.keep_unwalked(self._start, self._end, len(data))
        self._start = 0
        kernel.instance.write(kernel.buffer + self._end, bytes(data))
        self._end += len(data)
        self._walk_kernel()

    def _kernel_bytes(self, start: int, end: int) -> bytes:
        return self._kernel.instance.read(self._kernel.buffer + start, end - start)

    def _walk_kernel(self) -> None:
        """The kernel walks and searches the records; blocks and damage are judged here."""
        kernel = self._kernel
        while self._start < self._end:
            status = kernel.scan(self._start, self._end)
            pos = kernel.result()[0]
            self._drain()
            self._frame = kernel.get("frame")
            if status == NEED_MORE:
                self._start = pos
                return
            if status == LEAK_FULL:
                self._start = pos
            elif status == DAMAGED:  # a pcap record longer than MAX_RECORD
                included = struct.unpack(self._endian + "I", self._kernel_bytes(pos + 8, pos + 12))[0]
                self._lost(pos, f"record {self._frame + 1} claims {included} bytes")
                return
            else:  # BLOCK: a pcapng block other than a packet, or one the kernel does not walk
                length = self._block(pos)
                if length <= 0:
                    return
                self._start = pos + length

    def _block(self, pos: int) -> int:
        """One pcapng block at buffer[pos:]: its length, 0 when it is not all there, -1 when the structure is lost."""
        head = self._kernel_bytes(pos, pos + 12)
        if head[:4] == _PCAPNG_MAGIC:
            magic = head[8:12]
            if magic not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                return self._lost(pos, "a section header with a bad byte-order magic")
            self._endian = "<" if magic == b"\x4d\x3c\x2b\x1a" else ">"
            self._kernel.set("big_endian", self._endian == ">")
        kind, length = struct.unpack_from(self._endian + "II", head)
        if length < 12 or length % 4 or length > MAX_RECORD:
            return self._lost(pos, f"a block claims {length} bytes")
        if pos + length > self._end:
            self._start = pos
            return 0
        block = memoryview(self._kernel_bytes(pos, pos + length))
        # The packet's bytes and options, not the fixed fields: a length of 516 is "04 02 00 00".
        if kind in _PACKET_BLOCKS:
            self._frame += 1
            self._kernel.set("frame", self._frame)
            self._add(self._frame, block[12 if kind == 3 else 28 : length - 4])
        else:
            self._add(None, block[8 : length - 4])
        return length

    def _drain(self) -> None:
        """Credit the kernel's hits and take the records it handed back; its tables are emptied."""
        instance = self._kernel.instance
        call = self._kernel.call
        state = call["leak_address"]()
        n_hits, n_records = LEAK_STATE.unpack(instance.read(state, LEAK_STATE.size))[3:5]
        if not (n_hits or n_records):
            return
        found, keys = self._found, self._keys
        for frame, key, before, after in LEAK_HIT.iter_unpack(instance.read(call["leak_hits_address"](),
                                                                            n_hits * LEAK_HIT.size)):
            is_name, values = keys[key]
            if is_name:  # before and after are lower-cased bytes, -1 at the record's edge
                for what, not_before, not_after in values:
                    if before not in not_before and after not in not_after:
                        found.add((frame, what))
            else:
                for what in values:
                    found.add((frame, what))
        if n_records:
            entries = list(LEAK_RECORD.iter_unpack(instance.read(call["leak_records_address"](),
                                                                 n_records * LEAK_RECORD.size)))
            low = entries[0][1]
            span = memoryview(self._kernel_bytes(low, entries[-1][1] + entries[-1][2]))
            for frame, data, length, reason in entries:
                piece = span[data - low : data - low + length]
                if reason == LEAK_TEXT:
                    self._text_batch.append((frame, piece))
                    self._text_size += length
                else:
                    self._add(frame, piece)
        instance.write(state + LEAK_COUNTS_OFFSET, bytes(16))

    def _lost(self, pos: int, why: str) -> int:
        """The structure is lost at buffer[pos]: everything from there is searched as raw bytes."""
        self._damage(why, self._base + pos)
        self._format = "raw"
        self._pending = self._kernel_bytes(pos, self._end)
        self._start = self._end = 0
        self._walk_raw()
        return -1

    def _walk_raw(self) -> None:
        if len(self._pending) > RAW_OVERLAP:
            self._add(None, memoryview(self._pending))
            self._pending = self._pending[-RAW_OVERLAP:]  # kept, so that a value across two pieces is whole in one

    # -- searching -----------------------------------------------------------

    def _scan_batch(self) -> None:
        if self._batch:
            self._scan(self._batch)
        self._batch, self._batch_size = [], 0

    def _scan_text_batch(self) -> None:
        if self._text_batch:
            self._scan(self._text_batch, text_only=True)
        self._text_batch, self._text_size = [], 0

    def _scan(self, records: list[tuple[int | None, bytes | memoryview]], text_only: bool = False) -> None:
        """Search records joined by NUL (no text candidate crosses it); a hit counts inside one record.
        `text_only`: the kernel searched these records for the literal keys already."""
        if not records:
            return
        starts, ends, frames = [], [], []
        pos = 0
        for frame, data in records:
            starts.append(pos)
            ends.append(pos + len(data))
            frames.append(frame)
            pos += len(data) + 1
        buffer = b"\0".join(data for _frame, data in records)
        found = self._found

        def credit(start: int, end: int, what: str) -> None:
            index = bisect_right(starts, start) - 1
            if end <= ends[index]:
                found.add((frames[index], what))

        if text_only:
            self._search_text(buffer, credit)
            return
        for start, end, whats in self._binary.hits(buffer):
            for what in whats:
                credit(start, end, what)
        if self._v6:
            self._stun(buffer, credit)
        self._search_text(buffer, credit)
        lower = buffer.lower()
        for start, end, values in self._names.hits(lower):
            for what, before, after in values:
                if (start == 0 or lower[start - 1] not in before) and (end == len(lower) or lower[end] not in after):
                    credit(start, end, what)
        for pattern in self._patterns:
            for match in pattern.finditer(buffer):
                if match.end() > match.start():
                    credit(match.start(), match.end(), f"pattern {pattern.pattern!r}")

    def _stun(self, buffer: bytes, credit) -> None:
        """IPv6 XOR addresses: un-XORed with each STUN message's own transaction id."""
        at = buffer.find(STUN_COOKIE, 4)
        while at >= 0:
            start = at - 4
            if not buffer[start] & 0xC0 and not buffer[start + 3] & 3:
                key = buffer[at : at + 16]
                pos, end = start + 20, min(len(buffer), start + 20 + _U16(buffer, start + 2)[0])
                while pos + 4 <= end:
                    kind, length = struct.unpack_from("!HH", buffer, pos)
                    if kind in _STUN_XOR and length >= 20 and buffer[pos + 5] == 2 and pos + 24 <= len(buffer):
                        address = self._v6.get(_xor(buffer[pos + 8 : pos + 24], key))
                        if address is not None:
                            credit(pos, pos + 24, f"address {address} as STUN XOR")
                    pos += 4 + length + (-length % 4)
            at = buffer.find(STUN_COOKIE, at + 1)

    def _search_text(self, buffer: bytes, credit) -> None:
        if self._v4_text:
            for start, end in _runs(buffer, _V4_MARKS, 7):
                run = buffer[start:end].strip(b".")
                groups = run.split(b".")
                if len(groups) == 4 and _valid_octets(groups):
                    # A whole dotted quad is that address or another one (10.0.0.15 is not 0.0.0.1).
                    for what in self._v4_text.get(run, ()):
                        credit(start, end, what)
                elif len(groups) >= 4:
                    # Glued to digits or dots it is no address of its own: any identifier in it leaks.
                    for _s, _e, whats in self._v4_in_run.hits(run):
                        for what in whats:
                            credit(start, end, what)
        if self._v6 or self._eui:
            for start, end in _v6_runs(buffer):
                lower = buffer[start:end].strip(b".").lower()
                packed = _parse_ipv6(lower)
                whats = []
                if packed is not None:
                    if packed in self._v6:
                        whats.append(f"address {self._v6[packed]} as text")
                    if packed[8:] in self._eui:
                        whats.append(self._eui[packed[8:]])
                else:
                    whats.extend(w for _s, _e, ws in self._v6_in_run.hits(lower) for w in ws)
                whats.extend(w for _s, _e, ws in self._eui_in_run.hits(lower) for w in ws)
                for what in whats:
                    credit(start, end, what)
        if self._mac_hex:
            mac_hex = self._mac_hex
            # Every window of six groups, four-digit triples and twelve hex digits: glued MACs count.
            for table, length, pattern, separator, count in ((_SEP_MARKS, 17, _MAC_SEP_RUN, _MAC_SEPARATORS, 6),
                                                             (_DOT_MARKS, 14, _MAC_DOT_RUN, _DOTS, 3)):
                for start, end in _runs(buffer, table, length):
                    for match in pattern.finditer(buffer[start:end].lower()):
                        groups = separator.split(match.group())
                        for i in range(len(groups) - count + 1):
                            what = mac_hex.get(b"".join(groups[i : i + count]))
                            if what:
                                credit(start, end, what)
            for start, end in _runs(buffer, _HEX_MARKS, 12):
                run = buffer[start:end].lower()
                for i in range(len(run) - 11):
                    what = mac_hex.get(run[i : i + 12])
                    if what:
                        credit(start, end, what)
