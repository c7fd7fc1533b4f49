"""Redaction acceptance on real captures.

Every check here is independent of the redactor's own bookkeeping: tshark
lists what is sensitive in the original and reads the redacted file; the
leak scan below searches the written bytes itself.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path

import pytest
from locations import FIXTURES
from locations import SHARED_CAPTURES as SHARED
from sipdiag.redaction.redactor import redact_command

SHARED_CAPTURES = sorted(p.name for p in SHARED.glob("*.pcap*"))
OWN_FIXTURES = [
    "redaction/redact_tcp_length_change.pcap",
    "redaction/redact_two_interfaces.pcapng",
    "redaction/redact_ipv6.pcap",
    "calls/call_fragmented_invite.pcap",
    "calls/call_one_way_rtp_private_sdp.pcap",
    "registration/reg_icmp_unreachable.pcap",  # addresses quoted inside ICMP errors
    "calls/call_tcp_compact.pcap",
]

ADDRESS_FIELDS = ["ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "arp.src.proto_ipv4", "arp.dst.proto_ipv4",
                  "sdp.connection_info.address", "sdp.owner.address", "dns.a", "dns.aaaa"]
# Values long and specific enough to be searched for in the raw bytes.
RAW_FIELDS = ["sip.Call-ID", "sip.User-Agent", "sip.Server", "sip.auth.nonce", "sip.auth.cnonce"]
# Values searched for where tshark reads them in the output (short users like "100" are everywhere in raw bytes).
PARSED_FIELDS = ["sip.r-uri.user", "sip.from.user", "sip.to.user", "sip.contact.user", "sip.pai.user",
                 "sip.auth.username", "sip.display.info", "sip.from.host", "sip.to.host", "sip.r-uri.host",
                 "dns.qry.name", "eth.src", "eth.dst"]
KEPT_ADDRESSES = {ipaddress.ip_address(a) for a in ("0.0.0.0", "255.255.255.255", "127.0.0.1", "::", "::1")}
CHECKSUM_ERRORS = ("ip.checksum.status==0 || udp.checksum.status==0 || tcp.checksum.status==0 "
                   "|| icmp.checksum.status==0 || icmpv6.checksum.status==0")


def tshark(path: Path, *args: str) -> list[str]:
    result = subprocess.run(["tshark", "-n", "-r", str(path), *args], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def field_values(path: Path, fields: list[str], heuristics: bool = True) -> dict[str, set[str]]:
    """Every value tshark dissects for each field (all occurrences)."""
    args = ["--enable-heuristic", "sip_udp", "--enable-heuristic", "sip_tcp"] if heuristics else []
    args += ["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=\x1f", "-E", "separator=/t"]
    for name in fields:
        args += ["-e", name]
    values: dict[str, set[str]] = {name: set() for name in fields}
    for line in tshark(path, *args):
        for name, cell in zip(fields, line.split("\t")):
            values[name].update(v for v in cell.split("\x1f") if v)
    return values


def sip_sequence(path: Path) -> list[str]:
    return tshark(path, "-2", "--enable-heuristic", "sip_udp", "--enable-heuristic", "sip_tcp",
                  "-Y", "sip && !icmp && !icmpv6", "-T", "fields", "-E", "occurrence=a",
                  "-e", "frame.number", "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.CSeq.seq")


def is_identifying_mac(text: str) -> bool:
    return not int(text.split(":")[0], 16) & 1 and text != "00:00:00:00:00:00"


def address_text_forms(address) -> list[str]:
    if address.version == 4:
        return [str(address)]
    return [address.compressed, address.exploded, ":".join(f"{int(g, 16):x}" for g in address.exploded.split(":"))]


def addresses_in(path: Path) -> set:
    found = set()
    for texts in field_values(path, ADDRESS_FIELDS).values():
        for text in texts:
            for value in text.split(","):
                try:
                    found.add(ipaddress.ip_address(value.strip("[]")))
                except ValueError:
                    pass  # an SDP address given as a host name: checked with the names
    return found


def independent_leaks(original: Path, redacted: Path) -> list[str]:
    raw = redacted.read_bytes().decode("latin-1").lower()
    leaks = []
    addresses = addresses_in(original) - KEPT_ADDRESSES
    after = addresses_in(redacted)
    leaks += [f"{a} still in a header" for a in addresses & after]
    for address in addresses:
        for form in address_text_forms(address):
            if re.search(rf"(?<![0-9a-f:.]){re.escape(form)}(?![0-9a-f]|\.[0-9])", raw):
                leaks.append(f"{form} spelled in the bytes")
    before = field_values(original, RAW_FIELDS)
    leaks += [f"{name} {v!r} in the bytes" for name, found in before.items() for v in found
              if len(v) >= 6 and v.lower() in raw]
    parsed_before, parsed_after = field_values(original, PARSED_FIELDS), field_values(redacted, PARSED_FIELDS)
    for name in PARSED_FIELDS:
        survivors = parsed_before[name] & parsed_after[name]
        survivors = {v for v in survivors if not _is_address_or_kept(v) and (not name.startswith("eth") or is_identifying_mac(v))}
        leaks += [f"{name} {v!r} survived" for v in survivors]
    return leaks


def _is_address_or_kept(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
        return True  # addresses are checked above, with their class rules
    except ValueError:
        # tshark reads the parameters of a host-less URI ("sip:;transport=UDP") as its host
        return value.lower() in ("localhost", "invalid") or value.startswith(";")


def capture_path(name: str) -> Path:
    return SHARED / name if (SHARED / name).exists() else FIXTURES / name


@pytest.fixture(scope="module")
def redacted(tmp_path_factory):
    """Redact each capture once per test module: {name: (original, output, exit code, summary)}."""
    done = {}
    directory = tmp_path_factory.mktemp("redacted")

    def get(name: str):
        if name not in done:
            original = capture_path(name)
            output = directory / Path(name).name
            code, summary = redact_command(str(original), str(output), key="test passphrase")
            done[name] = (original, output, code, summary)
        return done[name]

    return get


ALL = SHARED_CAPTURES + OWN_FIXTURES


@pytest.mark.parametrize("name", ALL)
def test_no_leak_found_by_an_independent_scan(redacted, name):
    original, output, code, summary = redacted(name)
    assert code == 0, summary["leak_locations"]
    assert independent_leaks(original, output) == []


@pytest.mark.parametrize("name", ALL)
def test_tshark_reads_the_same_packets_and_sip_sequence(redacted, name):
    original, output, _, summary = redacted(name)
    assert len(tshark(output)) == len(tshark(original)) == summary["packets_out"]
    assert sip_sequence(output) == sip_sequence(original)


@pytest.mark.parametrize("name", ALL)
def test_no_invalid_checksum(redacted, name):
    _, output, _, _ = redacted(name)
    checked = ["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"]
    assert tshark(output, *checked, "-Y", CHECKSUM_ERRORS) == []


@pytest.mark.parametrize("name", ALL)
def test_same_format_out(redacted, name):
    original, output, _, _ = redacted(name)
    # pcap magic (byte order, resolution) or pcapng section header, as given
    assert output.read_bytes()[:4] == original.read_bytes()[:4]


def diagnosis(report: dict) -> dict:
    return {
        "findings": sorted(f["code"] for f in report["findings"]),
        "registrations": [r.get("outcome") for r in report.get("registrations", [])],
        "calls": [c.get("outcome") for c in report.get("calls", [])],
        "sip_messages": [(m["frame"], m["method"], m["status"], m["cseq"]) for m in report["sip_messages"]],
        "dns": [(d["qtype"], d["rcode"], d["answers"]) for d in report.get("dns", [])],
    }


@pytest.mark.parametrize("name", ALL)
def test_diagnosis_of_redacted_capture_equals_original(redacted, name):
    from sipdiag import engine

    original, output, _, _ = redacted(name)
    assert diagnosis(engine.analyze_path(str(output))) == diagnosis(engine.analyze_path(str(original)))


@pytest.mark.parametrize("name", ["heplify__sip_ipv4_tcp.pcap", "redaction/redact_tcp_length_change.pcap"])
def test_tcp_stream_whose_text_changes_length_keeps_sequence_numbers_consistent(redacted, name):
    original, output, _, summary = redacted(name)
    lengths = tshark(original, "-Y", "tcp.len > 0", "-T", "fields", "-e", "tcp.len")
    new_lengths = tshark(output, "-Y", "tcp.len > 0", "-T", "fields", "-e", "tcp.len")
    assert lengths != new_lengths  # the rewrite really changed segment sizes
    # tshark's TCP analysis flags gaps, overlaps and unseen acks: none may appear.
    flags = "tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment || tcp.analysis.out_of_order || tcp.analysis.retransmission"
    assert len(tshark(output, "-Y", flags)) == len(tshark(original, "-Y", flags))


@pytest.mark.parametrize("name", ["sngrep__ipv6frag.pcap", "calls/call_fragmented_invite.pcap"])
def test_fragmented_invite_is_rewritten_across_its_fragments(redacted, name):
    original, output, _, _ = redacted(name)
    fragments = "ipv6.fragment || ip.flags.mf == 1 || ip.frag_offset > 0"
    assert len(tshark(output, "-Y", fragments)) == len(tshark(original, "-Y", fragments)) > 0
    invites = ["-Y", "sip.Method == INVITE && (ipv6.fragments || ip.fragments)", "-T", "fields",
               "-e", "frame.number", "-e", "sdp.connection_info.address"]
    reassembled, before = tshark(output, *invites), tshark(original, *invites)
    assert [line.split("\t")[0] for line in reassembled] == [line.split("\t")[0] for line in before] != []
    assert all(line.split("\t")[1] for line in reassembled)  # tshark reassembled and read the SDP


def interfaces(path: Path) -> list[str]:
    info = subprocess.run(["capinfos", "-M", str(path)], capture_output=True, text=True, check=True).stdout
    # "Encapsulation = Ethernet (1 - ether)" and "Number of packets = 107" per interface
    return [re.split("[:=]", line, maxsplit=1)[1].strip() for line in info.splitlines()
            if line.strip().startswith(("Encapsulation", "Number of packets", "Number of interfaces"))]


@pytest.mark.parametrize("name", ["redaction/redact_two_interfaces.pcapng", "heplify__erspan_sip_ipv4_udp.pcapng"])
def test_pcapng_keeps_every_interface_with_its_packets(redacted, name):
    original, output, _, _ = redacted(name)
    assert interfaces(output) == interfaces(original)
    assert len(interfaces(output)) >= 4


def test_same_passphrase_same_replacements_and_mapping_not_in_output(tmp_path):
    capture = SHARED / "redrabbit__sip-rtp-g711.pcap"
    _, first = redact_command(str(capture), str(tmp_path / "a.pcap"), key="k")
    _, second = redact_command(str(capture), str(tmp_path / "b.pcap"), key="k")
    _, third = redact_command(str(capture), str(tmp_path / "c.pcap"))
    assert first["mapping"] == second["mapping"] != third["mapping"]
    assert (tmp_path / "a.pcap").read_bytes() == (tmp_path / "b.pcap").read_bytes()
    for original, replacement in first["mapping"].items():
        assert original.encode() not in (tmp_path / "a.pcap").read_bytes()


def test_rtp_voice_is_zeroed_but_headers_kept(redacted):
    original, output, _, _ = redacted("redrabbit__sip-rtp-g711.pcap")
    fields = ["-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtp", "-T", "fields", "-e", "rtp.seq", "-e", "rtp.ssrc", "-e", "rtp.payload"]
    before, after = tshark(original, *fields), tshark(output, *fields)
    assert len(before) == len(after) > 100
    assert [line.split("\t")[:2] for line in before] == [line.split("\t")[:2] for line in after]
    assert all(set(line.split("\t")[2].replace(":", "")) <= {"0"} for line in after)
