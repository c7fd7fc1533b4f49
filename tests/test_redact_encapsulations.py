"""Redaction of the link types, tunnels and LAN protocols the rewriter reads
beyond Ethernet/IP/UDP/TCP: NFLOG, PPP, Cisco HDLC, 802.11, radiotap, MPLS,
GTP-U, SCTP, LLDP, CDP, STP, ICMPv6 ND/MLD, IGMP, DHCPv6, STUN, NetBIOS, and
EUI-64 addresses.

The fixtures are the byte-built and lab-recorded captures of
tests/fixtures/encap, lan and leaks (see their READMEs). tshark is the
independent reader: it finds the SIP, the addresses and the checksums in the
redacted files; the planted identifiers are searched in the written bytes.
"""

from __future__ import annotations

import ipaddress
import json
import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from locations import FIXTURES
from packet_builders import INVITE, addr, ethernet, ipv4, ipv6, pcap, udp
from sipdiag.capture.pcapfile import CaptureReader
from sipdiag.redaction.encapsulations import cdp_checksum, crc32c
from sipdiag.redaction.redactor import redact_command

ENCAP = ["encap_nflog.pcap", "encap_ppp.pcap", "encap_ppp_hdlc.pcap", "encap_chdlc.pcap", "encap_ieee80211.pcap",
         "encap_radiotap.pcap", "encap_mpls.pcap", "encap_gtpu.pcap", "encap_gtpu_ipfrag.pcap", "encap_sctp.pcap",
         "encap_mixed.pcapng"]
LAN = ["lan_dhcp.pcap", "lan_dhcpv6.pcap", "lan_ipv6_nd.pcap", "lan_mdns.pcap", "lan_lldp.pcap", "lan_arp.pcap"]
LEAKS = ["leak_stun.pcap", "leak_netbios.pcap", "leak_arp_mac.pcap"]
ALL = [f"encap/{name}" for name in ENCAP] + [f"lan/{name}" for name in LAN] + [f"leaks/{name}" for name in LEAKS]
WITH_SIP = [name for name in ALL if name != "leaks/leak_netbios.pcap"]  # NetBIOS only

COOKIE = "SCTP state cookie (its server's own format: may hold the addresses)"
# What stays unread by design, frame by frame; every other frame is read whole.
STILL_UNREAD = {
    "encap/encap_sctp.pcap": {2: COOKIE, 3: COOKIE, 53: COOKIE, 54: COOKIE},
    "leaks/leak_netbios.pcap": {3: "NetBIOS datagram payload (type 0x11)"},  # the SMB browser announcement
}

# The identifiers the READMEs list (the leaks fixtures' come from identifiers.json).
ENCAP_MACS = ["1e:a0:96:36:87:30", "f2:e6:1b:88:7d:0a", "02:00:00:00:0a:01", "02:00:00:00:4d:01", "02:00:00:00:4d:02",
              "02:00:00:00:c8:01", "02:00:00:00:c8:02"]
ENCAP_ADDRESSES = ["10.77.0.1", "10.77.0.2", "10.200.0.1", "10.200.0.2", "fd77::1", "fd77::2"]
LAN_MACS = ["02:4a:41:4e:45:01", "02:50:42:58:00:02"]
LAN_ADDRESSES = ["10.77.0.1", "10.77.0.2", "10.77.0.100", "fd77::1", "fd77::2", "fd77::100", "fd77::4a:41ff:fe4e:4501",
                 "fe80::4a:41ff:fe4e:4501", "fe80::50:42ff:fe58:2"]
LAN_HOSTS = ["jane-laptop"]

CHECKSUM_PREFERENCES = ["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
                        "-o", "sctp.checksum:CRC 32c", "-o", "wlan.check_checksum:TRUE"]
BAD_CHECKSUM = " || ".join(f'{name}.checksum.status=="Bad"' for name in ("ip", "udp", "tcp", "sctp", "cdp", "icmpv6", "igmp"))
BAD_CHECKSUM += ' || wlan.fcs.status=="Bad"'
SIP_HEURISTICS = ["--enable-heuristic", "sip_udp", "--enable-heuristic", "sip_sctp"]
KEPT = {ipaddress.ip_address(a) for a in ("0.0.0.0", "255.255.255.255", "127.0.0.1", "::", "::1")}


def tshark(path: Path, *args: str) -> list[list[str]]:
    """Rows of -T fields output, each cell a list (every occurrence)."""
    result = subprocess.run(["tshark", "-n", "-r", str(path), *args, "-E", "occurrence=a", "-E", "aggregator=\x1f"],
                            capture_output=True, text=True, check=True)
    return [[cell.split("\x1f") if cell else [] for cell in line.split("\t")] for line in result.stdout.splitlines()]


def fields(path: Path, names: list[str], *args: str) -> list[list[list[str]]]:
    return tshark(path, *args, "-T", "fields", *[arg for name in names for arg in ("-e", name)])


def redact(source: Path, directory: Path) -> tuple[Path, dict]:
    output = directory / ("redacted-" + source.name)
    code, summary = redact_command(str(source), str(output), key="k")
    assert code == 0, summary.get("leak_locations")
    return output, summary


@pytest.fixture(scope="module")
def redacted(tmp_path_factory):
    directory = tmp_path_factory.mktemp("encapsulations")
    done: dict[str, tuple[Path, dict]] = {}

    def get(name: str) -> tuple[Path, Path, dict]:
        if name not in done:
            done[name] = redact(FIXTURES / name, directory)
        return (FIXTURES / name, *done[name])

    return get


# Frames scrubbed because the verification found a value the text rules
# missed: those rules' concern (tests/test_redact_rules.py), not a layer left unread.
VERIFICATION_REASONS = ("the verification found an original value in it", "still leaking once scrubbed: blanked whole")


@pytest.mark.parametrize("name", ALL)
def test_every_frame_is_read_but_what_cannot_be_by_design(redacted, name):
    _, _, summary = redacted(name)
    unread = {row["frame"]: row["why"] for row in summary["frames_scrubbed"] if row["why"] not in VERIFICATION_REASONS}
    assert unread == STILL_UNREAD.get(name, {})
    assert summary["leaks"] == 0


def sip_rows(path: Path) -> list[tuple]:
    rows = fields(path, ["frame.number", "sip.Method", "sip.Status-Code", "sip.CSeq.seq"], *SIP_HEURISTICS, "-Y", "sip")
    return [tuple(",".join(cell) for cell in row) for row in rows]


@pytest.mark.parametrize("name", ALL)
def test_the_sip_inside_is_still_sip(redacted, name):
    original, output, _ = redacted(name)
    # encap_sctp's INVITE comes in two DATA fragments (frames 5-6): it survives too.
    assert sip_rows(output) == sip_rows(original)


SIP_VALUES = ["ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "sip.Call-ID", "sip.Via.sent-by.address", "sip.contact.host"]


@pytest.mark.parametrize("name", WITH_SIP)
def test_the_sip_addresses_and_call_ids_are_replaced(redacted, name):
    original, output, _ = redacted(name)

    def values(path: Path) -> set[str]:
        rows = fields(path, SIP_VALUES, *SIP_HEURISTICS, "-Y", "sip")
        found = {value for row in rows for cell in row for value in cell}
        return {v for v in found if not _is_kept_address(v)}

    before = values(original)
    assert before and before.isdisjoint(values(output))


def _is_kept_address(text: str) -> bool:
    try:
        return ipaddress.ip_address(text) in KEPT
    except ValueError:
        return False


def bad_checksum_frames(path: Path) -> set[str]:
    return {row[0][0] for row in fields(path, ["frame.number"], *CHECKSUM_PREFERENCES, "-Y", BAD_CHECKSUM)}


@pytest.mark.parametrize("name", ALL)
def test_no_checksum_goes_bad(redacted, name):
    original, output, _ = redacted(name)
    assert bad_checksum_frames(output) <= bad_checksum_frames(original)


def planted(name: str) -> tuple[list[bytes], list[str], list[str], list[bytes]]:
    """(MACs, addresses, host names, other exact byte forms) planted in a fixture."""
    if name.startswith("encap/"):
        return [bytes.fromhex(m.replace(":", "")) for m in ENCAP_MACS], ENCAP_ADDRESSES, [], []
    if name.startswith("lan/"):
        return [bytes.fromhex(m.replace(":", "")) for m in LAN_MACS], LAN_ADDRESSES, LAN_HOSTS, []
    identifiers = json.loads((FIXTURES / "leaks" / "identifiers.json").read_text())[Path(name).name]["identifiers"]
    macs, addresses, hosts, forms = [], [], [], []
    for identifier in identifiers:
        category, value = identifier["category"], identifier["value"]
        if category == "mac_addresses":
            macs.append(bytes.fromhex(value.replace(":", "")))
        elif category == "addresses":
            addresses.append(value)
        elif category == "host_names":
            hosts.append(value)
        # XORed STUN addresses, NetBIOS encodings, EUI-64 interface ids: exact bytes.
        forms += [bytes.fromhex(form["hex"]) for form in identifier["forms"]
                  if form["form"] in ("xor4", "xor16", "netbios_encoded", "eui64") and category != "users"]
    return macs, addresses, hosts, forms


def eui64(mac: bytes) -> bytes:
    return bytes([mac[0] ^ 2]) + mac[1:3] + b"\xff\xfe" + mac[3:]


def netbios(host: str) -> bytes:
    return bytes(0x41 + (byte >> shift & 15) for byte in host.upper().encode().ljust(15)[:15] for shift in (4, 0))


def text_found(text: bytes, needle: str) -> bool:
    """`needle` as a whole token: not glued to more of an address or name."""
    return re.search(rb"(?<![0-9A-Za-z.:-])" + re.escape(needle.encode()) + rb"(?![0-9A-Za-z:-]|\.[0-9])", text) is not None


@pytest.mark.parametrize("name", ALL)
def test_planted_identifiers_are_gone_in_binary_and_text(redacted, name):
    _, output, _ = redacted(name)
    written = b"".join(data for _, _, _, data in CaptureReader().feed(output.read_bytes()))
    lower = written.lower()
    macs, addresses, hosts, forms = planted(name)
    for mac in macs:
        for needle in (mac, eui64(mac)):
            assert needle not in written, (mac.hex(":"), needle.hex())
        for text in (mac.hex(":"), mac.hex("-")):
            assert not text_found(lower, text), text
    for text in addresses:
        address = ipaddress.ip_address(text)
        assert address.packed not in written, text
        assert not text_found(lower, address.compressed) and not text_found(lower, address.exploded), text
    for host in hosts:
        assert host.lower().encode() not in lower and netbios(host) not in written, host
    for form in forms:
        assert form not in written, form.hex()


def test_multicast_macs_follow_their_replaced_groups(redacted):
    # The solicited-node group of a SLAAC address, and its Ethernet address
    # 33:33:ff:4e:45:01, end in the MAC's last 3 bytes.
    original, output, _ = redacted("lan/lan_ipv6_nd.pcap")
    assert bytes.fromhex("3333ff4e4501") in original.read_bytes()
    assert bytes.fromhex("3333ff4e4501") not in output.read_bytes()
    rows = fields(output, ["eth.dst", "ipv6.dst"], "-Y", "ipv6.dst == ff00::/8")
    assert rows
    for [eth_dst], [ipv6_dst] in rows:
        assert bytes.fromhex(eth_dst.replace(":", "")) == b"\x33\x33" + ipaddress.IPv6Address(ipv6_dst).packed[12:]


# -- byte-built captures ------------------------------------------------------


def capture(directory: Path, name: str, packets: list[bytes], linktype: int = 1, endian: str = "<") -> Path:
    path = directory / name
    records = [(1700000000 + i, 0, p, len(p)) for i, p in enumerate(packets)]
    path.write_bytes(pcap(records, endian=endian, linktype=linktype))
    return path


def written_packets(path: Path) -> list[bytes]:
    return [data for _, _, _, data in CaptureReader().feed(path.read_bytes())]


MAC_A, MAC_B = bytes.fromhex("001a2b3c4d5e"), bytes.fromhex("3c5282012020")


def test_crc32c_is_castagnoli():
    assert crc32c(b"123456789") == 0xE3069283  # the check value of RFC 3720 appendix B.4


@pytest.mark.parametrize("last", [0x41, 0xC1])
def test_cdp_checksum_of_an_odd_pdu_is_cisco_s(tmp_path, last):
    # An odd last byte is added sign-extended: Wireshark checks Cisco's way.
    tlvs = struct.pack("!HH", 1, 4 + 11) + b"jane-laptop" + struct.pack("!HH", 6, 4 + 6) + b"Linux" + bytes([last])
    pdu = b"\x02\xb4\x00\x00" + tlvs
    assert len(pdu) % 2
    pdu = pdu[:2] + struct.pack("!H", cdp_checksum(pdu)) + pdu[4:]
    llc = b"\xaa\xaa\x03\x00\x00\x0c\x20\x00" + pdu
    frame = b"\x01\x00\x0c\xcc\xcc\xcc" + MAC_A + struct.pack("!H", len(llc)) + llc
    source = capture(tmp_path, "cdp.pcap", [frame])
    output, summary = redact(source, tmp_path)
    assert summary["frames_scrubbed"] == []
    for path in (source, output):
        assert fields(path, ["cdp.checksum.status"]) == [[["1"]]]  # good
    assert b"jane-laptop" not in output.read_bytes() and MAC_A not in output.read_bytes()


def stun_response(transaction: bytes, mapped: str) -> bytes:
    cookie = b"\x21\x12\xa4\x42"
    packed = addr(mapped)
    mask = (cookie + transaction)[: len(packed)]
    family = 1 if len(packed) == 4 else 2
    value = struct.pack("!BBH", 0, family, 40000 ^ 0x2112) + bytes(a ^ m for a, m in zip(packed, mask, strict=True))
    attributes = struct.pack("!HH", 0x0020, len(value)) + value + struct.pack("!HH", 0x8022, 8) + b"test 1.0"
    length = len(attributes) + 8  # with the FINGERPRINT
    head = struct.pack("!HH", 0x0101, length) + cookie + transaction
    fingerprint = (zlib.crc32(head + attributes) ^ 0x5354554E) & 0xFFFFFFFF
    return head + attributes + struct.pack("!HHI", 0x8028, 4, fingerprint)


@pytest.mark.parametrize("mapped", ["203.0.113.45", "2001:db8:aa::20"])
def test_stun_xor_address_is_mapped_and_fingerprint_recomputed(tmp_path, mapped):
    transaction = bytes.fromhex("a4c8e2f1073b5d9e6f20b1c3")
    message = stun_response(transaction, mapped)
    packet = ipv4(udp(message, 3478, 40000), src="198.51.100.7", dst="192.168.1.20")
    source = capture(tmp_path, "stun.pcap", [ethernet(packet)])
    output, summary = redact(source, tmp_path)
    assert summary["frames_scrubbed"] == []
    [[xor_mapped]] = fields(output, ["stun.att.ipv4" if "." in mapped else "stun.att.ipv6"])
    assert xor_mapped == [summary["mapping"][mapped]]
    new = written_packets(output)[0][14 + 20 + 8 :]
    assert len(new) == len(message)
    fingerprint = (zlib.crc32(new[:-8]) ^ 0x5354554E) & 0xFFFFFFFF
    assert new[-8:] == struct.pack("!HHI", 0x8028, 4, fingerprint)


def test_eui64_address_follows_its_mac(tmp_path):
    # A router solicitation from the SLAAC link-local address of MAC_A, naming MAC_A in its option.
    source_address = str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + eui64(MAC_A)))
    solicitation = struct.pack("!BBHI", 133, 0, 0, 0) + b"\x01\x01" + MAC_A
    packet = ipv6(solicitation, next_header=58, src=source_address, dst="ff02::2")
    frame = b"\x33\x33\x00\x00\x00\x02" + MAC_A + b"\x86\xdd" + packet
    output, summary = redact(capture(tmp_path, "rs.pcap", [frame]), tmp_path)
    assert summary["frames_scrubbed"] == []
    [[[eth_src], [ipv6_src], [option]]] = fields(output, ["eth.src", "ipv6.src", "icmpv6.opt.linkaddr"])
    new_mac = bytes.fromhex(eth_src.replace(":", ""))
    assert new_mac != MAC_A and option == eth_src
    new_address = ipaddress.IPv6Address(ipv6_src)
    assert new_address.packed[8:] == eui64(new_mac)
    assert new_address.packed[:2] == b"\xfe\x80" or new_address in ipaddress.ip_network("fe80::/10")
    assert summary["mapping"][source_address] == ipv6_src


def test_spanning_tree_bridge_macs_are_replaced(tmp_path):
    bpdu = (struct.pack("!HBBB", 0, 0, 0, 0) + b"\x80\x00" + MAC_B + struct.pack("!I", 4) + b"\x80\x00" + MAC_A
            + struct.pack("!HHHHH", 0x8001, 0, 20 * 256, 2 * 256, 15 * 256))
    llc = b"\x42\x42\x03" + bpdu
    frame = b"\x01\x80\xc2\x00\x00\x00" + MAC_A + struct.pack("!H", len(llc)) + llc + bytes(60 - 14 - len(llc))
    output, summary = redact(capture(tmp_path, "stp.pcap", [frame]), tmp_path)
    assert summary["frames_scrubbed"] == []
    [[[eth_src], [root], [bridge]]] = fields(output, ["eth.src", "stp.root.hw", "stp.bridge.hw"])
    assert bridge == eth_src  # the same MAC, the same replacement
    assert MAC_A not in output.read_bytes() and MAC_B not in output.read_bytes()
    assert root != MAC_B.hex(":")


def test_ieee80211_management_frames_keep_replaced_addresses_and_lose_their_body(tmp_path):
    beacon = (b"\x80\x00\x00\x00" + b"\xff" * 6 + MAC_A + MAC_A + b"\x10\x00"
              + bytes(8) + b"\x64\x00\x01\x04" + b"\x00\x07lab-net")
    output, summary = redact(capture(tmp_path, "beacon.pcap", [beacon], linktype=105), tmp_path)
    assert summary["frames_scrubbed"] == [{"frame": 1, "why": "802.11 management frame body"}]
    new = written_packets(output)[0]
    assert new[:4] == beacon[:4] and new[4:10] == b"\xff" * 6  # broadcast stays
    assert new[10:16] == new[16:22] != MAC_A
    assert new[24:] == bytes(len(beacon) - 24)


def test_gtp_u_messages_other_than_t_pdus_are_unread(tmp_path):
    echo = struct.pack("!BBHIHBB", 0x32, 1, 4, 0, 7, 0, 0)
    packet = ipv4(udp(echo, 2152, 2152), src="10.200.0.1", dst="10.200.0.2")
    _, summary = redact(capture(tmp_path, "gtp.pcap", [ethernet(packet)]), tmp_path)
    assert summary["frames_scrubbed"] == [{"frame": 1, "why": "GTP-U message type 1"}]


@pytest.mark.parametrize("order", ["<", ">"])
def test_nflog_hardware_address_is_a_mac_in_either_byte_order(tmp_path, order):
    # NFLOG lengths are in the capturing host's order, as is its pcap header (tshark reads them by it).
    def tlv(kind: int, value: bytes) -> bytes:
        return struct.pack(order + "HH", 4 + len(value), kind) + value + bytes(-len(value) % 4)

    datagram = ipv4(udp(INVITE), src="10.0.0.1", dst="10.0.0.2")
    log = (b"\x02\x00\x00\x05" + tlv(1, b"\x08\x00\x03\x00") + tlv(8, b"\x00\x06\x00\x00" + MAC_A + b"\0\0")
           + tlv(10, b"sip-out\0") + tlv(9, datagram))
    output, summary = redact(capture(tmp_path, "nflog.pcap", [log], linktype=239, endian=order), tmp_path)
    assert summary["frames_scrubbed"] == []
    written = output.read_bytes()
    assert MAC_A not in written and addr("10.0.0.1") not in written
    [[prefix, sources, methods]] = fields(output, ["nflog.prefix", "ip.src", "sip.Method"])
    assert prefix == ["sip-out"] and methods == ["INVITE"] and sources == [summary["mapping"]["10.0.0.1"]]


def test_ppp_with_hdlc_address_and_control(tmp_path):
    frame = b"\xff\x03\x00\x21" + ipv4(udp(INVITE))
    output, summary = redact(capture(tmp_path, "ppp.pcap", [frame], linktype=9), tmp_path)
    assert summary["frames_scrubbed"] == []
    [[sources, methods]] = fields(output, ["ip.src", "sip.Method"])
    assert methods == ["INVITE"] and sources == [summary["mapping"]["10.0.0.1"]]


def test_dhcpv6_relay_messages_are_read_inside_each_other(tmp_path):
    duid = struct.pack("!HH", 3, 1) + MAC_A
    solicit = b"\x01\x12\x34\x56" + struct.pack("!HH", 1, len(duid)) + duid
    relay = b"\x0c\x00" + addr("2001:db8:1::1") + addr("fe80::1234") + struct.pack("!HH", 9, len(solicit)) + solicit
    packet = ipv6(udp(relay, 547, 547), src="2001:db8:1::1", dst="2001:db8:2::2")
    output, summary = redact(capture(tmp_path, "relay.pcap", [ethernet(packet, 0x86DD)]), tmp_path)
    assert summary["frames_scrubbed"] == []
    written = output.read_bytes()
    for original in (MAC_A, addr("2001:db8:1::1"), addr("fe80::1234")):
        assert original not in written
    [[links, peers, macs]] = fields(output, ["dhcpv6.linkaddr", "dhcpv6.peeraddr", "dhcpv6.duidll.link_layer_addr"])
    assert links == [summary["mapping"]["2001:db8:1::1"]] and peers == [summary["mapping"]["fe80::1234"]]
    assert macs and macs[0] != MAC_A.hex(":")


def test_sctp_heartbeat_info_keeps_no_original_address(tmp_path):
    # Linux puts the peer's sockaddr_in in the heartbeat info: family, port, address.
    info = struct.pack("=H", 2) + struct.pack("!H", 5060) + addr("10.77.0.2") + bytes(8)
    parameter = struct.pack("!HH", 1, 4 + len(info)) + info
    chunk = struct.pack("!BBH", 4, 0, 4 + len(parameter)) + parameter
    packet = struct.pack("!HHII", 5060, 5060, 0x5C7A0002, 0) + chunk
    source = capture(tmp_path, "heartbeat.pcap", [ethernet(ipv4(packet, 132, "10.77.0.1", "10.77.0.2"))])
    output, summary = redact(source, tmp_path)
    assert summary["frames_scrubbed"] == []
    assert addr("10.77.0.2") not in written_packets(output)[0]
    assert bad_checksum_frames(output) == set()
