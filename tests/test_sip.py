"""SIP parser and stream framer: byte literals and real messages from the shared captures."""

import json

import pytest
from capture_payloads import tcp_segments, udp_payloads
from locations import FIXTURES, SHARED_CAPTURES
from sipdiag.engine import result_for_path
from sipdiag.model import NameAddr
from sipdiag.protocols.sdp import decimal_number
from sipdiag.protocols.sip import (
    COMPACT_FORMS,
    SipStreamFramer,
    looks_like_sip,
    parse_digest,
    parse_message,
    parse_name_addr,
    parse_via,
    split_top_level,
    uri_parts,
)

INVITE_SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/AVP 0 101\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
)
INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;received=192.0.2.1;rport=5070\r\n"
    b"Via: SIP/2.0/TCP [2001:db8::9]:5061;branch=z9hG4bK77, SIP / 2.0 / udp proxy.example:5080;branch=z9hG4bK1\r\n"
    b"Max-Forwards: 70\r\n"
    b'To: "Bob, the builder" <sip:bob@biloxi.example.com>\r\n'
    b"From: Alice <sip:alice@atlanta.example.com;transport=tcp>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>;expires=60, \"x,y\" <sip:a2@h;lr>;q=0.5\r\n"
    b"Subject: multi\r\n"
    b" line\r\n"
    b"\tsubject\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n" % len(INVITE_SDP)
) + INVITE_SDP

COMPACT = (
    b"SIP/2.0 200 OK\n"
    b"v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport\n"
    b"f: <sip:a@b>;tag=x\n"
    b"t: sip:c@d;tag=y\n"
    b"i: abc@d\n"
    b"CSEQ: 2 register\n"
    b"m: *\n"
    b"c: application/sdp; charset=utf-8\n"
    b"l: 4\n"
    b"k: path\n"
    b"e: gzip\n"
    b"s: hi\n"
    b"o: presence\n"
    b"u: dialog\n"
    b"r: <sip:x@y>\n"
    b"b: <sip:z@y>\n"
    b"y: sig\n"
    b"x: 1800\n"
    b"a: *;audio\n"
    b"n: <https://x>\n"
    b"j: *;video\n"
    b"Expires: 3600\n"
    b"\n"
    b"v=0\n"
)


def test_looks_like_sip_accepts_requests_and_responses():
    assert looks_like_sip(INVITE)
    assert looks_like_sip(COMPACT)
    assert looks_like_sip(memoryview(b"NEWMETHOD sip:x SIP/2.0\r\n"))
    assert looks_like_sip(b"SIP/2.0 180 Ringing\r\n")


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80\x00\x12\x34" + bytes(40),  # RTP
        b"SIP/2.0 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"invite sip:x SIP/2.0\r\n",
        b"INVITE sip:x SIP/3.0\r\n",
        b"INVITE\r\nsip:x SIP/2.0\r\n",
        b"SIP/2.0 ",
        b"",
    ],
)
def test_looks_like_sip_rejects(payload):
    assert not looks_like_sip(payload)


def test_request_headers_and_derived_fields():
    message = parse_message(INVITE)
    assert message.errors == []
    assert (message.method, message.request_uri) == ("INVITE", "sip:bob@biloxi.example.com")
    assert message.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert (message.cseq, message.cseq_method) == (314159, "INVITE")
    assert message.header("subject") == "multi line subject"
    assert message.to_addr.display_name == "Bob, the builder"
    assert message.to_addr.uri == "sip:bob@biloxi.example.com"
    assert message.from_addr.uri == "sip:alice@atlanta.example.com;transport=tcp"
    assert message.from_addr.params == {"tag": "1928301774"}
    assert [(v.transport, v.host, v.port, v.branch) for v in message.vias] == [
        ("UDP", "pc33.atlanta.example.com", None, "z9hG4bKnashds8"),
        ("TCP", "2001:db8::9", 5061, "z9hG4bK77"),
        ("UDP", "proxy.example", 5080, "z9hG4bK1"),
    ]
    assert (message.vias[0].received, message.vias[0].rport) == ("192.0.2.1", 5070)
    assert message.vias[1].rport is None
    assert [(c.uri, c.display_name, c.params) for c in message.contacts] == [
        ("sip:alice@pc33.atlanta.example.com", None, {"expires": "60"}),
        ("sip:a2@h;lr", "x,y", {"q": "0.5"}),
    ]
    assert message.content_type == "application/sdp"
    assert message.body == INVITE_SDP
    assert message.sdp.connection == "192.0.2.101"
    assert message.sdp.media[0].payload_types == [0, 101]


def test_compact_forms_bare_lf_and_star_contact():
    message = parse_message(COMPACT)
    assert message.errors == []
    assert (message.status, message.reason) == (200, "OK")
    names = [name for name, _ in message.headers]
    assert set(COMPACT_FORMS.values()) <= set(names)
    assert message.call_id == "abc@d"
    assert (message.cseq, message.cseq_method) == (2, "REGISTER")
    assert message.to_addr.uri == "sip:c@d" and message.to_addr.params == {"tag": "y"}
    assert message.vias[0].rport == 0
    assert [c.uri for c in message.contacts] == ["*"]
    assert message.expires == 3600
    assert message.content_type == "application/sdp"
    assert message.body == b"v=0\n"


def test_body_longer_and_shorter_than_content_length_keeps_what_is_there():
    head = b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 5\r\n\r\n"
    longer = parse_message(head + b"hello world")
    assert longer.body == b"hello world"
    assert longer.errors == ["6 bytes after the Content-Length body (5 bytes)"]
    shorter = parse_message(head + b"hel")
    assert shorter.body == b"hel"
    assert shorter.errors == ["body shorter than Content-Length (3 of 5 bytes)"]
    padded = parse_message(head + b"hello\r\n")  # trailing line end is not damage
    assert (padded.body, padded.errors) == (b"hello", [])


def test_header_names_as_written_and_a_known_name_without_its_colon():
    """Names are looked up as written (case, compact form, a space before the colon); a
    line holding only a name already seen with a colon is still damage, and a line of
    blanks (CRLF or bare LF) no header."""
    parse_message(b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n")  # "Via" now known
    message = parse_message(b"OPTIONS sip:a SIP/2.0\r\nVia\r\nCALL-ID : x\r\n \r\n\t\nv: SIP/2.0/UDP h\n"
                            b"cseq:1 OPTIONS\r\n\r\n")
    assert list(message.headers) == [("call-id", "x"), ("via", "SIP/2.0/UDP h"), ("cseq", "1 OPTIONS")]
    assert message.errors == ["malformed header line: 'Via'"]
    assert (message.call_id, message.vias[0].host, message.cseq) == ("x", "h", 1)


@pytest.mark.parametrize(
    "data, error",
    [
        (b"", "no blank line after the headers"),
        (b"\x00\xff garbage", "bad request line"),
        (b"SIP/2.0 abc Nope\r\n\r\n", "bad status line"),
        (b"OPTIONS sip:a SIP/2.0\r\nno colon here\r\n\r\n", "malformed header line"),
        (b"OPTIONS sip:a SIP/2.0\r\nCSeq: x OPTIONS\r\n\r\n", "bad CSeq"),
        (b"OPTIONS sip:a SIP/2.0\r\nVia: nonsense\r\n\r\n", "bad Via"),
        (b"OPTIONS sip:a SIP/2.0\r\nContent-Length: bad\r\n\r\n", "bad Content-Length"),
    ],
)
def test_malformed_input_is_recorded_not_raised(data, error):
    message = parse_message(data)
    assert any(e.startswith(error) for e in message.errors), message.errors


def test_multipart_body_sdp_part():
    body = (
        b"--XyZ\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nc=IN IP4 198.51.100.7\r\n"
        b"m=audio 4000 RTP/AVP 8\r\n\r\n--XyZ\r\nContent-Type: application/isup\r\n\r\n\x01\x02\r\n--XyZ--\r\n"
    )
    data = (
        b"INVITE sip:x@y SIP/2.0\r\nContent-Type: multipart/mixed;boundary=XyZ\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )
    message = parse_message(data)
    assert message.content_type == "multipart/mixed"
    assert message.sdp.connection == "198.51.100.7"
    assert message.sdp.media[0].payload_types == [8]


def test_parse_digest_quoted_and_unquoted():
    credentials = parse_digest(
        'Digest username="bob", realm="biloxi.com",nonce="dcd98b, 7102dd2f0e8b1d0b", '
        "uri=\"sip:bob@biloxi.com\", qop=auth, nc=00000001, algorithm=MD5, opaque=\"\""
    )
    assert credentials.scheme == "Digest"
    assert credentials.params == {
        "username": "bob",
        "realm": "biloxi.com",
        "nonce": "dcd98b, 7102dd2f0e8b1d0b",
        "uri": "sip:bob@biloxi.com",
        "qop": "auth",
        "nc": "00000001",
        "algorithm": "MD5",
        "opaque": "",
    }


@pytest.mark.parametrize(
    "uri, parts",
    [
        ("sip:alice@example.com:5080;transport=tcp", ("alice", "example.com", 5080)),
        ("<sips:alice:secret@[2001:db8::1]:5061>", ("alice", "2001:db8::1", 5061)),
        ("sip:+4930123;npdi@gw.example?subject=x", ("+4930123;npdi", "gw.example", None)),
        ("sip:registrar.example.com", (None, "registrar.example.com", None)),
        ("tel:+1-201-555-0123;phone-context=x", ("+1-201-555-0123", None, None)),
    ],
)
def test_uri_parts(uri, parts):
    assert uri_parts(uri) == parts


def test_split_top_level_respects_quotes_and_brackets():
    assert split_top_level('"a,\\"b" <sip:x;y,z>, c', ",") == ['"a,\\"b" <sip:x;y,z>', " c"]


# ------------------------------------------------------------------ real captures


def _sip_payloads(path):
    return [(frame, payload) for frame, _, _, payload in udp_payloads(path) if looks_like_sip(payload)]


def test_compact_form_capture(shared_captures):
    [(frame, payload)] = _sip_payloads(shared_captures / "suricataverify__sip_compact_form.pcap")
    message = parse_message(payload)
    assert message.call_id == "105090259-446faf7a@192.168.1.2"
    assert message.vias[0].host == "192.168.1.2" and message.vias[0].rport == 0
    assert message.content_type == "application/sdp"
    # the sender's `l: 272` is 100 bytes short of the SDP it sent: keep all of it
    assert message.errors == ["100 bytes after the Content-Length body (272 bytes)"]
    media = message.sdp.media[0]
    assert (media.port, media.payload_types, media.rtpmap) == (30000, [0, 8, 97, 2, 3], {0: "pcmu/8000"})


def test_invalid_content_length_capture(shared_captures):
    messages = [parse_message(p) for _, p in _sip_payloads(shared_captures / "zeek__invalid-content-length.pcap")]
    assert [m.errors for m in messages] == [["bad Content-Length: 'bad'"], ["bad Content-Length: 'xyz'"]]
    assert messages[0].call_id == "a84b4c76e66710@10.0.0.1" and messages[0].cseq == 1


def test_message_without_final_blank_line_capture(shared_captures):
    frame, payload = _sip_payloads(shared_captures / "snort3demo__digium.pcap")[0]
    message = parse_message(payload)
    assert message.errors == ["no blank line after the headers"]
    assert (message.method, message.cseq, message.expires) == ("REGISTER", 1, 3600)
    assert message.contacts[0].uri == "sip:200@172.16.1.2:9999;rinstance=7a6a6a2bab417654;transport=UDP"
    assert message.from_addr.display_name == "200" and message.from_addr.params == {"tag": "c6202751"}


# ------------------------------------------------------------------ stream framer

STREAM_MESSAGES = [
    b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 0\r\n\r\n",
    b"MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\nCall-ID: 2\r\n\r\nhello",
    b"SIP/2.0 200 OK\nCall-ID: 3\n\n",  # bare LF, no Content-Length: empty body on a stream
    b"NOTIFY sip:a@b SIP/2.0\r\ncontent-length:3\r\n\r\n\r\n\r",  # body that is all line ends
]
# RFC 5626 keep-alives between messages and garbage that must be skipped
STREAM = (
    b"\r\n\r\n"
    + STREAM_MESSAGES[0]
    + b"\r\n"
    + STREAM_MESSAGES[1]
    + b"\x16\x03\x01 junk line\r\n"
    + STREAM_MESSAGES[2]
    + STREAM_MESSAGES[3]
    + b"\r\n\r\n"
)
PARTIAL_NEXT = b"INVITE sip:x@y SIP/2.0\r\nContent-Length: 10\r\n\r\nabc"


def _framed(chunks):
    framer = SipStreamFramer()
    messages = [m.data for chunk in chunks for m in framer.feed(chunk)]
    return messages, framer


def test_framer_whole_stream():
    messages, framer = _framed([STREAM + PARTIAL_NEXT])
    assert messages == STREAM_MESSAGES
    assert framer.take_skipped() == (1, 15)  # the junk line, as one stretch


def test_framer_byte_by_byte():
    messages, framer = _framed([bytes([b]) for b in STREAM + PARTIAL_NEXT])
    assert messages == STREAM_MESSAGES
    assert framer.take_skipped() == (1, 15)


def test_framer_every_split_point():
    data = STREAM + PARTIAL_NEXT
    for split in range(len(data) + 1):
        messages, _ = _framed([data[:split], data[split:]])
        assert messages == STREAM_MESSAGES, split


def test_framer_completes_partial_message_later():
    framer = SipStreamFramer()
    assert framer.feed(PARTIAL_NEXT) == []
    assert [m.data for m in framer.feed(b"defghij" + STREAM_MESSAGES[0][:10])] == [PARTIAL_NEXT + b"defghij"]
    assert [m.data for m in framer.feed(STREAM_MESSAGES[0][10:])] == [STREAM_MESSAGES[0]]


def test_framer_keeps_a_runaway_header_block_cut_and_recovers():
    framer = SipStreamFramer()
    start = b"INVITE sip:x SIP/2.0\r\n"
    [cut] = framer.feed(start + b"X-Filler: " + b"a" * 70000 + b"\r\n")
    assert cut.data == start  # complete lines only: the one over the limit goes with the rest
    assert cut.errors == ["header block longer than 65536 bytes: the message is cut after 22 bytes, "
                          "and its rest skipped up to the next SIP start line"]
    assert [m.data for m in framer.feed(b"X-Rest: 1\r\n\r\n" + STREAM_MESSAGES[0])] == [STREAM_MESSAGES[0]]
    assert framer.take_skipped() == (1, 70012 + 11)


def test_framer_keeps_headers_with_unusable_content_length():
    framer = SipStreamFramer()
    bad = b"INVITE sip:x SIP/2.0\r\nContent-Length: many\r\n\r\n"
    messages = framer.feed(bad + STREAM_MESSAGES[0])
    assert [(m.data, m.errors) for m in messages] == [
        (bad, ["Content-Length 'many' is not a length: the body is taken up to the next SIP start line (0 bytes)"]),
        (STREAM_MESSAGES[0], []),
    ]


@pytest.mark.parametrize(
    "data",
    [
        "SIP/2.0 ²00 OK\r\n\r\n".encode(),
        "OPTIONS sip:a SIP/2.0\r\nCSeq: ¹ OPTIONS\r\nExpires: ²\r\nVia: SIP/2.0/UDP h:⁵;rport=³\r\n\r\n".encode(),
        b"OPTIONS sip:a SIP/2.0\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
    ],
)
def test_numbers_other_than_ascii_digits_are_damage_not_crashes(data):
    message = parse_message(data)
    assert message.status is None and message.cseq is None and message.expires is None
    assert message.errors
    assert all(v.port is None and v.rport == 0 for v in message.vias)


def test_framer_keeps_content_length_beyond_int_limits_as_damage():
    framer = SipStreamFramer()
    huge = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n"
    messages = framer.feed(huge + STREAM_MESSAGES[0])
    assert [m.data for m in messages] == [huge, STREAM_MESSAGES[0]]
    assert messages[0].errors[0].startswith("Content-Length '999")


def test_framer_on_real_tcp_capture_matches_tshark(shared_captures):
    """Segments arrive in order without retransmissions in this capture: one framer per direction."""
    name = "heplify__sip_ipv4_tcp.pcap"
    framers: dict[tuple, SipStreamFramer] = {}
    found = []
    for frame, flow, _, payload in tcp_segments(shared_captures / name):
        for framed in framers.setdefault(flow, SipStreamFramer()).feed(payload, frame):
            message = parse_message(framed.data)
            found.append((framed.tag, message.method or message.status, message.call_id, message.cseq,
                          framed.errors + message.errors))
    truth = json.loads((shared_captures / "tshark" / f"{name}.json").read_text())["sip"]["message_list"]
    assert found == [(e["frame"], e["method"] or e["status"], e["call_id"], e["cseq_seq"], []) for e in truth]
    assert [(framer.take_skipped(), framer.close()) for framer in framers.values()] == [((0, 0), [])] * 2


# ---------------------------------------------------------------- the lean path, over the corpus

CORPUS = sorted(p for folder in (SHARED_CAPTURES, FIXTURES) for p in folder.rglob("*")
                if p.suffix in (".pcap", ".pcapng"))


def _facts_from_header_list(message) -> dict:
    """What the derived attributes must say, read the slow way: a scan of the header list per header."""
    cseq = message.header("cseq")
    number, _, method = (cseq or "").strip().partition(" ")
    vias = [parse_via(item) for value in message.header_values("via") for item in split_top_level(value, ",")]
    contacts = [item.strip() for value in message.header_values("contact") for item in split_top_level(value, ",")]
    content_type = message.header("content-type")
    return {
        "call_id": message.header("call-id"),
        "cseq": decimal_number(number) if cseq is not None else None,
        "cseq_method": (method.strip().upper() or None) if cseq is not None and decimal_number(number) is not None
        else None,
        "from": parse_name_addr(message.header("from")) if message.header("from") is not None else None,
        "to": parse_name_addr(message.header("to")) if message.header("to") is not None else None,
        "vias": tuple(via for via in vias if via is not None),
        "contacts": tuple(NameAddr(uri="*") if item == "*" else parse_name_addr(item) for item in contacts if item),
        "expires": decimal_number(message.header("expires")) if message.header("expires") is not None else None,
        "content_type": content_type.split(";", 1)[0].strip().lower() if content_type is not None else None,
    }


def test_one_pass_header_index_gives_the_facts_the_header_list_gives_on_every_corpus_message():
    messages = [m for path in CORPUS for m in result_for_path(str(path)).sip_messages]
    assert len(messages) >= 800  # every SIP message of the corpus (800 today): a smaller one would prove less
    for message in messages:
        derived = {"call_id": message.call_id, "cseq": message.cseq, "cseq_method": message.cseq_method,
                   "from": message.from_addr, "to": message.to_addr, "vias": message.vias,
                   "contacts": message.contacts, "expires": message.expires, "content_type": message.content_type}
        assert derived == _facts_from_header_list(message), (message.frame, message.raw[:80])


def test_header_names_are_shared_between_messages():
    """One string per header name, however many messages carry it: memory follows messages' values, not names."""
    messages = result_for_path(str(FIXTURES / "calls" / "call_408_proxy.pcap")).sip_messages
    names = [name for message in messages for name, _ in message.headers]
    assert len({id(name) for name in names}) == len(set(names)) < len(names)
