"""Tests of the independent leak scanner (tests/leakscan.py) itself.

Why: the scanner is the referee of the redaction tests, so it must be shown
to catch each kind of leak it claims to catch, and to stay quiet on a clean
copy.  The captures are built byte by byte here (headers, checksums, STUN,
DNS, pcapng blocks) rather than with the product's code or the shared
packet builders, so that nothing the redactor relies on is trusted twice.
"""

from __future__ import annotations

import ipaddress
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import leakscan
import pytest
from leakscan import BrokenChecksum, Identifiers
from locations import FIXTURES, SHARED_CAPTURES
from packet_builders import internet_checksum

STUN_COOKIE = struct.pack("!I", leakscan.STUN_MAGIC_COOKIE)
TXID = bytes(range(1, 13))


# --------------------------------------------------------------------------
# Byte builders


def packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ethernet(src: str, dst: str, payload: bytes, ethertype: int = 0x0800) -> bytes:
    return mac(dst) + mac(src) + struct.pack("!H", ethertype) + payload


def ipv4(src: str, dst: str, protocol: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, protocol, 0,
                         packed(src), packed(dst))
    return header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:] + payload


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP datagram in its IPv4 or IPv6 packet, both checksums valid."""
    length = 8 + len(payload)
    datagram = struct.pack("!HHHH", sport, dport, length, 0) + payload
    pseudo = packed(src) + packed(dst)
    if ipaddress.ip_address(src).version == 4:
        pseudo += struct.pack("!BBH", 0, 17, length)
    else:
        pseudo += struct.pack("!IxxxB", length, 17)
    datagram = datagram[:6] + struct.pack("!H", internet_checksum(pseudo + datagram) or 0xFFFF) + payload
    if ipaddress.ip_address(src).version == 4:
        return ipv4(src, dst, 17, datagram)
    return struct.pack("!IHBB16s16s", 0x60000000, length, 17, 64, packed(src), packed(dst)) + datagram


def tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, payload: bytes) -> bytes:
    """A TCP segment (PSH+ACK) in its IPv4 packet, both checksums valid."""
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, 0x18, 65535, 0, 0) + payload
    pseudo = packed(src) + packed(dst) + struct.pack("!BBH", 0, 6, len(segment))
    segment = segment[:16] + struct.pack("!H", internet_checksum(pseudo + segment)) + segment[18:]
    return ipv4(src, dst, 6, segment)


def masked_websocket_text(payload: bytes, key: bytes = b"\x11\x22\x33\x44") -> bytes:
    """A client-to-server WebSocket text frame (RFC 6455: always masked)."""
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def icmp_port_unreachable(src: str, dst: str, quoted: bytes) -> bytes:
    body = struct.pack("!BBHI", 3, 3, 0, 0) + quoted[:28]
    return ipv4(src, dst, 1, body[:2] + struct.pack("!H", internet_checksum(body)) + body[4:])


def stun_binding_response(mapped: str, port: int = 40000) -> bytes:
    """A STUN Binding success response with one XOR-MAPPED-ADDRESS."""
    address = ipaddress.ip_address(mapped)
    key = STUN_COOKIE if address.version == 4 else STUN_COOKIE + TXID
    xored = bytes(a ^ b for a, b in zip(address.packed, key))
    value = struct.pack("!BBH", 0, 1 if address.version == 4 else 2, port ^ 0x2112) + xored
    attribute = struct.pack("!HH", 0x0020, len(value)) + value
    return struct.pack("!HH", 0x0101, len(attribute)) + STUN_COOKIE + TXID + attribute


def dns_query(name: str) -> bytes:
    labels = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 1, 1)


def write_pcap(path: Path, frames: list[bytes]) -> Path:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for n, frame in enumerate(frames):
        out += struct.pack("<IIII", 1000 + n, 0, len(frame), len(frame)) + frame
    path.write_bytes(out)
    return path


def pcapng_block(block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", block_type, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def pcapng_option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)


# --------------------------------------------------------------------------
# One scenario, built with real values (the original) or pseudonyms


REAL = {
    "mac_ua": "00:1a:2b:3c:4d:5e", "mac_gw": "00:25:90:ab:cd:ef",
    "ua": "192.168.1.2", "proxy": "203.0.113.5", "stun": "198.51.100.9",
    "mapped": "203.0.113.77", "dns": "192.0.2.53",
    "ua6": "2001:db8:1::10", "peer6": "2001:db8:1::20", "mapped6": "2001:db8:99::5",
    "user": "alice", "callee": "bob", "display": "Jöhn Dœ 中",
    "domain": "pbx.example.org", "branch": "z9hG4bK-1", "header": "", "opaque6": b"\x00\x01",
}
PSEUDO = REAL | {
    "mac_ua": "02:00:00:00:01:01", "mac_gw": "02:00:00:00:01:02",
    "ua": "10.200.0.1", "proxy": "10.200.0.2", "stun": "10.200.0.3",
    "mapped": "10.200.0.4", "dns": "10.200.0.5",
    "ua6": "fd00:200::1", "peer6": "fd00:200::2", "mapped6": "fd00:200::3",
    "user": "user-1", "callee": "user-2", "display": "Caller 1", "domain": "host-1.example.net",
}


def scenario(v: dict) -> list[bytes]:
    """SIP INVITE, STUN (IPv4 and IPv6), an opaque IPv6 datagram, a DNS query."""
    invite = (
        f"INVITE sip:{v['callee']}@{v['domain']} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {v['ua']}:5060;branch={v['branch']}\r\n"
        f"From: \"{v['display']}\" <sip:{v['user']}@{v['domain']}>;tag=1\r\n"
        f"To: <sip:{v['callee']}@{v['domain']}>\r\n"
        f"Call-ID: 42@{v['domain']}\r\nCSeq: 1 INVITE\r\n{v['header']}"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    v4, v6 = 0x0800, 0x86DD
    return [
        ethernet(v["mac_ua"], v["mac_gw"], udp(v["ua"], v["proxy"], 5060, 5060, invite)),
        ethernet(v["mac_gw"], v["mac_ua"],
                 udp(v["stun"], v["ua"], 3478, 50000, stun_binding_response(v["mapped"]))),
        ethernet(v["mac_ua"], v["mac_gw"], udp(v["ua6"], v["peer6"], 40000, 40001, v["opaque6"]), v6),
        ethernet(v["mac_gw"], v["mac_ua"],
                 udp(v["peer6"], v["ua6"], 3478, 50000, stun_binding_response(v["mapped6"])), v6),
        ethernet(v["mac_ua"], v["mac_gw"], udp(v["ua"], v["dns"], 53000, 53, dns_query(v["domain"])), v4),
    ]


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    return write_pcap(tmp_path_factory.mktemp("leakscan") / "original.pcap", scenario(REAL))


@pytest.fixture(scope="module")
def identifiers(original) -> Identifiers:
    return leakscan.original_identifiers(original)


def leaks_of(identifiers: Identifiers, tmp_path: Path, values: dict) -> set[tuple[str, str, int | None]]:
    redacted = write_pcap(tmp_path / "redacted.pcap", scenario(values))
    return {(k.identifier, k.form, k.frame) for k in leakscan.find_leaks(identifiers, redacted)}


# --------------------------------------------------------------------------
# Learning


def test_learns_every_identifier_of_the_scenario(identifiers):
    assert identifiers.addresses == {ipaddress.ip_address(REAL[k]) for k in (
        "ua", "proxy", "stun", "mapped", "dns", "ua6", "peer6", "mapped6")}
    assert identifiers.macs == {mac(REAL["mac_ua"]), mac(REAL["mac_gw"])}
    assert identifiers.users == {"alice", "bob", "Jöhn Dœ 中"}
    assert identifiers.hosts == {"pbx.example.org"}
    assert identifiers.origin["203.0.113.77"] == "frame 2 stun.att.ipv4"


def test_exempt_and_kept_addresses_are_no_identifiers(tmp_path):
    payload = b"c=IN IP4 0.0.0.0 ::1 10.1.2.3 192.0.2.9 00:00:00:00:00:00"
    frames = [ethernet("00:1a:2b:3c:4d:5e", dst, udp("127.0.0.1", "255.255.255.255", 5060, 5060, payload))
              for dst in ("ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:fb", "33:33:ff:3c:4d:5e")]
    capture = write_pcap(tmp_path / "exempt.pcap", frames)
    ids = leakscan.original_identifiers(capture, keep={"10.0.0.0/8", "00:1a:2b:3c:4d:5e"})
    assert ids.addresses == {ipaddress.ip_address("192.0.2.9")}
    # A solicited-node group carries the low 24 bits of a unicast address.
    assert ids.macs == {mac("33:33:ff:3c:4d:5e")}


def test_pcapng_interface_options_and_name_records_are_learned_and_searched(tmp_path):
    shb = pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = pcapng_block(1, struct.pack("<HHI", 1, 0, 65535)
                       + pcapng_option(4, packed("10.9.8.7") + packed("255.255.255.0"))
                       + pcapng_option(6, mac("00:25:90:11:22:33")) + pcapng_option(0, b""))
    nrb = pcapng_block(4, struct.pack("<HH", 1, 24) + packed("192.0.2.44") + b"printer.example.org\0"
                       + struct.pack("<HH", 0, 0))
    frames = [ethernet("00:1a:2b:3c:4d:5e", "00:25:90:ab:cd:ef",
                       udp("192.168.1.2", "203.0.113.5", 40000, 40001, payload))
              for payload in (b"\x00\x01", b"\x00" + packed("10.9.8.7"))]
    epbs = b"".join(pcapng_block(6, struct.pack("<IIIII", 0, 0, n, len(f), len(f)) + f)
                    for n, f in enumerate(frames))
    capture = tmp_path / "meta.pcapng"
    capture.write_bytes(shb + idb + nrb + epbs)

    ids = leakscan.original_identifiers(capture)
    assert {ipaddress.ip_address(a) for a in ("10.9.8.7", "192.0.2.44")} <= ids.addresses
    assert mac("00:25:90:11:22:33") in ids.macs
    assert "printer.example.org" in ids.hosts
    assert ids.origin["10.9.8.7"] == "pcapng if_IPv4addr"

    found = {(k.identifier, k.form, k.frame) for k in leakscan.find_leaks(ids, capture)}
    assert ("10.9.8.7", "ipv4 binary", None) in found  # the interface option
    assert ("10.9.8.7", "ipv4 binary", 2) in found  # the payload of the second packet
    assert ("printer.example.org", "host name text", None) in found
    assert ("192.168.1.2", "ipv4 binary", 1) in found


# --------------------------------------------------------------------------
# Leaks


def test_clean_copy_has_no_leak(identifiers, tmp_path):
    assert leaks_of(identifiers, tmp_path, PSEUDO) == set()


def test_address_glued_in_via_branch(identifiers, tmp_path):
    found = leaks_of(identifiers, tmp_path, PSEUDO | {"branch": "z9hG4bKfc8192.168.1.2"})
    assert found == {("192.168.1.2", "ipv4 text", 1)}


def test_stun_xor_mapped_ipv4_kept_in_binary(identifiers, tmp_path):
    found = leaks_of(identifiers, tmp_path, PSEUDO | {"mapped": REAL["mapped"]})
    assert found == {("203.0.113.77", "ipv4 binary, stun xor", 2)}


def test_stun_xor_mapped_ipv6_kept(identifiers, tmp_path):
    found = leaks_of(identifiers, tmp_path, PSEUDO | {"mapped6": REAL["mapped6"]})
    assert found == {("2001:db8:99::5", "decoded stun.att.ipv6", 4)}


def test_mac_in_dot_notation(identifiers, tmp_path):
    found = leaks_of(identifiers, tmp_path, PSEUDO | {"header": "X-Device: 001A.2B3C.4D5E\r\n"})
    assert found == {("00:1a:2b:3c:4d:5e", "mac text", 1)}


def test_mac_inside_an_ipv6_interface_id(identifiers, tmp_path):
    found = leaks_of(identifiers, tmp_path, PSEUDO | {"header": "X-A: [fd00:200::21a:2bff:fe3c:4d5e]\r\n"})
    assert found == {("00:1a:2b:3c:4d:5e", "mac in ipv6 interface id (text)", 1)}


def test_ipv6_in_binary_payload(identifiers, tmp_path):
    found = leaks_of(identifiers, tmp_path, PSEUDO | {"opaque6": packed(REAL["ua6"])})
    assert found == {("2001:db8:1::10", "ipv6 binary", 3)}


def test_ipv6_text_in_any_spelling(identifiers, tmp_path):
    header = "X-A: 2001:0DB8:0001:0000:0000:0000:0000:0010\r\nX-B: [2001:db8:1:0::20]:5060\r\n"
    found = leaks_of(identifiers, tmp_path, PSEUDO | {"header": header})
    assert found == {("2001:db8:1::10", "ipv6 text", 1), ("2001:db8:1::20", "ipv6 text", 1)}


def test_display_name_with_non_ascii_letters(identifiers, tmp_path):
    found = leaks_of(identifiers, tmp_path, PSEUDO | {"display": REAL["display"]})
    assert found == {("Jöhn Dœ 中", "name text", 1)}


def test_host_name_in_dns_wire_format_and_text(identifiers, tmp_path):
    found = leaks_of(identifiers, tmp_path, PSEUDO | {"header": "X-Via-Host: PBX.Example.ORG\r\n"})
    assert found == {("pbx.example.org", "host name text", 1)}
    dns = scenario(PSEUDO)
    dns[4] = ethernet(PSEUDO["mac_ua"], PSEUDO["mac_gw"],
                      udp(PSEUDO["ua"], PSEUDO["dns"], 53000, 53, dns_query(REAL["domain"])))
    leaks = leakscan.find_leaks(identifiers, write_pcap(tmp_path / "dns.pcap", dns))
    assert {(k.identifier, k.form, k.frame) for k in leaks} == {
        ("pbx.example.org", "host name in dns wire format", 5)}


def test_address_hidden_by_websocket_masking_is_learned_and_found(tmp_path):
    client, server = "192.168.1.2", "203.0.113.5"
    upgrade = (b"GET / HTTP/1.1\r\nHost: pbx\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               b"Sec-WebSocket-Protocol: sip\r\n\r\n")
    switched = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRrK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n")
    options = b"OPTIONS sip:bob@10.1.1.1 SIP/2.0\r\nVia: SIP/2.0/WS 10.1.1.1;branch=z9hG4bK1\r\n\r\n"
    ua, gw = "00:1a:2b:3c:4d:5e", "00:25:90:ab:cd:ef"
    capture = write_pcap(tmp_path / "websocket.pcap", [
        ethernet(ua, gw, tcp(client, server, 40000, 80, 1, 1, upgrade)),
        ethernet(gw, ua, tcp(server, client, 80, 40000, 1, 1 + len(upgrade), switched)),
        ethernet(ua, gw, tcp(client, server, 40000, 80, 1 + len(upgrade), 1 + len(switched),
                             masked_websocket_text(options))),
    ])
    assert b"10.1.1.1" not in capture.read_bytes()
    ids = leakscan.original_identifiers(capture)
    assert ipaddress.ip_address("10.1.1.1") in ids.addresses
    assert "bob" in ids.users
    found = {(k.identifier, k.frame) for k in leakscan.find_leaks(ids, capture)
             if k.form.startswith("decoded ")}
    assert {("10.1.1.1", 3), ("bob", 3)} <= found


def test_address_inside_a_different_dotted_quad_is_no_leak(tmp_path):
    ids = Identifiers(frozenset(map(ipaddress.ip_address, ("0.0.0.1", "192.168.1.2"))),
                      frozenset(), frozenset(), frozenset())
    text = b"c=IN IP4 10.0.0.15\r\nVia: SIP/2.0/UDP 192.168.1.23:5060\r\nX: 192.168.1.2.\r\n"
    frames = [ethernet("02:00:00:00:01:01", "02:00:00:00:01:02",
                       udp("10.200.0.1", "10.200.0.2", 5060, 5060, text))]
    leaks = leakscan.find_leaks(ids, write_pcap(tmp_path / "quads.pcap", frames))
    assert [(k.identifier, k.form, k.offset) for k in leaks] == [
        ("192.168.1.2", "ipv4 text", 40 + 42 + text.index(b"192.168.1.2."))]


def test_short_numeric_user_only_counts_as_an_identity(tmp_path):
    ids = Identifiers(frozenset(), frozenset(), frozenset({"201"}), frozenset())
    text = (b"SIP/2.0 200 OK\r\nCSeq: 201 INVITE\r\nContent-Length: 201\r\n\r\n"
            b"m=audio 201 RTP/AVP 0\r\nTo: <sip:201@host-1>\r\n")
    frames = [ethernet("02:00:00:00:01:01", "02:00:00:00:01:02",
                       udp("10.200.0.1", "10.200.0.2", 5060, 5060, text))]
    leaks = leakscan.find_leaks(ids, write_pcap(tmp_path / "numbers.pcap", frames))
    assert [(k.identifier, k.offset) for k in leaks] == [("201", 40 + 42 + text.index(b"201@"))]


# --------------------------------------------------------------------------
# Checksums


def corrupt_last_byte(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0xFF])


def test_broken_udp_checksum_is_reported(original, tmp_path):
    frames = scenario(REAL)
    frames[0] = corrupt_last_byte(frames[0])
    redacted = write_pcap(tmp_path / "broken.pcap", frames)
    assert leakscan.broken_checksums(original, redacted) == [BrokenChecksum(1, "udp", 1, 1)]
    assert leakscan.broken_checksums(original, original) == []


def test_removed_frames_shift_the_numbering(original, tmp_path):
    frames = scenario(REAL)
    frames[4] = corrupt_last_byte(frames[4])
    redacted = write_pcap(tmp_path / "dropped.pcap", frames[1:])
    assert leakscan.broken_checksums(original, redacted, removed_frames=[1]) == [
        BrokenChecksum(4, "udp", 5, 1)]


def test_checksum_already_bad_in_the_original_is_not_reported(tmp_path):
    frames = scenario(REAL)
    frames[0] = corrupt_last_byte(frames[0])
    bad = write_pcap(tmp_path / "bad.pcap", frames)
    assert leakscan.broken_checksums(bad, bad) == []


def test_checksum_of_a_header_quoted_in_icmp_is_checked(tmp_path):
    datagram = udp("192.168.1.2", "203.0.113.5", 5060, 5060, b"OPTIONS")
    quoted = datagram[:12] + packed("10.200.0.1") + datagram[16:]  # source changed, checksum not
    original = write_pcap(tmp_path / "icmp.pcap", [ethernet(
        "00:25:90:ab:cd:ef", "00:1a:2b:3c:4d:5e",
        icmp_port_unreachable("203.0.113.5", "192.168.1.2", datagram))])
    redacted = write_pcap(tmp_path / "icmp-redacted.pcap", [ethernet(
        "00:25:90:ab:cd:ef", "00:1a:2b:3c:4d:5e",
        icmp_port_unreachable("203.0.113.5", "192.168.1.2", quoted))])
    assert leakscan.broken_checksums(original, redacted) == [BrokenChecksum(1, "ip", 1, 2)]


# --------------------------------------------------------------------------
# Every real capture


CAPTURES = sorted({p for root in (SHARED_CAPTURES, FIXTURES)
                   for pattern in ("*.pcap", "*.pcapng") for p in root.rglob(pattern)})


def header_addresses(capture: Path) -> set:
    """Every IP header address tshark sees, tunnels and quotes included."""
    out = subprocess.run(
        ["tshark", "-n", "-r", str(capture), "-T", "fields", "-E", "occurrence=a",
         "-E", "aggregator=,", "-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst"],
        capture_output=True, text=True, check=False).stdout  # a capture cut short exits 2
    return {ipaddress.ip_address(a) for a in out.replace("\t", ",").replace("\n", ",").split(",") if a}


@pytest.fixture(scope="module")
def corpus():
    """Per capture, the futures of (identifiers, header addresses), two
    captures at a time: tshark runs in its own process, so threads overlap
    it with the parsing of another capture."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {c: (pool.submit(leakscan.original_identifiers, c), pool.submit(header_addresses, c))
               for c in CAPTURES}


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_learns_the_header_addresses_of_every_capture(corpus, capture):
    identifiers, headers = (job.result() for job in corpus[capture])
    assert identifiers.addresses >= headers - leakscan.EXEMPT_ADDRESSES


def test_the_corpus_is_there():
    assert len(CAPTURES) >= 50
