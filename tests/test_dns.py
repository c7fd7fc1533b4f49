"""DNS parser and TCP framer: byte literals and every DNS message of the shared captures vs tshark."""

import json
import struct

import pytest
from capture_payloads import udp_payloads
from sipdiag.protocols.dns import RCODE_NAMES, DnsStreamFramer, parse_dns

# Response to a NAPTR query, as in zeek__dns-naptr.pcap frame 2 but built by hand:
# header, question "sip.example" NAPTR, one NAPTR answer with a compressed owner name,
# one SRV and one AAAA in the additional section, plus a CNAME via a pointer into the question.
QUESTION = b"\x03sip\x07example\x00" + struct.pack("!HH", 35, 1)
NAPTR_RDATA = struct.pack("!HH", 10, 50) + b"\x01s\x07SIP+D2U\x00" + b"\x04_sip\x04_udp\xc0\x0c"
SRV_RDATA = struct.pack("!HHH", 1, 2, 5060) + b"\x03pbx\xc0\x10"
AAAA_RDATA = bytes.fromhex("20010db8000000000000000000000001")
RESPONSE = (
    struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 2, 0, 2)
    + QUESTION
    + b"\xc0\x0c" + struct.pack("!HHIH", 35, 1, 300, len(NAPTR_RDATA)) + NAPTR_RDATA
    + b"\x05alias\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, 2) + b"\xc0\x0c"
    + b"\x04_sip\x04_udp\xc0\x0c" + struct.pack("!HHIH", 33, 1, 30, len(SRV_RDATA)) + SRV_RDATA
    + b"\x03pbx\xc0\x10" + struct.pack("!HHIH", 28, 1, 30, 16) + AAAA_RDATA
)


def test_response_records_in_presentation_form():
    message = parse_dns(RESPONSE)
    assert (message.id, message.is_response, message.opcode, message.rcode) == (0x1234, True, 0, 0)
    assert (message.qname, message.qtype) == ("sip.example", "NAPTR")
    assert [(r.name, r.rtype, r.ttl, r.data) for r in message.answers] == [
        ("sip.example", "NAPTR", 300, '10 50 "s" "SIP+D2U" "" _sip._udp.sip.example.'),
        ("alias.sip.example", "CNAME", 60, "sip.example."),
    ]
    assert message.authority == []
    assert [(r.name, r.rtype, r.data) for r in message.additional] == [
        ("_sip._udp.sip.example", "SRV", "1 2 5060 pbx.example."),
        ("pbx.example", "AAAA", "2001:db8::1"),
    ]


def test_truncated_record_section_keeps_question_and_earlier_records():
    for cut in range(len(RESPONSE) - 1, 12 + len(QUESTION) - 1, -1):
        message = parse_dns(RESPONSE[:cut])
        assert (message.qname, message.qtype) == ("sip.example", "NAPTR"), cut
        assert len(message.answers) + len(message.additional) <= 3


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x12\x34\x01\x00",  # shorter than a header
        struct.pack("!HHHHHH", 1, 0x7800, 1, 0, 0, 0) + QUESTION,  # opcode 15
        struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\x03sip\x07exa",  # question cut
        struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack("!HH", 1, 1),  # pointer loop
        struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\x80abc",  # reserved label type
    ],
)
def test_not_dns_returns_none(payload):
    assert parse_dns(payload) is None


def test_unknown_types_and_rcode_names():
    query = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\x01x\x00" + struct.pack("!HH", 4242, 1)
    assert parse_dns(query).qtype == "TYPE4242"
    refused = struct.pack("!HHHHHH", 7, 0x8105, 1, 0, 0, 0) + QUESTION
    assert RCODE_NAMES[parse_dns(refused).rcode] == "REFUSED"


def test_stream_framer_whole_byte_by_byte_and_partial():
    query = struct.pack("!HHHHHH", 9, 0x0100, 1, 0, 0, 0) + QUESTION
    stream = struct.pack("!H", len(query)) + query + struct.pack("!H", len(RESPONSE)) + RESPONSE
    partial = struct.pack("!H", 100) + b"abc"
    for chunks in ([stream + partial], [bytes([b]) for b in stream + partial]):
        framer = DnsStreamFramer()
        assert [m for chunk in chunks for m in framer.feed(chunk)] == [query, RESPONSE]
    for split in range(len(stream) + 1):
        framer = DnsStreamFramer()
        assert framer.feed(stream[:split]) + framer.feed(stream[split:]) == [query, RESPONSE]


DNS_CAPTURES = ["sngrep__aaa.pcap", "zeek__dns-naptr.pcap", "suricataverify__dns-srv-sip.pcap", "pcapplusplus__DNS_NXDomain.pcap"]


def _srv_target(data):
    priority, weight, port, target = data.split()
    return f"{target.rstrip('.')}:{port}"


def _naptr_summary(data):
    fields = data.split()
    return f"{fields[3].strip(chr(34))} -> {fields[5].rstrip('.')}"


@pytest.mark.parametrize("name", DNS_CAPTURES)
def test_every_dns_message_matches_tshark(shared_captures, name):
    truth = json.loads((shared_captures / "tshark" / f"{name}.json").read_text())["dns"]["list"]
    ours = []
    for frame, sport, dport, payload in udp_payloads(shared_captures / name):
        if 53 not in (sport, dport):
            continue
        message = parse_dns(payload)
        records = message.answers + message.authority + message.additional
        ours.append({
            "frame": frame,
            "id": f"0x{message.id:04x}",
            "response": message.is_response,
            "qname": message.qname,
            "qtype": message.qtype,
            "rcode": RCODE_NAMES[message.rcode] if message.is_response else None,
            "answers": len(message.answers) if message.is_response else None,
            # the truth files list record types of responses only (a query's EDNS OPT is left out)
            "rr_types_all_sections": [r.rtype for r in records] if message.is_response else [],
            "srv_targets": [_srv_target(r.data) for r in message.answers if r.rtype == "SRV"],
            "naptr": [_naptr_summary(r.data) for r in message.answers if r.rtype == "NAPTR"],
            "a": [r.data for r in records if r.rtype == "A"],
            "aaaa": [r.data for r in records if r.rtype == "AAAA"],
        })
    assert ours == [{key: entry[key] for key in ours[0]} for entry in truth]
