"""The verifier's own identifier knowledge (redaction/identifiers.py).

The collector is checked against what was planted in the leak fixtures
(identifiers.json) and against what tshark reads in the IP and Ethernet
headers of every capture; the search is checked on the originals (the worst
possible "redacted" copy, every planted form at its frames) and on copies
scrubbed byte by byte by the helper below, where nothing may be found except
values cut across two records or masked in a WebSocket frame spanning two
segments, which only the SIP the engine reassembles shows.
"""

from __future__ import annotations

import ipaddress
import json
import re
import struct
import subprocess
from pathlib import Path

import pytest
from locations import FIXTURES, SHARED_CAPTURES
from packet_builders import addr, ipv4, ipv6, pcap, pcapng, tcp, udp
from sipdiag.capture.pcapfile import CaptureReader
from sipdiag.capture.scan import LEAK_ALL, LEAK_KEYS, LEAK_MAX_KEYS
from sipdiag.engine import result_for_path
from sipdiag.redaction.identifiers import (
    IdentifierCollector,
    Identifiers,
    Leak,
    LeakSearch,
)

LEAKS = FIXTURES / "leaks"
PLANTED = json.loads((LEAKS / "identifiers.json").read_text())
CAPTURES = sorted(
    [*LEAKS.glob("*.pcap"), *(FIXTURES / "lan").glob("*.pcap"), *(FIXTURES / "encap").glob("*.pcap*"),
     *SHARED_CAPTURES.glob("*.pcap*")],
    key=lambda p: (p.parent.name, p.name),
)
COOKIE = bytes.fromhex("2112a442")
EXEMPT = {ipaddress.ip_address(a) for a in ("0.0.0.0", "255.255.255.255", "127.0.0.1", "::", "::1")}


def collect(data: bytes, chunk: int | None = None, **options) -> Identifiers:
    collector = IdentifierCollector(**options)
    for piece in chunks(data, chunk):
        collector.feed(piece)
    return collector.finish()


def search(identifiers: Identifiers, data: bytes, chunk: int | None = None, patterns=()) -> set[Leak]:
    searcher = LeakSearch(identifiers, patterns)
    for piece in chunks(data, chunk):
        searcher.feed(piece)
    return set(searcher.finish())


def chunks(data: bytes, size: int | None):
    if size is None:
        yield data
        return
    for start in range(0, len(data), size):
        yield data[start : start + size]


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", "").replace("-", ""))


# -- the scrubbing helper: an "ideal redactor" that replaces bytes in place ----


def same_shape(text: str, digit: str, hexdigit: str) -> str:
    """Every decimal digit (or hex digit) replaced, separators kept: same length, same glue."""
    out = []
    for c in text:
        if c.isdigit():
            out.append(digit if c != digit else "8")
        elif c in "abcdefABCDEF":
            out.append(hexdigit if c.lower() != hexdigit else "d")
        else:
            out.append(c)
    return "".join(out)


def oid_arcs(packed: bytes) -> bytes:
    """An address as SNMP OID sub-identifiers (an index of an address table)."""
    return b"".join(bytes([0x80 | b >> 7, b & 0x7F]) if b >= 128 else bytes([b]) for b in packed)


def wire_labels(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode("utf-8", "surrogateescape")
                    for label in name.split(".") if label)


def netbios(name: str) -> bytes:
    return bytes(c for b in name.upper().encode() for c in (0x41 + (b >> 4), 0x41 + (b & 15)))


def casings(value: str) -> set[bytes]:
    return {v.encode("utf-8", "surrogateescape") for v in (value, value.lower(), value.upper(), value.title())}


def scrub_rules(identifiers: Identifiers, transaction_ids: set[bytes]) -> list[tuple[re.Pattern, bytes]]:
    """(pattern, same-length replacement) for every form of every identifier, longest first."""
    literal: list[tuple[bytes, bytes, bool]] = []  # (bytes, replacement, case-insensitive)
    for n, address in enumerate(sorted(identifiers.addresses, key=lambda a: (a.version, a.packed))):
        if address.version == 4:
            stand_in = bytes([198, n >> 8 & 255, n & 255, 18])
            literal.append((address.packed, stand_in, False))
            literal.append((bytes(a ^ b for a, b in zip(address.packed, COOKIE)),
                            bytes(a ^ b for a, b in zip(stand_in, COOKIE)), False))
            if any(b >= 128 for b in address.packed):
                stand_in_arcs = oid_arcs(bytes(200 if b >= 128 else 100 for b in address.packed))
                literal.append((oid_arcs(address.packed), stand_in_arcs, False))
            text = str(address)
            literal.append((text.encode(), same_shape(text, "7", "e").encode(), False))
        else:
            stand_in = bytes.fromhex("fd00") + n.to_bytes(4, "big") + bytes.fromhex("5c4b3a2918070c0d0e0f")
            literal.append((address.packed, stand_in, False))
            for tid in transaction_ids:
                key = COOKIE + tid
                literal.append((bytes(a ^ b for a, b in zip(address.packed, key)),
                                bytes(a ^ b for a, b in zip(stand_in, key)), False))
            for text in {address.compressed, address.exploded}:
                literal.append((text.encode(), same_shape(text, "7", "e").encode(), True))
        reverse = address.reverse_pointer
        literal.append((reverse.encode(), same_shape(reverse, "7", "e").encode(), True))
        # Compression may point "arpa" elsewhere: the labels before it are the form.
        head = reverse.rsplit(".", 1)[0]
        literal.append((wire_labels(head), wire_labels(same_shape(head, "7", "e")), True))
    for n, value in enumerate(sorted(identifiers.macs)):
        literal.append((value, bytes([0x0E, n >> 8 & 255, n & 255, 0x5C, 0x4B, 0x3A]), False))
        eui = bytes([value[0] ^ 2]) + value[1:3] + b"\xff\xfe" + value[3:]
        literal.append((eui, bytes.fromhex("0c5c4b3a2918070c"), False))
        hex12 = value.hex()
        groups = [eui[i : i + 2].hex() for i in range(0, 8, 2)]
        for text in (":".join(hex12[i : i + 2] for i in range(0, 12, 2)), "-".join(hex12[i : i + 2] for i in range(0, 12, 2)),
                     ".".join(hex12[i : i + 4] for i in range(0, 12, 4)), hex12,
                     ":".join(groups), ":".join(g.lstrip("0") or "0" for g in groups)):
            literal.append((text.encode(), same_shape(text, "7", "e").encode(), True))
    for category, values in identifiers.names.items():
        for value in values:
            for form in casings(value):
                literal.append((form, b"x" * len(form), True))
            if category == "host_names":
                for label in value.split("."):
                    if label:
                        raw = label.encode("utf-8", "surrogateescape")
                        literal.append((bytes([len(raw)]) + raw, bytes([len(raw)]) + b"x" * len(raw), True))
            if category == "netbios_names":
                encoded = netbios(value)
                literal.append((encoded, b"A" * len(encoded), False))
    literal.sort(key=lambda rule: -len(rule[0]))
    return [(re.compile(re.escape(old), re.IGNORECASE if folded else 0), new) for old, new, folded in literal]


def masked_websocket(packet: bytes) -> tuple[int, int, bytes] | None:
    """(start, end, key) of a masked WebSocket frame that fills an Ethernet/IPv4/TCP packet's payload."""
    if packet[12:14] != b"\x08\x00" or packet[23] != 6:
        return None
    start = 14 + (packet[14] & 15) * 4
    start += (packet[start + 12] >> 4) * 4
    if len(packet) < start + 8 or packet[start] & 0x0F not in (1, 2) or not packet[start + 1] & 0x80:
        return None
    size, head = packet[start + 1] & 0x7F, 2
    if size == 126:
        size, head = struct.unpack_from("!H", packet, start + 2)[0], 4
    key = packet[start + head : start + head + 4]
    begin = start + head + 4
    return (begin, begin + size, key) if begin + size == len(packet) else None


def apply_rules(data: bytes, rules) -> bytes:
    for pattern, new in rules:
        data = pattern.sub(lambda _match, new=new: new, data)
    return data


def scrub(data: bytes, identifiers: Identifiers) -> bytes:
    """The capture with every identifier replaced in every packet's bytes, record lengths unchanged."""
    blocks = CaptureReader(blocks=True).feed(data)
    transaction_ids = {
        block.data[at + 4 : at + 16] for block in blocks if block.kind == "packet"
        for at in (m.start() for m in re.finditer(re.escape(COOKIE), block.data))
    }
    rules = scrub_rules(identifiers, transaction_ids)
    out = []
    for block in blocks:
        if block.kind == "packet":
            packet = apply_rules(block.data, rules)
            websocket = masked_websocket(packet)
            if websocket:  # a client's frames are masked (RFC 6455 5.3): unmask, scrub, mask again
                begin, end, key = websocket
                keystream = (key * (end - begin))[: end - begin]
                plain = apply_rules(bytes(a ^ b for a, b in zip(packet[begin:end], keystream)), rules)
                packet = packet[:begin] + bytes(a ^ b for a, b in zip(plain, keystream))
            assert len(packet) == len(block.data)
            if packet != block.data:
                block.replace(data=packet)
        out.append(block.encode())
    return b"".join(out)


# -- what the collector learns -------------------------------------------------


def learned(identifiers: Identifiers, category: str, value: str) -> bool:
    if category == "addresses":
        return ipaddress.ip_address(value) in identifiers.addresses
    if category == "mac_addresses":
        return mac(value) in identifiers.macs
    names = {"users": ["users"], "phones": ["users"], "display_names": ["display_names"],
             "domains": ["host_names"], "host_names": ["host_names", "netbios_names"],
             "call_ids": ["call_ids"], "user_agents": ["user_agents"]}[category]
    return any(value in identifiers.names.get(name, ()) for name in names)


@pytest.mark.parametrize("fixture", sorted(PLANTED))
def test_collector_learns_every_planted_identifier(fixture):
    identifiers = collect((LEAKS / fixture).read_bytes())
    missing = [(i["category"], i["value"]) for i in PLANTED[fixture]["identifiers"]
               if not learned(identifiers, i["category"], i["value"])]
    assert missing == []


def tshark_header_values(path: Path) -> tuple[set, set]:
    fields = ["ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "eth.src", "eth.dst"]
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a",
                          *[a for f in fields for a in ("-e", f)]], capture_output=True, text=True, check=True).stdout
    addresses, macs = set(), set()
    for line in out.splitlines():
        for column, cell in enumerate(line.split("\t")):
            for value in filter(None, cell.split(",")):
                if column < 4:
                    addresses.add(ipaddress.ip_address(value))
                else:
                    macs.add(mac(value))
    return addresses - EXEMPT, {m for m in macs if not m[0] & 1 and m != bytes(6)}


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_collector_learns_what_tshark_sees_in_headers(path):
    identifiers = collect(path.read_bytes())
    addresses, macs = tshark_header_values(path)
    assert addresses - identifiers.addresses == set()
    assert {m.hex(":") for m in macs - identifiers.macs} == set()


def test_collector_reads_lan_payload_fields():
    dhcp = collect((FIXTURES / "lan" / "lan_dhcp.pcap").read_bytes())
    assert {ipaddress.ip_address("10.77.0.100"), ipaddress.ip_address("10.77.0.2")} <= dhcp.addresses
    assert mac("02:4a:41:4e:45:01") in dhcp.macs  # chaddr, client identifier
    assert any(name.lower().startswith("jane-laptop") for name in dhcp.names["host_names"])
    dhcpv6 = collect((FIXTURES / "lan" / "lan_dhcpv6.pcap").read_bytes())
    assert ipaddress.ip_address("fd77::100") in dhcpv6.addresses  # IA address
    lldp = collect((FIXTURES / "lan" / "lan_lldp.pcap").read_bytes())
    assert {"jane-laptop", "pbx"} <= lldp.names["host_names"]  # LLDP system name, CDP device id
    mdns = collect((FIXTURES / "lan" / "lan_mdns.pcap").read_bytes())
    assert {"pbx.local", "jane-laptop.local"} <= mdns.names["host_names"]
    assert "_sip._udp.local" not in mdns.names["host_names"]  # vocabulary
    assert {ipaddress.ip_address(a) for a in ("fd77::1", "fd77::2", "10.77.0.1")} <= mdns.addresses
    assert mac("02:50:42:58:00:02") in mdns.macs  # MAC text in the workstation service name


# -- byte-literal packets: the header walk and the payload decoders --------------


def frames(*packets: bytes, linktype: int = 1) -> bytes:
    return pcap([(1700000000 + i, 0, p, len(p)) for i, p in enumerate(packets)], linktype=linktype)


def learns(data: bytes) -> tuple[set[str], set[str], dict]:
    identifiers = collect(data)
    return {str(a) for a in identifiers.addresses}, {m.hex(":") for m in identifiers.macs}, identifiers.names


MAC_A, MAC_B = "00:1a:2b:00:00:0a", "00:1a:2b:00:00:0b"


def eth(payload: bytes, ethertype: int = 0x0800, src: str = MAC_A, dst: str = MAC_B) -> bytes:
    return mac(dst) + mac(src) + struct.pack("!H", ethertype) + payload


def test_collector_walks_tunnels_and_link_types():
    inner = ipv4(udp(b"x" * 8), src="10.9.9.1", dst="10.9.9.2")
    gre_erspan2 = struct.pack("!HHI", 0x1000, 0x88BE, 7) + bytes(8) + eth(inner, src="00:1a:2b:00:00:e1")
    gre_erspan3 = struct.pack("!HH", 0, 0x22EB) + bytes(11) + b"\x01" + bytes(8) + eth(inner, src="00:1a:2b:00:00:e3")
    mpls_pw = struct.pack("!I", 1000 << 12 | 1 << 8 | 64) + bytes(4) + eth(inner, src="00:1a:2b:00:00:f1")
    vxlan = udp(b"\x08\x00\x00\x00\x00\x00\x64\x00" + eth(inner, src="00:1a:2b:00:00:c1"), 1234, 4789)
    gtpu = udp(b"\x36\xff" + struct.pack("!HIHBB", 4 + 4 + 8 + len(inner), 0x101, 1, 0, 0xC0)
               + b"\x01\x00\x00\x85" + b"\x01\x10\x05\x00" + inner, 2152, 2152)
    icmp_quote = struct.pack("!BBHI", 3, 3, 0, 0) + ipv4(udp(b"SIP"), src="10.8.8.1", dst="10.8.8.2")
    wifi_4addr = (struct.pack("<BBH", 0x88, 0x03, 0) + mac("00:1a:2b:00:00:21") + mac("00:1a:2b:00:00:22")
                  + mac("00:1a:2b:00:00:23") + b"\0\0" + mac("00:1a:2b:00:00:24") + b"\x00\x00"
                  + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + ipv4(udp(b""), src="10.7.7.1", dst="10.7.7.2"))
    radiotap = struct.pack("<BBHI", 0, 0, 8, 0) + wifi_4addr
    sll2 = struct.pack("!HHIHBB", 0x0800, 0, 2, 1, 0, 6) + mac("00:1a:2b:00:00:51") + b"\0\0" + ipv4(b"", 6, "10.6.6.1", "10.6.6.2")
    nflog = (b"\x02\x00\x00\x05" + struct.pack("<HH", 8, 1) + b"\x08\x00\x03\x00"
             + struct.pack("<HH", 4 + 20, 9) + ipv4(b"", 6, "10.5.5.1", "10.5.5.2"))
    record_route = struct.pack("!BBHHHBBH4s4s", 0x48, 0, 32, 1, 0, 64, 17, 0, addr("10.4.4.1"), addr("10.4.4.2")) \
        + bytes([7, 11, 8]) + addr("10.4.4.3") + addr("10.4.4.4") + b"\x00"
    sctp_init = ipv4(struct.pack("!HHII", 5060, 5060, 0, 0) + struct.pack("!BBHIIHHI", 1, 0, 20 + 8 + 20, 1, 65535, 1, 1, 1)
                     + struct.pack("!HH", 5, 8) + addr("10.3.3.3") + struct.pack("!HH", 6, 20) + addr("2001:db8:33::3"),
                     132, "10.3.3.1", "10.3.3.2")
    data_by_link = [
        (1, eth(ipv4(gre_erspan2, 47, "10.1.0.1", "10.1.0.2"))),
        (1, eth(ipv4(gre_erspan3, 47, "10.1.0.3", "10.1.0.4"))),
        (1, eth(mpls_pw, 0x8847)),
        (1, eth(ipv4(vxlan, 17, "10.1.0.5", "10.1.0.6"))),
        (1, eth(ipv4(gtpu, 17, "10.1.0.7", "10.1.0.8"))),
        (1, eth(struct.pack("!HH", 0x8100, 0x88A8) + struct.pack("!HH", 200, 0x8864) + b"\x11\x00\x00\x01\x00\x16\x00\x21"
                + ipv4(b"", 6, "10.2.2.1", "10.2.2.2"), 0x8100)),
        (1, eth(ipv4(icmp_quote, 1, "10.1.0.9", "10.8.8.1"))),
        (1, eth(record_route)),
        (1, eth(sctp_init)),
        (105, wifi_4addr),
        (127, radiotap),
        (276, sll2),
        (239, nflog),
        (9, b"\x00\x57" + ipv6(b"", 59, "2001:db8:9::1", "2001:db8:9::2")),
        (104, b"\x0f\x00\x08\x00" + ipv4(b"", 6, "10.0.104.1", "10.0.104.2")),
    ]
    addresses, macs = set(), set()
    for linktype, packet in data_by_link:
        a, m, _ = learns(frames(packet, linktype=linktype))
        addresses |= a
        macs |= m
    assert {"10.9.9.1", "10.9.9.2", "10.8.8.1", "10.8.8.2", "10.7.7.1", "10.7.7.2", "10.6.6.1", "10.5.5.1",
            "10.4.4.3", "10.4.4.4", "10.3.3.3", "2001:db8:33::3", "10.2.2.1", "2001:db8:9::2", "10.0.104.1"} <= addresses
    assert {"00:1a:2b:00:00:e1", "00:1a:2b:00:00:e3", "00:1a:2b:00:00:f1", "00:1a:2b:00:00:c1", "00:1a:2b:00:00:21",
            "00:1a:2b:00:00:22", "00:1a:2b:00:00:23", "00:1a:2b:00:00:24", "00:1a:2b:00:00:51"} <= macs


def client_hello(server_name: bytes) -> bytes:
    """A TLS 1.3 ClientHello record with one extension, server_name (RFC 6066 3)."""
    names = struct.pack("!HBH", len(server_name) + 3, 0, len(server_name)) + server_name
    extensions = struct.pack("!HH", 0, len(names)) + names
    body = (b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
            + struct.pack("!H", len(extensions)) + extensions)
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def test_collector_reads_address_fields_of_payloads():
    stun_v4 = struct.pack("!HHI12s", 0x0101, 12, 0x2112A442, b"t" * 12) + struct.pack("!HHBBH", 0x0020, 8, 0, 1, 0) \
        + bytes(a ^ b for a, b in zip(addr("203.0.113.9"), COOKIE))
    gtpv2 = struct.pack("!BBHI", 0x48, 32, 0, 1) + b"\x00\x00\x01\x00"
    fteid = struct.pack("!BHB", 87, 9, 0) + b"\x80" + struct.pack("!I", 5) + addr("10.20.0.1")
    paa = struct.pack("!BHB", 79, 5, 0) + b"\x01" + addr("10.20.0.2")
    bearer = struct.pack("!BHB", 93, len(fteid), 0) + fteid
    gtpv2 = gtpv2[:2] + struct.pack("!H", 8 + len(paa) + len(bearer)) + gtpv2[4:] + paa + bearer
    host_ip = struct.pack("!IB", 257, 0x40) + (8 + 6).to_bytes(3, "big") + b"\x00\x01" + addr("10.30.0.1") + b"\0\0"
    origin = b"pcrf.operator.example"
    origin_host = struct.pack("!IB", 264, 0x40) + (8 + len(origin)).to_bytes(3, "big") + origin + b"\0" * (-len(origin) % 4)
    avps = host_ip + origin_host
    diameter = b"\x01" + (20 + len(avps)).to_bytes(3, "big") + b"\x80" + (257).to_bytes(3, "big") + bytes(12) + avps
    dhcp = (struct.pack("!BBBBIHH", 2, 1, 6, 0, 1, 0, 0) + addr("0.0.0.0") + addr("10.40.0.9") + addr("10.40.0.1")
            + bytes(4) + mac("00:1a:2b:00:00:40") + bytes(10) + bytes(192) + b"\x63\x82\x53\x63"
            + bytes([3, 4]) + addr("10.40.0.254") + bytes([6, 8]) + addr("10.40.0.53") + addr("10.40.0.54")
            + bytes([12, 9]) + b"deskphone" + bytes([81, 3 + 13, 4, 0, 0]) + b"\x04desk\x07example\x00"
            + bytes([61, 7, 1]) + mac("00:1a:2b:00:00:41") + b"\xff")
    hep = b"HEP3" + struct.pack("!H", 6 + 10 + 10 + 6 + 11) + struct.pack("!HHH", 0, 3, 10) + addr("10.50.0.1") \
        + struct.pack("!HHH", 0, 4, 10) + addr("10.50.0.2") + struct.pack("!HHH", 0, 15, 6 + 11) + b"OPTIONS sip"
    ber_ip = b"\x40\x04" + addr("10.60.0.1")
    snmp = b"\x30" + bytes([len(ber_ip) + 10]) + b"\x02\x01\x01\x04\x01p\xa2" + bytes([len(ber_ip) + 2]) + b"\x30" + bytes([len(ber_ip)]) + ber_ip
    icmp_redirect = struct.pack("!BBH", 5, 1, 0) + addr("10.70.0.254") + ipv4(b"", 17, "10.70.0.1", "10.70.0.2")
    packets = [
        eth(ipv4(udp(stun_v4, 3478, 40000))),
        eth(ipv4(udp(gtpv2, 2123, 2123))),
        eth(ipv4(struct.pack("!HHIIBBHHH", 3868, 40000, 1, 1, 5 << 4, 0x18, 1, 0, 0) + diameter, 6)),
        eth(ipv4(udp(dhcp, 67, 68))),
        eth(ipv4(udp(hep, 9060, 9060))),
        eth(ipv4(udp(snmp, 40000, 161))),
        eth(ipv4(icmp_redirect, 1)),
        eth(ipv4(tcp(client_hello(b"sbc.carrier.example"), 1, sport=40001, dport=5061), 6)),
    ]
    addresses, macs, names = learns(frames(*packets))
    assert {"203.0.113.9", "10.20.0.1", "10.20.0.2", "10.30.0.1", "10.40.0.9", "10.40.0.1", "10.40.0.254",
            "10.40.0.53", "10.40.0.54", "10.50.0.1", "10.50.0.2", "10.60.0.1", "10.70.0.254"} <= addresses
    assert {"00:1a:2b:00:00:40", "00:1a:2b:00:00:41"} <= macs
    assert {"pcrf.operator.example", "deskphone", "desk.example", "sbc.carrier.example"} <= names["host_names"]


def test_collector_learns_glued_text_and_sip_identities():
    body = (b"INVITE sip:2001@pbx.example.net SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP host.example.net:5060;branch=z9hG4bK-fc8192.168.7.2\r\n"
            b'From: "Bob" <sip:bob,smith@example.net>;tag=1\r\n'
            b"To: <tel:+15551234567>\r\nCall-ID: abc@callhost.example.net\r\n"
            b"P-Asserted-Identity: <sip:+15557654321@example.net>\r\n"
            b'Authorization: Digest username="carol", realm="example.net", nonce="1"\r\n'
            b"X-Where: 10.0.0.15 fe80::21a:2bff:fe3c:4d5e 00-1A-2B-3C-4D-5F 001a.2b3c.4d60\r\n"
            b'Contact: "anonymous" <sip:anonymous@anonymous.invalid>\r\nReply-To: "PCMU/8000" <sip:x@example.net>\r\n'
            b"Content-Length: 0\r\n\r\n")
    addresses, macs, names = learns(frames(eth(ipv4(udp(body)))))
    assert {"192.168.7.2", "10.0.0.15", "fe80::21a:2bff:fe3c:4d5e"} <= addresses
    assert "0.0.0.1" not in addresses and "0.0.0.15" not in addresses
    assert {"00:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d:5f", "00:1a:2b:3c:4d:60"} <= macs  # EUI-64, dash, dot
    assert {"bob,smith", "bob", "smith", "2001", "+15551234567", "+15557654321", "carol"} <= names["users"]
    assert {"pbx.example.net", "host.example.net", "callhost.example.net", "example.net"} <= names["host_names"]
    assert names["display_names"] == {"Bob"}
    assert "anonymous" not in names["users"] and "anonymous.invalid" not in names["host_names"]


def test_exempt_addresses_and_kept_ones_are_not_identifiers():
    packets = [eth(ipv4(udp(b"127.0.0.1 0.0.0.0 255.255.255.255 ::1 ff:ff:ff:ff:ff:ff"), 17, "0.0.0.0", "255.255.255.255"),
                   dst="ff:ff:ff:ff:ff:ff"),
               eth(ipv6(udp(b"x"), 17, "::1", "::"), 0x86DD, dst="33:33:00:00:00:01"),
               eth(ipv4(udp(b"x"), 17, "10.0.0.1", "192.0.2.9"))]
    data = frames(*packets)
    identifiers = collect(data, keep=lambda a: a == ipaddress.ip_address("192.0.2.9"))
    assert {str(a) for a in identifiers.addresses} == {"10.0.0.1"}
    assert {m.hex(":") for m in identifiers.macs} == {MAC_A, MAC_B}
    # Even when told to, the search never reports what the product keeps verbatim.
    forced = Identifiers(addresses=set(EXEMPT), macs={b"\xff" * 6, bytes(6), mac("33:33:00:00:00:01")})
    assert search(forced, data) == set()


# -- the search -------------------------------------------------------------------

WHAT = {
    "binary4": "address {} as binary", "binary16": "address {} as binary", "ber_ipaddress": "address {} as binary",
    "xor4": "address {} as STUN XOR", "xor16": "address {} as STUN XOR", "glued_text": "address {} as text",
    "binary6": "MAC {} as binary", "text_dash": "MAC {} as text", "text_dot": "MAC {} as text",
    "text_hex": "MAC {} as text", "eui64": "MAC {} as EUI-64 binary",
}
# identifiers.json's categories as the search names them (its host_names are leak_netbios's NetBIOS name).
NAME_LABELS = {"users": "user", "phones": "user", "display_names": "display name", "domains": "host name",
               "host_names": "NetBIOS name", "call_ids": "call ID", "user_agents": "user agent"}


def expected_what(category: str, value: str, form: str) -> str:
    if form in WHAT:
        return WHAT[form].format(value)
    if category == "addresses":
        return f"address {value} as text"
    if form == "netbios_encoded":
        return f"NetBIOS name {value!r} encoded"
    return f"{NAME_LABELS[category]} {value!r}"


def completing_frame(path: Path, last_part_frame: int) -> int:
    """The frame of the SIP message the engine reassembles from a value cut across records."""
    return min(m.frame for m in result_for_path(str(path)).sip_messages if m.frame >= last_part_frame)


def planted_leaks(fixture: str, split_only: bool = False) -> set[Leak]:
    path = LEAKS / fixture
    expected = set()
    for identifier in PLANTED[fixture]["identifiers"]:
        for form in identifier["forms"]:
            what = expected_what(identifier["category"], identifier["value"], form["form"])
            if form["form"].startswith("split_"):
                expected.add(Leak(completing_frame(path, max(form["frames"])), what))
            elif not split_only:
                expected.update(Leak(frame, what) for frame in form["frames"])
    return expected


@pytest.mark.parametrize("fixture", sorted(PLANTED))
def test_search_finds_every_planted_form_in_the_original(fixture):
    data = (LEAKS / fixture).read_bytes()
    found = search(collect(data), data)
    assert planted_leaks(fixture) - found == set()


def test_search_names_the_forms():
    data = (LEAKS / "leak_names.pcap").read_bytes()
    found = search(collect(data), data)
    assert Leak(1, "display name 'Jöhn Dœ'") in found
    assert Leak(2, "display name 'Иван Петров'") in found
    data = (LEAKS / "leak_arp_mac.pcap").read_bytes()
    found = search(collect(data), data)
    assert Leak(5, "MAC 00:1a:2b:3c:4d:5e as EUI-64 text") not in found  # frame 5 carries it in binary only
    assert {Leak(5, "MAC 00:1a:2b:3c:4d:5e as EUI-64 binary"), Leak(3, "MAC 00:1a:2b:3c:4d:5e as text")} <= found


def masked_across_segments(path: Path) -> set[int]:
    """Frames completing a masked WebSocket frame that spans TCP segments: the byte-wise scrub cannot
    unmask those, the search reads them through the engine."""
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-Y", "websocket.mask == 1 && tcp.segments",
                          "-T", "fields", "-e", "frame.number"], capture_output=True, text=True, check=True).stdout
    return {int(line) for line in out.split()}


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scrubbed_copy_leaks_nothing_but_values_cut_across_records(path):
    data = path.read_bytes()
    identifiers = collect(data)
    scrubbed = scrub(data, identifiers)
    assert len(scrubbed) == len(data)
    found = search(identifiers, scrubbed)
    if path.name in PLANTED:
        assert found == planted_leaks(path.name, split_only=True)
    elif b"Sec-WebSocket" in data:
        assert found and {leak.frame for leak in found} <= masked_across_segments(path)
    else:
        assert found == set()


@pytest.mark.parametrize("fixture", sorted(PLANTED))
def test_chunk_sizes_do_not_matter(fixture):
    data = (LEAKS / fixture).read_bytes()
    whole = collect(data)
    for size in (1, 7, 333):
        assert collect(data, size) == whole
    leaks = search(whole, data)
    scrubbed = scrub(data, whole)
    clean = search(whole, scrubbed)
    for size in (1, 7, 333):
        assert search(whole, data, size) == leaks
        assert search(whole, scrubbed, size) == clean


@pytest.mark.parametrize("path", [SHARED_CAPTURES / "heplify__sip_tcp_websocket.pcap", SHARED_CAPTURES / "isa__sip.pcap.pcapng",
                                  FIXTURES / "encap" / "encap_mixed.pcapng"], ids=lambda p: p.name)
def test_chunk_sizes_do_not_matter_on_larger_captures(path):
    data = path.read_bytes()
    whole = collect(data)
    leaks = search(whole, data)
    for size in (1, 4093, 65536):
        assert collect(data, size) == whole
        assert search(whole, data, size) == leaks


def test_many_identifiers_are_searched_through_the_index():
    """Thousands of endpoints spread the first bytes: the search switches from one regex to a word index."""
    data = (LEAKS / "leak_via_glued.pcap").read_bytes()
    few = collect(data)
    many = collect(data)
    extra = [ipaddress.IPv4Address(0x0B000001 + 0x01010101 * i) for i in range(200)]  # first bytes 11 to 210
    users = [f"{chr(97 + i % 26)}{i:05d}xyz" for i in range(300)]
    many.addresses |= set(extra)
    many.macs |= {bytes([2 * i, 0x5A, 0x5A, 0x5A, 0x5A, i]) for i in range(1, 120)}
    many.names["users"] |= set(users)
    searcher = LeakSearch(many)
    assert searcher._binary._prefixes and searcher._names._prefixes  # the index is what is exercised
    assert search(many, data) == search(few, data)
    sample = extra[7]
    text = str(sample).encode() + b" " + sample.packed + b" sip:" + users[42].encode() + b"@h"
    found = {leak.what for leak in search(many, udp_text_capture(text))}
    assert {f"address {sample} as text", f"address {sample} as binary", f"user {users[42]!r}"} <= found


def udp_text_capture(*texts: bytes) -> bytes:
    return frames(*(eth(ipv4(udp(text), 17, "198.51.100.1", "198.51.100.2")) for text in texts))


def text_leaks(identifiers: Identifiers, *texts: bytes) -> set[Leak]:
    return search(identifiers, udp_text_capture(*texts))


def test_glued_rule_for_dotted_text():
    identifiers = Identifiers(addresses={ipaddress.ip_address(a) for a in ("192.168.1.2", "0.0.0.1", "10.0.0.1")})
    cases = {
        b"10.0.0.15": set(), b"192.168.1.25": set(), b"x192.168.1.20x": set(), b"1.0.0.0.1": {"0.0.0.1"},
        b"branch=z9hG4bK-fc8192.168.1.2": {"192.168.1.2"}, b"tag=7f192.168.1.2;": {"192.168.1.2"},
        b"host192.168.1.2:5060x": {"192.168.1.2"}, b"at 192.168.1.2.": {"192.168.1.2"},
        b"192.168.1.2:5060,192.168.1.2": {"192.168.1.2"}, b"10.0.0.1000": {"10.0.0.1", "0.0.0.1"},
        b"192.168.001.002": set(), b"oid 1.3.6.1.192.168.1.2.4": {"192.168.1.2"},
    }
    for text, leaked in cases.items():
        found = {leak.what for leak in text_leaks(identifiers, text)}
        assert found == {f"address {a} as text" for a in leaked}, text


def test_glued_rule_for_ipv6_and_mac_text():
    identifiers = Identifiers(addresses={ipaddress.ip_address("2001:db8::1")}, macs={mac("00:1a:2b:3c:4d:5e")})
    v6, text, eui = "address 2001:db8::1 as text", "MAC 00:1a:2b:3c:4d:5e as text", "MAC 00:1a:2b:3c:4d:5e as EUI-64 text"
    cases = {
        b"[2001:DB8::1]:5060": {v6}, b"2001:0db8:0000:0000:0000:0000:0000:0001": {v6}, b"2001:db8:0:0::1": {v6},
        b"2001:db8::10": set(), b"2001:db8::1:5060": set(), b"a2001:db8::1": {v6}, b"x2001:db8::1": {v6},
        b"mac=00-1A-2B-3C-4D-5E;": {text}, b"MAC 001a.2b3c.4d5e": {text}, b"uuid-001A2B3C4D5E>": {text},
        b"00:1a:2b:3c:4d:5e:ff": {text}, b"ff001a2b3c4d5eff": {text}, b"fe80::21a:2bff:fe3c:4d5e": {eui},
        b"2001:db8:ffff::21A:2BFF:FE3C:4D5E": {eui}, b"00:1a:2b:3c:4d:5f": set(),
    }
    for case, leaked in cases.items():
        assert {leak.what for leak in text_leaks(identifiers, case)} == leaked, case


def test_name_rules():
    identifiers = Identifiers(names={"users": {"bob", "1234", "alice.smith", "123456"},
                                     "display_names": {"Ann", "Jöhn Dœ"}, "host_names": {"example.com", "jane-laptop.local"},
                                     "netbios_names": {"JANE-LAPTOP"}})
    cases = {
        b"Bob went home": set(), b"sip:bob@x": {"user 'bob'"}, b"SIP:BOB@X": {"user 'bob'"}, b"tel:1234;x": {"user '1234'"},
        b"tel:12345": set(), b'username="bob"': {"user 'bob'"}, b"o=bob 1 1 IN": {"user 'bob'"},
        b"mail alice.smith today": {"user 'alice.smith'"}, b"CSeq: 1123456 INVITE": set(), b"x 123456 y": {"user '123456'"},
        b'"Ann" <sip:': {"display name 'Ann'"}, b"ANN <sip:": {"display name 'Ann'"}, b"Joann <sip:": set(),
        b"Anne said": set(),
        "JÖHN DŒ".encode(): {"display name 'Jöhn Dœ'"}, b"www.example.com": {"host name 'example.com'"},
        b"myexample.com": set(), b"\x07EXAMPLE\x03com": {"host name 'example.com' in DNS wire form"},
        b"\x0bjane-laptop\xc0\x0c": {"host name 'jane-laptop.local' in DNS wire form", "NetBIOS name 'JANE-LAPTOP'"},
        netbios("JANE-LAPTOP") + b"CACA": {"NetBIOS name 'JANE-LAPTOP' encoded"},
        b"\\\\jane-laptop\\share": {"NetBIOS name 'JANE-LAPTOP'"},
    }
    for text, leaked in cases.items():
        assert {leak.what for leak in text_leaks(identifiers, text)} == leaked, text


def test_binary_forms_reverse_names_and_patterns():
    address = ipaddress.ip_address("192.168.1.2")
    identifiers = Identifiers(addresses={address, ipaddress.ip_address("2001:db8::7")})
    xor = bytes(a ^ b for a, b in zip(address.packed, COOKIE))
    tid = bytes(range(12))
    xor16 = bytes(a ^ b for a, b in zip(addr("2001:db8::7"), COOKIE + tid))
    stun = struct.pack("!HHI12s", 0x0101, 24, 0x2112A442, tid) + struct.pack("!HHBBH", 0x0020, 20, 0, 2, 0) + xor16
    texts = [b"\x00" + address.packed + b"\x00", xor, b"\x06\x08\x2b\x06\x81\x40\x81\x28\x01\x02",
             b"2.1.168.192.in-addr.arpa", b"\x012\x011\x03168\x03192\x07in-addr\x04arpa\x00", stun, b"secret-4711"]
    found = search(identifiers, udp_text_capture(*texts), patterns=[re.compile(rb"secret-\d+")])
    assert found == {
        Leak(1, "address 192.168.1.2 as binary"), Leak(2, "address 192.168.1.2 as STUN XOR"),
        Leak(3, "address 192.168.1.2 as SNMP OID"), Leak(4, "address 192.168.1.2 as reverse DNS name"),
        Leak(5, "address 192.168.1.2 as reverse DNS name in wire form"), Leak(6, "address 2001:db8::7 as STUN XOR"),
        Leak(7, "pattern b'secret-\\\\d+'"),
    }


def test_headers_count_as_frame_none_and_damage_is_reported():
    identifiers = Identifiers(addresses={ipaddress.ip_address("10.1.2.3")})
    data = udp_text_capture(b"nothing")
    shb_comment = b"seen 10.1.2.3"
    option = struct.pack("<HH", 1, len(shb_comment)) + shb_comment + b"\0" * (-len(shb_comment) % 4) + b"\0\0\0\0"
    body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + option
    shb = struct.pack("<II", 0x0A0D0D0A, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
    assert search(identifiers, shb) == {Leak(None, "address 10.1.2.3 as text")}
    cut = search(identifiers, data[:-3] + b"")
    assert any(leak.frame is None and "ends inside a record" in leak.what for leak in cut)
    not_capture = search(identifiers, b"GIF89a ... 10.1.2.3 ...")
    assert Leak(None, "address 10.1.2.3 as text") in not_capture
    assert any("neither pcap nor pcapng" in leak.what for leak in not_capture)


def test_reassembled_sip_is_searched_and_credited_to_its_frame():
    data = (LEAKS / "leak_split_tcp.pcap").read_bytes()
    identifiers = collect(data)
    found = search(identifiers, scrub(data, identifiers))
    assert found == {Leak(6, "address 192.168.1.2 as text"), Leak(6, "user 'alice'")}


# -- the kernel's search (scan.c, leak.mode) is the Python search --------------------------------

# A pattern that matches nothing: with any pattern every record's bytes come back and the Python
# search runs over all of them, as before the kernel searched the literal keys.
NOTHING = re.compile(rb"(?!)")


def searched_both_ways(identifiers: Identifiers, data: bytes, chunk: int | None = None) -> set[Leak]:
    """The leaks of the kernel's key search; fails unless the all-Python search finds the same."""
    searcher = LeakSearch(identifiers)
    assert searcher._mode == LEAK_KEYS
    found = search(identifiers, data, chunk)
    assert found == search(identifiers, data, chunk, patterns=[NOTHING])
    return found


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_kernel_search_finds_what_python_finds_in_every_original(path):
    data = path.read_bytes()
    identifiers = collect(data)
    found = search(identifiers, data)
    assert found == search(identifiers, data, patterns=[NOTHING])
    assert found == search(identifiers, data, 4093)


def test_kernel_hits_at_record_edges_and_short_keys():
    address = ipaddress.ip_address("192.0.2.77")
    identifiers = Identifiers(addresses={address}, names={"host_names": {"pbx.example"}, "strings": {"q7z"}})
    records = [address.packed + b"tail", b"head" + address.packed, address.packed, b"q7z", b"xq7z", b"Q7Zx",
               b"pbx.example", b"pbx.examplex", b"-pbx.example", b"PBX.EXAMPLE!", b"q7", b"7z"]
    found = searched_both_ways(identifiers, frames(*records, linktype=101))
    binary, host, string = f"address {address} as binary", "host name 'pbx.example'", "string 'q7z'"
    assert found == {Leak(1, binary), Leak(2, binary), Leak(3, binary), Leak(4, string), Leak(5, string),
                     Leak(6, string), Leak(7, host), Leak(10, host)}


def test_kernel_folds_ascii_only_and_keeps_the_boundary_rules():
    identifiers = Identifiers(names={"users": {"123456", "Zoë.Smith"}, "display_names": {"Ann"},
                                     "host_names": {"host.example"}})
    texts = [b"x 123456 y", b"1123456", b"123456x", b"ZO\xc3\x8b.SMITH", b"ZO\xc3\xab.SMITH", b"zo\xc3\xab.smith",
             b'"ANN"', b"aNn <", b"Joann <", b"HOST.EXAMPLE", b"myhost.example", b"host.example-2", b"host.example."]
    found = {(leak.frame, leak.what) for leak in searched_both_ways(identifiers, udp_text_capture(*texts))}
    zoe, ann, host = "user 'Zoë.Smith'", "display name 'Ann'", "host name 'host.example'"
    # Frame 4 spells Ë in upper case: bytes.lower() folds ASCII only, and the upper-case casing is a form of its own.
    assert found == {(1, "user '123456'"), (3, "user '123456'"), (4, zoe), (5, zoe), (6, zoe), (7, ann), (8, ann),
                     (10, host), (13, host)}


def test_kernel_finds_a_key_split_across_feeds():
    address = ipaddress.ip_address("198.51.100.200")
    identifiers = Identifiers(addresses={address}, names={"call_ids": {"a84b4c76e66710"}})
    data = udp_text_capture(b"pad" * 50, b"Call-ID: A84B4C76E66710", address.packed * 3)
    whole = searched_both_ways(identifiers, data)
    assert whole == {Leak(2, "call ID 'a84b4c76e66710'"), Leak(3, f"address {address} as binary")}
    for size in (1, 5, 333):
        assert searched_both_ways(identifiers, data, size) == whole


def test_kernel_searches_thousands_of_endpoints_and_falls_back_beyond_its_tables():
    addresses = {ipaddress.IPv4Address(0x0A000000 + 7919 * i) for i in range(1, 5001)}
    identifiers = Identifiers(addresses=addresses, names={"users": {f"user{i:05d}" for i in range(2000)}})
    sample = sorted(addresses)[4321]
    texts = [b"via " + str(sample).encode() + b";", sample.packed, b"sip:user01999@h", b"nothing"]
    found = searched_both_ways(identifiers, udp_text_capture(*texts))
    assert {(leak.frame, leak.what) for leak in found} >= {
        (1, f"address {sample} as text"), (2, f"address {sample} as binary"), (3, "user 'user01999'")}
    many = Identifiers(addresses={ipaddress.IPv4Address(0x0B000000 + i) for i in range(LEAK_MAX_KEYS)})
    assert LeakSearch(many)._mode == LEAK_ALL  # more keys than the kernel's table: Python searches
    extra = ipaddress.IPv4Address(0x0B000000 + 77)
    assert Leak(2, f"address {extra} as binary") in search(many, udp_text_capture(b"x", extra.packed))


def test_kernel_hit_table_overflow_gives_the_record_to_python():
    identifiers = Identifiers(names={"strings": {"abc"}})
    found = searched_both_ways(identifiers, udp_text_capture(b"abc" * 20000, b"x", b"ABC"))
    assert found == {Leak(1, "string 'abc'"), Leak(3, "string 'abc'")}


def test_kernel_search_of_damaged_copies():
    address = ipaddress.ip_address("10.1.2.3")
    identifiers = Identifiers(addresses={address})
    good = udp_text_capture(b"at 10.1.2.3", b"clean", address.packed)
    huge = good + struct.pack("<IIII", 9, 0, 0xFFFFFFFF, 0xFFFFFFFF) + b"after 10.1.2.3 " + address.packed
    found = searched_both_ways(identifiers, huge, 7)
    assert found == {Leak(1, f"address {address} as text"), Leak(3, f"address {address} as binary"),
                     Leak(None, f"address {address} as text"), Leak(None, f"address {address} as binary"),
                     Leak(None, f"unreadable capture structure at byte {len(good)} (record 4 claims 4294967295 bytes); "
                                "searched as raw bytes")}
    cut = searched_both_ways(identifiers, good[:-2])
    assert cut == {Leak(1, f"address {address} as text"), Leak(None, f"unreadable capture structure at byte "
                   f"{len(good) - 16 - 42 - 4} (the written copy ends inside a record); searched as raw bytes")}
    block = pcapng([(1, eth(ipv4(udp(b"x 10.1.2.3"))))])
    for tail in (struct.pack("<II", 6, 30) + bytes(22), struct.pack("<II", 0x0A0D0D0A, 28) + bytes(20)):
        found = searched_both_ways(identifiers, block + tail + address.packed)
        assert Leak(1, f"address {address} as text") in found and Leak(None, f"address {address} as binary") in found
        assert any(leak.frame is None and f"at byte {len(block)} (" in leak.what for leak in found)
    # A packet block whose captured length runs past the block: the Python rules search its body.
    body = struct.pack("<IIIII", 0, 0, 1, 64, 64) + address.packed + bytes(4)
    odd = block + struct.pack("<II", 6, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    assert Leak(2, f"address {address} as binary") in searched_both_ways(identifiers, odd)


# -- the collector's fast path (scan.c, LEAK_COLLECT) -------------------------------------------


def rtp_frame(index: int, payload: bytes = bytes(160), sport: int = 40000, dport: int = 40002) -> bytes:
    source = ipaddress.IPv4Address(0x0A000000 + index)
    return eth(ipv4(udp(struct.pack("!BBHII", 0x80, 0, index & 0xFFFF, 0, 7) + payload, sport, dport),
                    src=str(source), dst="10.200.0.1"),
               src=":".join(f"{b:02x}" for b in struct.pack("!HI", 0x0200, index)), dst=MAC_B)


def test_collector_fast_path_drains_full_tables():
    """More MACs and addresses than the kernel's tables hold: each one is learned."""
    count = 9000
    data = frames(*(rtp_frame(i) for i in range(1, count + 1)))
    addresses, macs, _names = learns(data)
    assert addresses == {str(ipaddress.IPv4Address(0x0A000000 + i)) for i in range(1, count + 1)} | {"10.200.0.1"}
    assert macs == {MAC_B} | {":".join(f"{b:02x}" for b in struct.pack("!HI", 0x0200, i)) for i in range(1, count + 1)}
    assert collect(data, 4093) == collect(data)


def test_collector_fast_path_records_still_give_their_text_and_decoded_ports_their_fields():
    glued = rtp_frame(1, b"\x00" * 20 + b"at 192.0.2.44;" + b"\x00" * 20 + b"02:1a:2b:3c:4d:5e" + b"x2001:db8:5::9]")
    # An mDNS answer whose first byte looks like RTP: its port is the DNS decoder's, never the fast path's.
    mdns = struct.pack("!HHHHHH", 0x8400, 0x8400, 0, 1, 0, 0) + b"\x06laptop\x05local\x00" + struct.pack(
        "!HHIH4s", 1, 1, 120, 4, addr("192.0.2.99"))
    decoded = rtp_frame(2, b"", 5353, 5353)[:42] + mdns
    decoded = decoded[:16] + struct.pack("!H", len(decoded) - 14) + decoded[18:38] + struct.pack(
        "!H", len(decoded) - 34) + decoded[40:]
    addresses, macs, names = learns(frames(glued, decoded, rtp_frame(3)))
    assert {"192.0.2.44", "2001:db8:5::9", "192.0.2.99", "10.0.0.1", "10.0.0.2", "10.0.0.3"} <= addresses
    assert "02:1a:2b:3c:4d:5e" in macs
    assert "laptop.local" in names["host_names"]


def test_collector_fast_path_text_beyond_the_kernels_text_table():
    """More text-bearing RTP than the kernel's 1 MB copy holds: every address in it is learned."""
    texts = [ipaddress.IPv4Address(0xC6336400 + i) for i in range(6000)]  # 198.51.100.0 and on
    data = frames(*(rtp_frame(i, b"\x11" * 150 + b" via " + str(text).encode() + b";" + b"\x11" * 40)
                    for i, text in enumerate(texts, 1)))
    assert len(data) > 1_300_000
    addresses = learns(data)[0]
    assert {str(text) for text in texts} <= addresses
    assert collect(data, 65536) == collect(data)
