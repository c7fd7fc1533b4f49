"""Independent leak scanner for redacted captures.

Why this exists: a redaction test that asks the redactor what it redacted
can only find the bugs the redactor already knows about.  This module learns
the identifiers of an ORIGINAL capture on its own -- from tshark's dissection
and from a scan of the raw bytes -- and then looks for every one of them, in
every encoding it knows, in the REDACTED file.  It deliberately imports and
reads nothing from the product (py/sipdiag): a misunderstanding shared by the
redactor and its checker would hide itself.

Public API:

* ``original_identifiers(original, keep=())`` -> ``Identifiers``
* ``find_leaks(identifiers, redacted)`` -> ``list[Leak]``
* ``broken_checksums(original, redacted, removed_frames=())``
  -> ``list[BrokenChecksum]``

Two views of each file are used, in both directions:

* the raw view: the file's bytes, walked as pcap/pcapng records so that a
  binary match can be tied to a frame and kept away from file/record headers;
* the decoded view: tshark's PDML, which sees what the raw bytes hide
  (masked WebSocket payloads, un-XORed STUN addresses, reassembled PDUs).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
import subprocess
import tempfile
import xml.parsers.expat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

TSHARK = "tshark"

# Heuristic dissectors that find SIP and STUN on ports nobody registered.
# Heuristics are not tried first: a heuristic guess over RTP payload would
# invent "addresses" that the redactor rightly leaves alone.
_DISSECT_OPTIONS = (
    "-n",
    "--enable-heuristic", "sip_udp",
    "--enable-heuristic", "sip_tcp",
    "--enable-heuristic", "sip_sctp",
    "--enable-heuristic", "stun_udp",
    "--enable-heuristic", "stun_tcp",
    "--enable-heuristic", "classicstun_udp",
    "--enable-heuristic", "classicstun_tcp",
)

_ADDRESS_TYPES = frozenset({"FT_IPv4", "FT_IPv6", "FT_ETHER"})
_STRING_TYPES = frozenset({
    "FT_STRING", "FT_STRINGZ", "FT_UINT_STRING", "FT_STRINGZPAD",
    "FT_STRINGZTRUNC",
})
# Fields typed FT_IPv4 that hold no address: the DHCP magic cookie.  Netmask
# fields (any name containing "mask") are skipped as well.
_NON_ADDRESS_FIELDS = frozenset({"dhcp.cookie"})

_SIP_URI_HEADERS = (
    "from", "to", "contact", "r-uri", "pai", "ppi", "pmiss", "tc", "Route",
    "Record-Route", "Path", "Service-Route",
)
_USER_FIELDS = frozenset(
    [f"sip.{h}.user" for h in _SIP_URI_HEADERS] + ["sip.auth.username"]
)
_DISPLAY_FIELDS = frozenset(f"sip.{h}.display.info" for h in _SIP_URI_HEADERS)
_HOST_FIELDS = frozenset(
    [f"sip.{h}.host" for h in _SIP_URI_HEADERS]
    + [
        "sip.Via.sent-by.address",
        "dns.qry.name", "dns.resp.name", "dns.cname", "dns.ptr.domain_name",
        "dns.srv.target", "dns.naptr.replacement",
        "dhcp.option.hostname", "dhcp.fqdn.name", "dhcpv6.client_domain",
        "nbns.name", "nbdgm.source_name", "nbdgm.destination_name",
        "browser.server", "lldp.tlv.system.name", "cdp.deviceid",
    ]
)
_CALL_ID_FIELD = "sip.Call-ID"

EXEMPT_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "0.0.0.0", "255.255.255.255", "127.0.0.1", "::", "::1",
))
EXEMPT_MACS = frozenset({bytes(6), b"\xff" * 6})
SOLICITED_NODE_MAC_PREFIX = b"\x33\x33\xff"

# Names that identify nobody: loopback, RFC 3323 anonymity, and the
# special-use domains of RFC 6761/6762 that "_sip._udp.local" reduces to.
EXEMPT_NAMES = frozenset({
    "localhost", "localdomain", "anonymous", "anonymous.invalid", "invalid",
    "local", "test", "example", "arpa", "in-addr.arpa", "ip6.arpa", "home.arpa",
})
MIN_NAME_LENGTH = 3
# A codec with its clock rate ("PCMU/8000", SIPp's display name) is SDP
# vocabulary that every a=rtpmap line spells: it names nobody.
CODEC_NAME = re.compile(r"[A-Za-z0-9.-]+/[0-9]{4,6}(?:/[0-9])?")
# All-digit user parts shorter than this (extensions such as 201) collide
# with CSeq numbers, status codes, lengths and ports, so they only count
# where a URI, a digest username or a display name puts them
# (see _name_in_context).
SHORT_NUMBER_DIGITS = 7

STUN_MAGIC_COOKIE = 0x2112A442

_IPV4_RUN = frozenset(b"0123456789.")
_IPV6_RUN = frozenset(b"0123456789abcdefABCDEF:.")
_MAC_RUN = frozenset(b"0123456789abcdefABCDEF:.-")
_HEX = frozenset(b"0123456789abcdefABCDEF")
# Characters that continue a word: a name glued to one of these is part of
# a longer, different word.  Bytes >= 0x80 are UTF-8 letters.
_WORD = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  + bytes(range(0x80, 0x100)))
_HOST_WORD = _WORD | frozenset(b"-_")

_MAC_TEXT = re.compile(
    r"[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}"
)
# Fields that name a product and its version ("Asterisk PBX 1.6.1.21",
# "DeskPhone V4.2.0.0"): a dotted quad that appears in one is learned only
# from an address field, never from text.
_PRODUCT_FIELDS = frozenset({"sip.User-Agent", "sip.Server", "http.user_agent", "http.server"})
# A split IPv6 literal (tshark reads "sip:fe80::1" as host "fe80") or a
# number is not a host name.
_NOT_A_HOST = re.compile(r"[0-9a-f]{1,4}|[0-9.]+")
# Letters (any script), digits, '_', '.', '-': not "<Root>" or a NetBIOS
# "\x01\x02__MSBROWSE__\x02".
_HOST_CHARS = re.compile(r"[\w.-]+")


# --------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Identifiers:
    """Everything in one original capture that a redactor must not let through.

    ``users`` (SIP user parts and display names) match case-sensitively;
    ``hosts`` are stored lower-case and match case-insensitively.
    ``origin`` says where each identifier was first learned (identifier text
    -> e.g. "frame 3 ip.src"), so that a reported leak can be traced back.
    """

    addresses: frozenset[IPAddress]
    macs: frozenset[bytes]
    users: frozenset[str]
    hosts: frozenset[str]
    origin: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Leak:
    """One occurrence of an original identifier in the redacted file.

    ``offset`` is the file offset (None for a finding of the decoded view,
    which has no byte position); ``frame`` is the 1-based frame number of the
    redacted file, None outside packet records.
    """

    identifier: str
    form: str
    frame: int | None
    offset: int | None
    learned_from: str = field(compare=False)

    def __str__(self) -> str:
        where = f"frame {self.frame}" if self.frame is not None else "file metadata"
        at = f", file offset {self.offset}" if self.offset is not None else ""
        return (f"{self.identifier} as {self.form} in {where}{at}"
                f" (learned from {self.learned_from})")


class BrokenChecksum(NamedTuple):
    """A checksum that was good in the original and is bad in the output.

    ``frame`` numbers the redacted file, ``original_frame`` the original;
    ``layer`` counts occurrences of the protocol in the frame (2 is e.g. the
    IP header quoted inside an ICMP error, or the inner header of a tunnel).
    """

    frame: int
    protocol: str
    original_frame: int
    layer: int


# --------------------------------------------------------------------------
# tshark


@functools.cache
def _field_types() -> dict[str, str]:
    """Field name -> tshark type (FT_IPv4, ...), from ``tshark -G fields``.

    Cached per process: the table has ~240 000 lines and never changes.
    """
    out = subprocess.run([TSHARK, "-G", "fields"], capture_output=True,
                         text=True, check=True).stdout
    types = {}
    for line in out.splitlines():
        cols = line.split("\t")
        if cols[0] == "F" and len(cols) > 3:
            types[cols[2]] = cols[3]
    return types


def _run_tshark(args: list[str]) -> Iterator[bytes]:
    """Yield tshark's stdout in chunks; raise if tshark failed.

    A capture cut short in the middle of a packet makes tshark exit 2 after
    printing every complete packet: that output is still good.
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([TSHARK, *args], stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        yield from iter(lambda: proc.stdout.read(1 << 16), b"")
        proc.stdout.close()
        rc = proc.wait()
        err.seek(0)
        message = err.read().decode(errors="replace")
    if rc != 0 and "cut short" not in message:
        raise RuntimeError(f"tshark {' '.join(args)} failed ({rc}): {message}")


class _PdmlField(NamedTuple):
    frame: int
    name: str
    show: str
    pos: int  # offset in the frame, for fields of the frame's own bytes
    size: int


def _pdml_fields(capture: Path) -> Iterator[_PdmlField]:
    """Every named field of every frame, as tshark's PDML shows it.

    A bare expat parser, not ElementTree: PDML runs to tens of megabytes and
    no tree is needed."""
    parser = xml.parsers.expat.ParserCreate()
    fields: list[_PdmlField] = []
    frame = 0

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal frame
        if tag != "field":
            return
        name, show = attrs.get("name"), attrs.get("show")
        if name == "frame.number":
            frame = int(show)
        elif name and show is not None:
            fields.append(_PdmlField(frame, name, show, int(attrs.get("pos", 0)),
                                     int(attrs.get("size", 0))))

    parser.StartElementHandler = start
    for chunk in _run_tshark(["-r", str(capture), "-T", "pdml", *_DISSECT_OPTIONS]):
        parser.Parse(chunk, False)
        yield from fields
        fields.clear()
    parser.Parse(b"", True)
    yield from fields


def _tshark_fields(capture: Path, fields: Iterable[str], options: Iterable[str]) -> list[list[str]]:
    """``tshark -T fields`` rows: one list of column strings per frame."""
    args = ["-r", str(capture), "-n", *options, "-T", "fields", "-E", "occurrence=a",
            "-E", "aggregator=,", "-E", "separator=/t"]
    for name in fields:
        args += ["-e", name]
    text = b"".join(_run_tshark(args)).decode()
    return [line.split("\t") for line in text.splitlines()]


# --------------------------------------------------------------------------
# Capture file structure


class Region(NamedTuple):
    """A byte range of the file that holds packet or address data.

    ``frame`` is the 1-based frame number for packet data, None for the
    pcapng interface options and name-resolution records, whose ``kind`` is
    the option or record name.
    """

    start: int
    end: int
    frame: int | None
    kind: str


_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("little", 16), b"\xa1\xb2\xc3\xd4": ("big", 16),
    b"\x4d\x3c\xb2\xa1": ("little", 16), b"\xa1\xb2\x3c\x4d": ("big", 16),
    b"\x34\xcd\xb2\xa1": ("little", 24), b"\xa1\xb2\xcd\x34": ("big", 24),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_IDB_ADDRESS_OPTIONS = {4: ("if_IPv4addr", 4), 5: ("if_IPv6addr", 16),
                        6: ("if_MACaddr", 6), 7: ("if_EUIaddr", 8)}
_NRB_RECORDS = {1: ("nrb_ipv4", 4), 2: ("nrb_ipv6", 16)}
_IP_METADATA_SIZES = {"if_IPv4addr": 4, "nrb_ipv4": 4, "if_IPv6addr": 16, "nrb_ipv6": 16}


def _capture_regions(blob: bytes) -> list[Region]:
    """The data regions of a pcap or pcapng file, in file order.

    Why walk the file by hand: a 4-byte address is only worth reporting
    where packet data is, never in timestamps or lengths of record headers.
    """
    magic = blob[:4]
    if magic in _PCAP_MAGICS:
        return _pcap_regions(blob, *_PCAP_MAGICS[magic])
    if magic == _PCAPNG_SHB:
        return _pcapng_regions(blob)
    raise ValueError("not a pcap or pcapng file")


def _pcap_regions(blob: bytes, order: str, header_size: int) -> list[Region]:
    regions = []
    pos = 24
    while pos + header_size <= len(blob):
        caplen = int.from_bytes(blob[pos + 8:pos + 12], order)
        start = pos + header_size
        end = min(start + caplen, len(blob))
        regions.append(Region(start, end, len(regions) + 1, "packet"))
        pos = start + caplen
    return regions


def _pcapng_regions(blob: bytes) -> list[Region]:
    regions = []
    frame = 0
    order = "little"
    pos = 0
    while pos + 12 <= len(blob):
        block_type = blob[pos:pos + 4]
        if block_type == _PCAPNG_SHB:
            order = "little" if blob[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else "big"
        length = int.from_bytes(blob[pos + 4:pos + 8], order)
        if length < 12:
            break
        end = min(pos + length - 4, len(blob))
        code = int.from_bytes(block_type, order)
        if code in (2, 6):  # obsolete Packet Block, Enhanced Packet Block
            frame += 1
            caplen = int.from_bytes(blob[pos + 20:pos + 24], order)
            regions.append(Region(pos + 28, min(pos + 28 + caplen, end), frame, "packet"))
        elif code == 3:  # Simple Packet Block
            frame += 1
            caplen = int.from_bytes(blob[pos + 8:pos + 12], order)
            regions.append(Region(pos + 12, min(pos + 12 + caplen, end), frame, "packet"))
        elif code == 1:  # Interface Description Block
            regions += _tlv_regions(blob, pos + 16, end, order, _IDB_ADDRESS_OPTIONS, False)
        elif code == 4:  # Name Resolution Block: records padded like options
            regions += _tlv_regions(blob, pos + 8, end, order, _NRB_RECORDS, True)
        pos += length
    return regions


def _tlv_regions(blob: bytes, pos: int, end: int, order: str,
                 wanted: dict[int, tuple[str, int]], with_names: bool) -> list[Region]:
    """Regions of pcapng options (or NRB records) whose code is in ``wanted``.

    An option's region holds its address; an NRB record's region also holds
    the zero-terminated names that follow the address (``with_names``).
    """
    regions = []
    while pos + 4 <= end:
        code = int.from_bytes(blob[pos:pos + 2], order)
        size = int.from_bytes(blob[pos + 2:pos + 4], order)
        if code == 0:
            break
        if code in wanted:
            kind, address_size = wanted[code]
            if size >= address_size:
                span = size if with_names else address_size
                regions.append(Region(pos + 4, min(pos + 4 + span, end), None, kind))
        pos += 4 + (size + 3) // 4 * 4
    return regions


class _Locator:
    """Maps a file offset to the data region that holds it."""

    def __init__(self, regions: list[Region]):
        self.regions = regions
        self.starts = [r.start for r in regions]

    def region(self, start: int, end: int) -> Region | None:
        """The region wholly containing [start, end), if any."""
        i = bisect.bisect_right(self.starts, start) - 1
        if i >= 0 and end <= self.regions[i].end:
            return self.regions[i]
        return None


# --------------------------------------------------------------------------
# Identifier encodings


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def _label(identifier: IPAddress | bytes | str) -> str:
    if isinstance(identifier, bytes):
        return mac_text(identifier)
    return str(identifier)


def _eui64(mac: bytes) -> bytes:
    """The modified EUI-64 interface identifier SLAAC derives from a MAC."""
    return bytes([mac[0] ^ 0x02]) + mac[1:3] + b"\xff\xfe" + mac[3:]


def _ipv6_texts(address: ipaddress.IPv6Address) -> set[str]:
    """Textual forms of an IPv6 address that a glued match can be found by.

    Any other spelling is still caught when it stands alone: every IPv6-looking
    run of the file is parsed (see _text_hits).
    """
    groups = address.exploded.split(":")
    forms = {address.compressed, address.exploded,
             ":".join(g.lstrip("0") or "0" for g in groups)}
    if address.ipv4_mapped is not None:
        v4 = str(address.ipv4_mapped)
        forms |= {f"::ffff:{v4}", f"0:0:0:0:0:ffff:{v4}", f"0000:0000:0000:0000:0000:ffff:{v4}"}
    return forms


def _mac_texts(mac: bytes) -> set[str]:
    h = mac.hex()
    return {mac_text(mac), "-".join(h[i:i + 2] for i in range(0, 12, 2)),
            f"{h[0:4]}.{h[4:8]}.{h[8:12]}"}


def _dns_labels(host: str) -> bytes:
    """A host name in DNS wire format, without the root label (so that a
    compressed tail or a longer name still matches)."""
    out = b""
    for label in host.encode().split(b"."):
        if not label or len(label) > 63:
            return b""
        out += bytes([len(label)]) + label
    return out


def _netbios(host: str) -> bytes:
    """NetBIOS first-level encoding of the 15-character name (RFC 1001)."""
    name = host.upper().encode().ljust(15)[:15]
    return bytes(c for b in name for c in (0x41 + (b >> 4), 0x41 + (b & 0xF)))


@functools.lru_cache(maxsize=65536)
def _address_field(name: str, ftype: str, show: str) -> IPAddress | bytes | None:
    """The value of an FT_IPv4/FT_IPv6/FT_ETHER field (a MAC as 6 bytes), or
    None for a field that holds no address (netmasks, the DHCP cookie).

    Cached: a capture repeats the same few addresses thousands of times."""
    if name in _NON_ADDRESS_FIELDS or "mask" in name:
        return None
    try:
        if ftype == "FT_ETHER":
            value = bytes.fromhex(show.replace(":", ""))
            return value if len(value) == 6 else None
        return ipaddress.ip_address(show)
    except ValueError:
        return None


def _ip_literal(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _ipv6_of(text: str) -> ipaddress.IPv6Address | None:
    """An IPv6 run of text as an address: a single leading or trailing colon
    (as in "sip:fe80::1") and a trailing dot belong to the surrounding text."""
    text = text.rstrip(".")
    if text.startswith(":") and not text.startswith("::"):
        text = text[1:]
    if text.endswith(":") and not text.endswith("::"):
        text = text[:-1]
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        return None


def _dotted_quads(data: bytes) -> Iterator[tuple[ipaddress.IPv4Address, re.Match[bytes]]]:
    """Maximal runs of digits and dots that are one IPv4 address (dots at
    either end belong to the surrounding text)."""
    for m in re.finditer(rb"[0-9.]{7,}", data):
        try:
            yield ipaddress.IPv4Address(m[0].strip(b".").decode()), m
        except ValueError:
            continue


def _run(data: bytes, start: int, end: int, chars: frozenset[int]) -> tuple[int, int]:
    """Extend [start, end) to the maximal run of ``chars`` around it."""
    while start > 0 and data[start - 1] in chars:
        start -= 1
    while end < len(data) and data[end] in chars:
        end += 1
    return start, end


def _find_all(data: bytes, needle: bytes) -> Iterator[int]:
    if not needle:
        return
    pos = data.find(needle)
    while pos != -1:
        yield pos
        pos = data.find(needle, pos + 1)


# --------------------------------------------------------------------------
# Learning


class _Learner:
    """Collects identifiers with the first place each was seen."""

    def __init__(self) -> None:
        self.addresses: set[IPAddress] = set()
        self.macs: set[bytes] = set()
        self.users: set[str] = set()
        self.hosts: set[str] = set()
        self.origin: dict[str, str] = {}

    def _note(self, identifier: IPAddress | bytes | str, where: str) -> None:
        self.origin.setdefault(_label(identifier), where)

    def address(self, address: IPAddress, where: str) -> None:
        if address in self.addresses:
            return
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            self.address(address.ipv4_mapped, where)
        self.addresses.add(address)
        self._note(address, where)

    def mac(self, mac: bytes, where: str) -> None:
        if mac not in self.macs:
            self.macs.add(mac)
            self._note(mac, where)

    def user(self, text: str, where: str) -> None:
        text = text.strip().strip('"\\').strip()
        if (literal := _ip_literal(text)) is not None:
            self.address(literal, where)
        elif len(text) >= MIN_NAME_LENGTH and text.lower() not in EXEMPT_NAMES and not CODEC_NAME.fullmatch(text):
            self.users.add(text)
            self._note(text, where)

    def host(self, text: str, where: str) -> None:
        text = re.sub(r"<[0-9a-fA-F]{2}>$", "", text.strip().strip('"')).strip().rstrip(".")
        if (literal := _ip_literal(text)) is not None:
            self.address(literal, where)
            return
        host = text.lower()
        # A DNS-SD service type (_sip._udp.local, _services._dns-sd._udp.local) is vocabulary.
        service_type = all(label.startswith("_") or label in EXEMPT_NAMES for label in host.split("."))
        if (len(host) >= MIN_NAME_LENGTH and host not in EXEMPT_NAMES and not service_type
                and _HOST_CHARS.fullmatch(host) and not _NOT_A_HOST.fullmatch(host)):
            self.hosts.add(host)
            self._note(host, where)
        # "_sip._udp.example.com": the domain itself is an identifier too.
        labels = host.split(".")
        if labels[0].startswith("_"):
            self.host(".".join(l for l in labels if not l.startswith("_")), where)

    def text(self, data: bytes, where: str, versions: set[ipaddress.IPv4Address]) -> None:
        """Learn addresses written as text: IPv4 dotted quads, IPv6 and MACs.

        A run must be exactly one address: "1.2.3.4.5" or the middle of an
        SDP fingerprint "AB:CD:..." teaches nothing.  Dotted quads in
        ``versions`` are product versions; "4.3.2.1.in-addr.arpa" teaches
        1.2.3.4; an IPv6 run needs two groups and six characters, so that
        "4::" in binary data is not taken for an address.
        """
        for address, m in _dotted_quads(data):
            if m[0].endswith(b".") and data[m.end():m.end() + 12].lower() == b"in-addr.arpa":
                address = ipaddress.IPv4Address(address.packed[::-1])
            if address not in versions:
                self.address(address, where)
        for m in re.finditer(rb"[0-9A-Fa-f:.]{6,}", data):
            run = m[0].decode()
            if ("::" not in run and run.count(":") < 7) or len(re.findall(r"[^:]+", run)) < 2:
                continue
            address = _ipv6_of(run)
            if address is None and (port := re.fullmatch(r"(.*[^:]):\d{1,5}", run)):
                address = _ipv6_of(port[1])  # "fe80:0:0:0:21a:a0ff:fe07:32e0:5060"
            if address is not None:
                self.address(address, where)
        for m in re.finditer(rb"[0-9A-Fa-f:.-]{14,}", data):
            run = m[0].strip(b".").decode().lower()
            if _MAC_TEXT.fullmatch(run):
                self.mac(bytes.fromhex(re.sub(r"[:.-]", "", run)), where)

    def pdml_field(self, f: _PdmlField, ftype: str | None, strings: bytearray,
                   products: bytearray) -> None:
        where = f"frame {f.frame} {f.name}"
        if ftype in _ADDRESS_TYPES:
            value = _address_field(f.name, ftype, f.show)
            if isinstance(value, bytes):
                self.mac(value, where)
            elif value is not None:
                self.address(value, where)
        elif f.name in _USER_FIELDS or f.name in _DISPLAY_FIELDS:
            self.user(f.show, where)
        elif f.name in _HOST_FIELDS:
            self.host(f.show, where)
        elif f.name == _CALL_ID_FIELD and "@" in f.show:
            self.host(f.show.rsplit("@", 1)[1], where)
        if ftype in _STRING_TYPES:
            strings += f.show.encode() + b"\n"
        if f.name in _PRODUCT_FIELDS:
            products += f.show.encode() + b"\n"

    def freeze(self, keep: Iterable[str]) -> Identifiers:
        networks, macs, names = _parse_keep(keep)
        addresses = {a for a in self.addresses - EXEMPT_ADDRESSES
                     if not any(a in n for n in networks)}
        hosts = {h for h in self.hosts if h not in names}
        users = {u for u in self.users if u.lower() not in names}
        return Identifiers(frozenset(addresses),
                           frozenset(m for m in self.macs - macs if not exempt_mac(m)),
                           frozenset(users), frozenset(hosts), dict(self.origin))


def exempt_mac(mac: bytes) -> bool:
    """Whether a MAC identifies nobody: the all-zero MAC, and group MACs
    (I/G bit set: broadcast, 01:00:5e:... and 33:33:... multicast), which
    name a group, not a station -- except the IPv6 solicited-node group
    33:33:ff:xx:xx:xx, which carries the low 24 bits of a unicast address."""
    return mac in EXEMPT_MACS or (bool(mac[0] & 1) and not mac.startswith(SOLICITED_NODE_MAC_PREFIX))


def _parse_keep(keep: Iterable[str]) -> tuple[list, set[bytes], set[str]]:
    """Split ``keep`` into networks (addresses are /32 or /128), MACs and names."""
    networks, macs, names = [], set(), set()
    for item in keep:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
            continue
        except ValueError:
            pass
        if _MAC_TEXT.fullmatch(item.lower()):
            macs.add(bytes.fromhex(re.sub(r"[:.-]", "", item)))
        else:
            names.add(item.lower())
    return networks, macs, names


def _learn_metadata(learner: _Learner, blob: bytes, regions: list[Region]) -> None:
    """Addresses and names of pcapng interface options and name records,
    which tshark shows no field for."""
    for r in regions:
        value = blob[r.start:r.end]
        where = f"pcapng {r.kind}"
        if (size := _IP_METADATA_SIZES.get(r.kind)) is not None:
            if len(value) >= size:
                learner.address(ipaddress.ip_address(value[:size]), where)
            if r.kind.startswith("nrb"):
                for name in value[size:].split(b"\0"):
                    if name:
                        learner.host(name.decode(errors="replace"), where)
        elif r.kind == "if_MACaddr" and len(value) == 6:
            learner.mac(value, where)


def _learn_hep3(learner: _Learner, blob: bytes, regions: list[Region]) -> None:
    """Inner addresses of HEP3 (homer) encapsulation, which tshark 4.0 does
    not dissect.  Chunk types 3/4 are the IPv4, 5/6 the IPv6 source and
    destination of the encapsulated packet."""
    for r in regions:
        if r.frame is None:
            continue
        data = blob[r.start:r.end]
        for pos in _find_all(data, b"HEP3"):
            end = min(pos + int.from_bytes(data[pos + 4:pos + 6], "big"), len(data))
            p = pos + 6
            while p + 6 <= end:
                vendor = int.from_bytes(data[p:p + 2], "big")
                ctype = int.from_bytes(data[p + 2:p + 4], "big")
                clen = int.from_bytes(data[p + 4:p + 6], "big")
                if clen < 6:
                    break
                value = data[p + 6:p + clen]
                if vendor == 0 and (ctype, len(value)) in ((3, 4), (4, 4), (5, 16), (6, 16)):
                    learner.address(ipaddress.ip_address(value), f"frame {r.frame} HEP3 chunk {ctype}")
                p += clen


def original_identifiers(original: Path, keep: Iterable[str] = ()) -> Identifiers:
    """Learn every identifier of an original capture, independently of the
    product.

    Sources: every tshark field typed FT_IPv4/FT_IPv6/FT_ETHER at any depth
    (except netmasks and the DHCP cookie); SIP user parts, display names and
    host names, the Call-ID host, DNS/DHCP/NetBIOS/LLDP/CDP names; IPv4,
    IPv6 and MAC text anywhere in the raw bytes and in tshark's decoded
    strings (which include unmasked WebSocket payloads); pcapng interface
    address options and name-resolution records; HEP3 address chunks.

    ``keep`` lists addresses, CIDR networks, MACs or names the user asked to
    leave unmasked: they are not identifiers.  EXEMPT_ADDRESSES, EXEMPT_NAMES
    and the MACs of ``exempt_mac`` never are.
    """
    blob = original.read_bytes()
    regions = _capture_regions(blob)
    learner = _Learner()
    _learn_metadata(learner, blob, regions)
    _learn_hep3(learner, blob, regions)
    types = _field_types()
    strings, products = bytearray(), bytearray()
    for f in _pdml_fields(original):
        learner.pdml_field(f, types.get(f.name), strings, products)
    versions = {address for address, _ in _dotted_quads(bytes(products))}
    learner.text(blob, "raw text", versions)
    learner.text(bytes(strings), "decoded text", versions)
    return learner.freeze(keep)


# --------------------------------------------------------------------------
# Searching


class _Hit(NamedTuple):
    identifier: str
    form: str
    run: int  # start of the maximal run: one key per occurrence, whatever the form
    start: int
    end: int


def _name_bounded(data: bytes, start: int, end: int, word: frozenset[int]) -> bool:
    """A name glued to word characters is part of a longer, different word."""
    glued_before = data[start] in word and start > 0 and data[start - 1] in word
    glued_after = data[end - 1] in word and end < len(data) and data[end] in word
    return not (glued_before or glued_after)


def _name_in_context(data: bytes, start: int, end: int) -> bool:
    """Whether a short all-digit name sits where only an identity goes:
    after sip:/sips:/tel: or username=", before '@', or as a quoted
    display name ("201" <sip:...>)."""
    before, after = data[max(0, start - 10):start], data[end:end + 3]
    return (before.endswith((b"sip:", b"sips:", b"tel:", b'username="')) or after[:1] == b"@"
            or (before.endswith(b'"') and after.startswith((b'" <', b'"<'))))


def _text_hits(ids: Identifiers, data: bytes) -> Iterator[_Hit]:
    """Every textual occurrence of an identifier in ``data``.

    Text glued to other characters counts ("fc8192.168.1.2" leaks
    192.168.1.2), except when the maximal run of address characters around
    the match is itself a valid, different address of the same kind
    ("10.0.0.15" does not leak 0.0.0.1).
    """
    lower = data.lower()
    macs_by_eui64 = {_eui64(m): m for m in ids.macs}
    for address in ids.addresses:
        label = str(address)
        if isinstance(address, ipaddress.IPv4Address):
            needle = label.encode()
            for pos in _find_all(data, needle):
                s, e = _run(data, pos, pos + len(needle), _IPV4_RUN)
                try:
                    if ipaddress.IPv4Address(data[s:e].strip(b".").decode()) != address:
                        continue
                except ValueError:
                    pass
                yield _Hit(label, "ipv4 text", s, pos, pos + len(needle))
        else:
            for text in _ipv6_texts(address):
                needle = text.encode()
                for pos in _find_all(lower, needle):
                    s, e = _run(lower, pos, pos + len(needle), _IPV6_RUN)
                    run = lower[s:e].decode()
                    found = _ipv6_of(run)
                    if found is not None and found != address and not re.fullmatch(
                            re.escape(text) + r":\d{1,5}", run.strip(":.")):
                        continue
                    yield _Hit(label, "ipv6 text", s, pos, pos + len(needle))
    # Any other spelling of an IPv6 address, when it stands alone; and MACs
    # embedded in IPv6 interface identifiers (SLAAC).
    for m in re.finditer(rb"[0-9a-f:.]{2,}", lower):
        run = m[0].decode()
        if "::" not in run and run.count(":") < 7:
            continue
        found = _ipv6_of(run)
        if found is None:
            continue
        if found in ids.addresses:
            yield _Hit(str(found), "ipv6 text", m.start(), m.start(), m.end())
        mac = macs_by_eui64.get(found.packed[8:])
        if mac is not None:
            yield _Hit(mac_text(mac), "mac in ipv6 interface id (text)", m.start(), m.start(), m.end())
    for mac in ids.macs:
        label = mac_text(mac)
        for text in _mac_texts(mac):
            needle = text.encode()
            for pos in _find_all(lower, needle):
                s, e = _run(lower, pos, pos + len(needle), _MAC_RUN)
                run = lower[s:e].strip(b".:-").decode()
                if _MAC_TEXT.fullmatch(run) and bytes.fromhex(re.sub(r"[:.-]", "", run)) != mac:
                    continue
                yield _Hit(label, "mac text", s, pos, pos + len(needle))
        needle = mac.hex().encode()
        for pos in _find_all(lower, needle):
            if _run(lower, pos, pos + 12, _HEX) == (pos, pos + 12):
                yield _Hit(label, "mac bare hex text", pos, pos, pos + 12)
    for user in ids.users:
        needle = user.encode()
        short_number = user.isdigit() and len(user) < SHORT_NUMBER_DIGITS
        for pos in _find_all(data, needle):
            end = pos + len(needle)
            if _name_bounded(data, pos, end, _WORD) and (
                    not short_number or _name_in_context(data, pos, end)):
                yield _Hit(user, "name text", pos, pos, end)
    for host in ids.hosts:
        yield from _host_hits(host, host, "host name", lower)
        if "." not in host and len(host) <= 15:
            encoded = _netbios(host)
            for pos in _find_all(data, encoded):
                yield _Hit(host, "host name in netbios encoding", pos, pos, pos + len(encoded))
    for address in ids.addresses:
        yield from _host_hits(str(address), address.reverse_pointer, "reverse dns name", lower)


def _host_hits(label: str, host: str, form: str, lower: bytes) -> Iterator[_Hit]:
    """A host name as text (not inside a longer label) and in DNS wire
    format, in lower-cased data."""
    needle = host.encode()
    for pos in _find_all(lower, needle):
        if _name_bounded(lower, pos, pos + len(needle), _HOST_WORD):
            yield _Hit(label, f"{form} text", pos, pos, pos + len(needle))
    labels = _dns_labels(host)
    for pos in _find_all(lower, labels):
        yield _Hit(label, f"{form} in dns wire format", pos, pos, pos + len(labels))


def _low_entropy(packed: bytes) -> bool:
    """Mostly 0x00/0xff bytes (00:00:00:00:00:01, 0.0.0.1): such a 4- or
    6-byte pattern turns up by chance in padding, counters and in other
    addresses (::1 ends with 00:00:00:00:00:01)."""
    return sum(b in (0x00, 0xFF) for b in packed) * 2 > len(packed)


def _binary_needles(ids: Identifiers) -> Iterator[tuple[str, str, bytes]]:
    """(identifier, form, bytes) of every binary encoding searched for.

    Low-entropy IPv4 and MAC patterns are left to the decoded view, which
    still compares every dissected address field.
    """
    cookie = STUN_MAGIC_COOKIE.to_bytes(4, "big")
    for address in ids.addresses:
        packed = address.packed
        if address.version == 6:
            yield str(address), "ipv6 binary", packed
        elif not _low_entropy(packed):
            yield str(address), "ipv4 binary", packed
            yield str(address), "ipv4 binary, stun xor", bytes(a ^ b for a, b in zip(packed, cookie))
    for mac in ids.macs:
        if not _low_entropy(mac):
            yield mac_text(mac), "mac binary", mac
        yield mac_text(mac), "mac in eui-64 binary", _eui64(mac)


def _binary_hits(ids: Identifiers, blob: bytes, locator: _Locator,
                 media: dict[int, list[tuple[int, int]]]) -> Iterator[tuple[_Hit, Region]]:
    """Binary occurrences that lie wholly inside a data region and outside
    RTP payloads (``media``: frame -> payload spans), where audio samples
    match a 4-byte pattern by chance and no address is ever carried.

    IPv6 XOR-MAPPED addresses are XORed with the STUN transaction id, which
    only a parse can know: the decoded view (tshark's un-XORed
    stun.att.ipv6) finds those.
    """
    for label, form, needle in _binary_needles(ids):
        for pos in _find_all(blob, needle):
            region = locator.region(pos, pos + len(needle))
            if region is None:
                continue
            at = pos - region.start
            if any(s <= at and at + len(needle) <= e for s, e in media.get(region.frame, ())):
                continue
            yield _Hit(label, form, pos, pos, pos + len(needle)), region


class _DecodedView(NamedTuple):
    leaks: list[Leak]
    media: dict[int, list[tuple[int, int]]]  # frame -> RTP payload spans


def _decoded_view(ids: Identifiers, redacted: Path) -> _DecodedView:
    """Leaks that tshark's dissection of the redacted file shows, and where
    its RTP payloads are.

    Address-typed fields are compared as values; string fields are searched
    as text.  This sees what the raw bytes hide: masked WebSocket payloads,
    un-XORed STUN addresses, reassembled PDUs.  Fields of size 0 are skipped:
    they annotate a frame with state from another one (every RTP packet
    repeats the Call-ID of the SIP dialog that set its stream up).
    """
    types = _field_types()
    leaks: list[Leak] = []
    media: dict[int, list[tuple[int, int]]] = {}
    strings = bytearray()
    starts: list[int] = []
    owners: list[_PdmlField] = []
    for f in _pdml_fields(redacted):
        if f.size == 0:
            continue
        ftype = types.get(f.name)
        if f.name == "rtp.payload":
            media.setdefault(f.frame, []).append((f.pos, f.pos + f.size))
        elif ftype in _ADDRESS_TYPES:
            value = _address_field(f.name, ftype, f.show)
            if value in ids.addresses or value in ids.macs:
                label = _label(value)
                leaks.append(Leak(label, f"decoded {f.name}", f.frame, None,
                                  ids.origin.get(label, "")))
        elif ftype in _STRING_TYPES:
            starts.append(len(strings))
            owners.append(f)
            strings += f.show.encode() + b"\n"
    for hit in _text_hits(ids, bytes(strings)):
        owner = owners[bisect.bisect_right(starts, hit.start) - 1]
        leaks.append(Leak(hit.identifier, f"decoded {owner.name}: {hit.form}", owner.frame,
                          None, ids.origin.get(hit.identifier, "")))
    return _DecodedView(leaks, media)


def find_leaks(identifiers: Identifiers, redacted: Path) -> list[Leak]:
    """Every occurrence of an original identifier in the redacted file.

    Text forms are searched in the whole file (records, headers, pcapng
    options and comments); binary forms only inside packet data and pcapng
    address options/name records, where a chance match of 4 bytes is not
    a timestamp or a length, and never inside an RTP payload.  A finding of the decoded view is reported only
    for an identifier and frame the raw search did not already report.
    Sorted by frame, then offset.
    """
    blob = redacted.read_bytes()
    locator = _Locator(_capture_regions(blob))
    decoded = _decoded_view(identifiers, redacted)
    leaks: dict[tuple[str, int], Leak] = {}
    for hit in _text_hits(identifiers, blob):
        region = locator.region(hit.start, hit.end)
        frame = region.frame if region is not None else None
        leaks.setdefault((hit.identifier, hit.run), Leak(
            hit.identifier, hit.form, frame, hit.start, identifiers.origin.get(hit.identifier, "")))
    for hit, region in _binary_hits(identifiers, blob, locator, decoded.media):
        leaks.setdefault((hit.identifier, hit.run), Leak(
            hit.identifier, hit.form, region.frame, hit.start,
            identifiers.origin.get(hit.identifier, "")))
    found = list(leaks.values())
    seen = {(leak.identifier, leak.frame) for leak in found}
    for leak in decoded.leaks:
        if (leak.identifier, leak.frame) not in seen:
            seen.add((leak.identifier, leak.frame))
            found.append(leak)
    return sorted(found, key=lambda k: (k.frame or 0, k.offset or 0, k.identifier))


# --------------------------------------------------------------------------
# Checksums

_CHECKSUM_OPTIONS = (
    "-o", "ip.check_checksum:TRUE",
    "-o", "udp.check_checksum:TRUE",
    "-o", "tcp.check_checksum:TRUE",
    "-o", "sctp.checksum:CRC 32c",  # RFC 4960; Adler-32 died with RFC 2960
)
# ICMP and ICMPv6 checksums are always verified by tshark.
_CHECKSUM_STATUS_FIELDS = {p: f"{p}.checksum.status"
                           for p in ("ip", "udp", "tcp", "sctp", "icmp", "icmpv6")}
_GOOD, _BAD = "1", "0"


def _checksum_statuses(capture: Path) -> list[dict[str, list[str]]]:
    """Per frame (index 0 = frame 1): protocol -> status of each occurrence."""
    protocols = list(_CHECKSUM_STATUS_FIELDS)
    rows = _tshark_fields(capture, ["frame.number", *_CHECKSUM_STATUS_FIELDS.values()],
                          _CHECKSUM_OPTIONS)
    return [{p: (cols[i + 1].split(",") if i + 1 < len(cols) and cols[i + 1] else [])
             for i, p in enumerate(protocols)} for cols in rows]


def broken_checksums(original: Path, redacted: Path,
                     removed_frames: Iterable[int] = ()) -> list[BrokenChecksum]:
    """Checksums that tshark finds bad in the redacted file but good in the
    original, for IP, UDP, TCP, SCTP, ICMP and ICMPv6, at every layer tshark
    verifies (tunnels, headers quoted in ICMP errors).

    Frames are paired by number; ``removed_frames`` are the original frame
    numbers the redactor dropped, so the output's numbering shifts down past
    each one.  A checksum tshark could not verify in the original (offloaded,
    truncated) is never reported.
    """
    removed = set(removed_frames)
    before = _checksum_statuses(original)
    after = _checksum_statuses(redacted)
    kept = [n for n in range(1, len(before) + 1) if n not in removed]
    broken = []
    for frame, (original_frame, statuses) in enumerate(zip(kept, after), start=1):
        was = before[original_frame - 1]
        for protocol, now in statuses.items():
            for layer, (old, new) in enumerate(zip(was[protocol], now), start=1):
                if old == _GOOD and new == _BAD:
                    broken.append(BrokenChecksum(frame, protocol, original_frame, layer))
    return broken
