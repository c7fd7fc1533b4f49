"""Redaction rules on small hand-built captures: fail closed, metadata, options, text forms."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from sipdiag.capture.pcapfile import CaptureReader
from sipdiag.redaction.checksums import internet_checksum
from sipdiag.redaction.redactor import CaptureRedactor, redact_command
from sipdiag.redaction.text import RedactionOptions

SDP = (b"v=0\r\no=alice 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
       b"a=rtcp:4001 IN IP6 2001:0DB8:0000:0000:0000:0000:0000:0007\r\n")
INVITE = (
    b"INVITE sip:+4915112345678@pbx.example.org SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK1;received=2001:db8::7\r\n"
    b'From: "Alice Example" <sip:alice@example.org>;tag=1\r\n'
    b"To: <sip:+4915112345678@pbx.example.org>\r\n"
    b"Call-ID: a84b4c76e66710@10.1.2.3\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@10.1.2.3:5060>\r\n"
    b'Authorization: Digest username="alice", realm="example.org", nonce="84a4cc6f3082121f32b42a2187831a9e", '
    b'response="7587245234b3434cc3412213e5f113a5"\r\n'
    b"User-Agent: ExamplePhone 1.2.3\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n\r\n" % len(SDP)
) + SDP


def udp_ipv4(payload: bytes, src="10.1.2.3", dst="192.0.2.10", sport=5060, dport=5060) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)
    header = header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:]
    return header + udp


def ethernet(packet: bytes) -> bytes:
    return bytes.fromhex("020000000001") + bytes.fromhex("00163e112233") + b"\x08\x00" + packet


def block(block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", block_type, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def pcapng(packets: list[tuple[int, bytes]], linktypes=(1,)) -> bytes:
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                + option(1, b"captured at Alice's desk") + option(3, b"Linux 6.1 alice-laptop") + option(0, b""))
    idbs = b"".join(block(1, struct.pack("<HHI", linktype, 0, 65535) + option(2, b"eth0-alice") + option(0, b""))
                    for linktype in linktypes)
    epbs = b"".join(block(6, struct.pack("<IIIII", interface, 0, n, len(data), len(data)) + data + b"\0" * (-len(data) % 4)
                          + option(1, b"alice called bob") + option(0, b""))
                    for n, (interface, data) in enumerate(packets))
    return shb + idbs + epbs


def redact_bytes(data: bytes, **options) -> tuple[bytes, dict]:
    redactor = CaptureRedactor("test.pcapng", key="k", options=options or None)
    out = [redactor.feed(data[:37]), redactor.feed(data[37:]), redactor.finish()]  # split mid-block on purpose
    return b"".join(out), redactor.verify(out, evidence=False)


def test_sip_text_is_replaced_everywhere_and_content_length_follows():
    output, summary = redact_bytes(pcapng([(0, ethernet(udp_ipv4(INVITE)))]))
    assert summary["leaks"] == 0 and summary["packets_out"] == 1
    for secret in (b"4915112345678", b"alice", b"Alice Example", b"example.org", b"a84b4c76e66710", b"10.1.2.3",
                   b"2001:db8::7", b"2001:0DB8:0000", b"84a4cc6f3082121f", b"7587245234b3434c", b"ExamplePhone",
                   b"00163e112233", b"Alice's desk", b"alice-laptop", b"eth0-alice", b"alice called bob"):
        assert secret.lower() not in output.lower(), secret
    packet = CaptureReader().feed(output)[0][3]
    text = packet[42:]
    head, _, body = text.partition(b"\r\n\r\n")
    assert int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]) == len(body)
    assert struct.unpack_from("!H", packet, 14 + 2)[0] == len(packet) - 14  # IPv4 total length
    assert b"IN IP4 10." in body  # private stays private
    assert len(body) != len(SDP)  # the addresses changed length: the header had to follow


def test_switched_off_categories_are_kept():
    output, summary = redact_bytes(pcapng([(0, ethernet(udp_ipv4(INVITE)))]), users=False, display_names=False,
                                   user_agents=False, mac_addresses=False, pcapng_metadata=False)
    assert summary["leaks"] == 0
    for kept in (b"+4915112345678", b'"Alice Example"', b"ExamplePhone 1.2.3", b"eth0-alice", bytes.fromhex("00163e112233")):
        assert kept in output, kept
    for always in (b"10.1.2.3", b"84a4cc6f3082121f", b"7587245234b3434c"):
        assert always not in output


def test_options_come_from_the_pages_json_and_refuse_unknown_names():
    assert RedactionOptions.from_dict({"users": False}) == RedactionOptions(users=False)
    assert RedactionOptions.from_dict(None) == RedactionOptions()
    with pytest.raises(ValueError):
        RedactionOptions.from_dict({"user": False})


UNREAD_LINK_TYPE = pcapng([(0, ethernet(udp_ipv4(INVITE))), (1, b"log line: peer 10.1.2.3 rejected")], linktypes=(1, 147))


def test_what_cannot_be_read_is_scrubbed_by_default_and_named(tmp_path):
    # Interface 1 has a link type the redactor cannot read, and its packet
    # spells the address the readable packet revealed.
    capture = tmp_path / "mixed.pcapng"
    capture.write_bytes(UNREAD_LINK_TYPE)
    output = tmp_path / "out.pcapng"
    code, summary = redact_command(str(capture), str(output), key="k")
    assert code == 0 and summary["leaks"] == 0 and summary["policy"] == "scrub"
    assert summary["frames_scrubbed"] == [{"frame": 2, "why": "link type 147 is not one the redactor decodes"}]
    assert summary["handled"] == {"rewritten": 1, "scrubbed": 1, "dropped": 0}
    packets = CaptureReader().feed(output.read_bytes())
    assert [frame for frame, _, _, _ in packets] == [1, 2]  # the record stays, so frame numbers hold
    assert packets[1][3] == bytes(len(b"log line: peer 10.1.2.3 rejected"))


def test_what_cannot_be_read_is_refused_or_dropped_when_asked(tmp_path):
    capture = tmp_path / "mixed.pcapng"
    capture.write_bytes(UNREAD_LINK_TYPE)
    output = tmp_path / "out.pcapng"
    code, summary = redact_command(str(capture), str(output), key="k", policy="refuse")
    assert code != 0 and not output.exists()
    assert summary["refused"] == [{"frame": 2, "why": "link type 147 is not one the redactor decodes"}]
    assert list(tmp_path.iterdir()) == [capture]  # no temporary file left behind
    code, summary = redact_command(str(capture), str(output), key="k", policy="drop")
    assert code == 0 and summary["packets_out"] == 1
    assert summary["frames_dropped"] == [{"frame": 2, "why": "link type 147 is not one the redactor decodes"}]
    [(frame, _, _, packet)] = CaptureReader().feed(output.read_bytes())
    assert frame == 1 and b"INVITE sip:" in packet


def test_two_interfaces_and_every_block_survive():
    data = pcapng([(0, ethernet(udp_ipv4(INVITE))), (1, ethernet(udp_ipv4(b"hello", dport=9)))], linktypes=(1, 1))
    output, summary = redact_bytes(data)
    blocks = CaptureReader(blocks=True).feed(output)
    assert [b.block_type for b in blocks] == [b.block_type for b in CaptureReader(blocks=True).feed(data)]
    assert [b.interface for b in blocks if b.kind == "packet"] == [0, 1]
    assert [dict(b.options).get(2) for b in blocks if b.block_type == 1] == [b"if0", b"if1"]


def test_same_value_same_pseudonym_across_messages_and_files():
    first, _ = redact_bytes(pcapng([(0, ethernet(udp_ipv4(INVITE)))]))
    second, _ = redact_bytes(pcapng([(0, ethernet(udp_ipv4(INVITE.replace(b"CSeq: 1", b"CSeq: 2"))))]))
    call_id = lambda out: CaptureReader().feed(out)[0][3].split(b"Call-ID: ")[1].split(b"\r\n")[0]
    assert call_id(first) == call_id(second) != b"a84b4c76e66710@10.1.2.3"
    assert len(call_id(first)) == len(b"a84b4c76e66710@10.1.2.3")


@pytest.mark.parametrize("spelling", ["2001:db8:0:0:0:0:0:7", "2001:DB8::7", "[2001:db8::7]:5060", "2001:0db8:0000:0000:0000:0000:0000:0007"])
def test_every_ipv6_text_form_is_replaced_consistently(spelling):
    message = b"OPTIONS sip:x@[2001:db8::7] SIP/2.0\r\nX-Peer: " + spelling.encode() + b"\r\nContent-Length: 0\r\n\r\n"
    output, summary = redact_bytes(pcapng([(0, ethernet(udp_ipv4(message)))]))
    assert summary["leaks"] == 0
    replacement = ipaddress.ip_address(summary["mapping"]["2001:db8::7"])
    peer = CaptureReader().feed(output)[0][3].split(b"X-Peer: ")[1].split(b"\r\n")[0].decode()
    assert ipaddress.ip_address(peer.split("]")[0].strip("[")) == replacement
    assert len(peer.split(":")) == len(spelling.split(":")) or "::" in spelling  # the spelling style is kept


def test_pseudonyms_never_merge_two_values():
    from sipdiag.redaction.text import Pseudonyms

    pseudonyms = Pseudonyms(b"k")
    extensions = [f"{n:03d}" for n in range(300)]  # 300 of 1000 three-digit names: collisions are certain without care
    replaced = [pseudonyms.value("users", e) for e in extensions]
    assert len(set(replaced)) == len(extensions)
    assert all(len(r) == 3 and r.isdigit() and r != e for r, e in zip(replaced, extensions))
    assert [pseudonyms.value("users", e) for e in extensions] == replaced  # and each stays what it was given


def test_verification_finds_a_value_split_across_tcp_segments():
    """The fail-closed scan reads SIP over TCP as the reassembled message: a
    Call-ID cut in two by the segment boundary is still found."""
    from packet_builders import ethernet as ethernet_frame
    from packet_builders import ipv4, tcp

    cut = INVITE.index(b"a84b4c76e66710") + 7  # inside the Call-ID
    segments = [INVITE[:cut], INVITE[cut:]]
    capture = pcapng([(0, ethernet_frame(ipv4(tcp(segment, 1000 + sum(map(len, segments[:n]))), protocol=6,
                                                src="10.1.2.3", dst="192.0.2.10")))
                      for n, segment in enumerate(segments)])
    redactor = CaptureRedactor("split.pcapng", key="k")
    redactor.learn(capture)
    redactor.finish_learning()
    # Verify the original as if it were the output: every value is still there.
    summary = redactor.verify([capture], evidence=False)
    assert b"a84b4c76e66710@10.1.2.3" not in capture  # the raw bytes never spell it whole
    assert {"frame": 2, "what": "call ID 'a84b4c76e66710@10.1.2.3'"} in summary["leak_locations"]


def test_the_last_sweep_replaces_known_addresses_left_in_binary_payloads():
    """A DHCP option the rewriter does not interpret (82, relay agent
    information) spelling the client's address in binary: the generic sweep
    gives it the same replacement the headers got."""
    from packet_builders import addr

    bootp = (bytes([2, 1, 6, 0]) + bytes.fromhex("12345678") + bytes(8) + addr("10.1.2.3") + bytes(8)
             + bytes.fromhex("020000000001") + bytes(202) + bytes.fromhex("63825363"))
    dhcp = bootp + bytes([53, 1, 5, 82, 6, 5, 4]) + addr("10.1.2.3") + bytes([255])
    output, summary = redact_bytes(pcapng([(0, ethernet(udp_ipv4(dhcp, sport=67, dport=68)))]))
    packet = CaptureReader().feed(output)[0][3]
    replacement = addr(summary["mapping"]["10.1.2.3"])
    assert addr("10.1.2.3") not in packet and packet.count(replacement) >= 3  # IP header, yiaddr, option 82
    assert summary["leaks"] == 0 and summary["handled"]["scrubbed"] == 0
