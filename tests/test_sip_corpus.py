"""Every SIP-over-UDP payload of the shared captures, parsed and compared with tshark's reading.

The truth is `../shared/captures/tshark/NAME.json` (tshark 4.0 `sip.*` fields).
Only what `capture_payloads` decodes (plain link layers, unfragmented UDP) is
compared here; tunnels, fragments and TCP belong to the packet layer's tests.
"""

import json

import pytest
from capture_payloads import udp_payloads
from locations import SHARED_CAPTURES as SHARED
from sipdiag.protocols.sip import looks_like_sip, parse_message, uri_parts

CAPTURES = sorted(p.name for p in SHARED.iterdir() if p.is_file() and (SHARED / "tshark" / f"{p.name}.json").exists())
# tshark decodes these layers itself; our helper does not, so their messages are out of scope here.
DECODED_ENCAPSULATIONS = ([], ["sll"])

# Where we read a message differently from tshark on purpose: our value, and why.
# Zoiper's responses end the Call-ID line with CR CR LF. Wireshark ends the header
# block at the stray CR and reads CSeq and the SDP as body; we take CR CR LF as a
# line end, so the message keeps its CSeq (what the phone meant) and its SDP.
_ZOIPER_CRCRLF = "CR CR LF after Call-ID"
# The sender's `l: 272` stops 100 bytes before the m= line; we keep the whole
# datagram as body (with an error), so the offer still shows its media.
_SHORT_LENGTH = "Content-Length shorter than the SDP"
DIVERGENCES = {
    ("snort3demo__digium.pcap", 6): (_ZOIPER_CRCRLF, {"cseq_seq": 102, "cseq_method": "INVITE"}),
    ("snort3demo__digium.pcap", 8): (_ZOIPER_CRCRLF, {"cseq_seq": 102, "cseq_method": "INVITE", "has_sdp": True}),
    ("snort3demo__digium.pcap", 11): (_ZOIPER_CRCRLF, {"cseq_seq": 1, "cseq_method": "ACK"}),
    ("snort3demo__digium.pcap", 12): (_ZOIPER_CRCRLF, {"cseq_seq": 2, "cseq_method": "INVITE", "has_sdp": True}),
    ("snort3demo__digium.pcap", 15): (_ZOIPER_CRCRLF, {"cseq_seq": 103, "cseq_method": "INVITE"}),
    ("snort3demo__digium.pcap", 16): (_ZOIPER_CRCRLF, {"cseq_seq": 103, "cseq_method": "INVITE", "has_sdp": True}),
    ("snort3demo__digium.pcap", 19): (_ZOIPER_CRCRLF, {"cseq_seq": 2, "cseq_method": "ACK"}),
    ("suricataverify__sip_compact_form.pcap", 1): (_SHORT_LENGTH, {"has_sdp": True}),
}


def _ours(message) -> dict:
    return {
        "method": message.method,
        "status": message.status,
        "r_uri": message.request_uri,
        "call_id": message.call_id,
        "cseq_seq": message.cseq,
        "cseq_method": message.cseq_method,
        "from": message.from_uri,
        "to": message.to_uri,
        "from_tag": message.from_addr.params.get("tag") if message.from_addr else None,
        "to_tag": message.to_addr.params.get("tag") if message.to_addr else None,
        "via_transport": message.vias[0].transport if message.vias else None,
        "has_sdp": message.sdp is not None,
    }


@pytest.mark.parametrize("name", CAPTURES)
def test_udp_sip_messages_match_tshark(name):
    truth = json.loads((SHARED / "tshark" / f"{name}.json").read_text())["sip"]["message_list"]
    expected = {
        entry["frame"]: {key: entry[key] for key in _ours(parse_message(b"")).keys()}
        for entry in truth
        if entry["transport"] == "UDP" and not entry["ip_fragmented"] and entry["encapsulation"] in DECODED_ENCAPSULATIONS
    }
    for (capture, frame), (_, ours) in DIVERGENCES.items():
        if capture == name:
            expected[frame].update(ours)
    found = {
        frame: _ours(parse_message(payload))
        for frame, _, _, payload in udp_payloads(SHARED / name)
        if looks_like_sip(payload)
    }
    assert found == expected


def test_corpus_is_not_empty():
    counted = sum(
        1 for name in CAPTURES for _, _, _, payload in udp_payloads(SHARED / name) if looks_like_sip(payload)
    )
    assert counted >= 150


def test_uri_parts_of_ipv6_request_uris():
    """As tshark splits sip.r-uri.user / host / port (we give the host without brackets)."""
    messages = [parse_message(p) for _, _, _, p in udp_payloads(SHARED / "sngrep__ipv6frag.pcap") if looks_like_sip(p)]
    requests = {(m.method, uri_parts(m.request_uri)) for m in messages if m.method}
    in_dialog = (None, "fd17:625c:f037:2:a00:27ff:feb9:4222", 25060)
    # the INVITE (user 08019200028) is IP-fragmented, so not among these payloads
    assert requests == {("ACK", in_dialog), ("BYE", in_dialog), ("PRACK", in_dialog), ("UPDATE", in_dialog)}
