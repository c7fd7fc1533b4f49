"""Bounded fuzzing of the whole pipeline: real captures with damaged packets
must still give a report (and a verified redaction or a refusal), never an
exception. The parsers are fuzzed alone in test_fuzz_parsers.py; this finds
what the analyses and the redactor do with what the parsers let through."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from locations import FIXTURES, REPO, SHARED_CAPTURES
from mutations import damage
from packet_builders import pcap
from sipdiag.capture.pcapfile import CaptureReader
from sipdiag.engine import CaptureAnalysis
from sipdiag.redaction.redactor import CaptureRedactor

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Small pcaps with registrations, calls over UDP/TCP/WebSocket, DNS and ICMP.
SOURCES = [REPO / "static" / "sample.pcap", SHARED_CAPTURES / "snort3demo__digium.pcap",
           SHARED_CAPTURES / "heplify__sip_tcp_websocket.pcap", SHARED_CAPTURES / "heplify__sip_ipv4_tcp.pcap",
           FIXTURES / "registration" / "reg_icmp_unreachable.pcap", FIXTURES / "dns" / "dns_srv_ok_then_register.pcap",
           FIXTURES / "calls" / "call_fragmented_invite.pcap", SHARED_CAPTURES / "sngrep__ipv6frag.pcap",
           SHARED_CAPTURES / "hepwireshark__hep.pcap", SHARED_CAPTURES / "zeek__dns-naptr.pcap",
           SHARED_CAPTURES / "sngrep__tlssaved.pcap"] + [
    FIXTURES / name for name in ("encap/encap_gtpu.pcap", "encap/encap_sctp.pcap", "encap/encap_nflog.pcap",
                                 "encap/encap_ieee80211.pcap", "encap/encap_radiotap.pcap", "encap/encap_mpls.pcap",
                                 "lan/lan_lldp.pcap", "lan/lan_dhcpv6.pcap", "leaks/leak_stun.pcap")]


def _records(path):
    """(link type, [(seconds, microseconds, data)]) of a pcap."""
    reader = CaptureReader()
    records = reader.feed(path.read_bytes())
    return records[0][2], [(int(time), round((time % 1) * 1e6), data) for _, time, _, data in records]


RECORDS = {path.name: _records(path) for path in SOURCES}


@st.composite
def damaged_capture(draw) -> bytes:
    """A real capture in which a few packets have bytes replaced, inserted, cut or lost."""
    linktype, records = RECORDS[draw(st.sampled_from(sorted(RECORDS)))]
    records = [list(r) for r in records]
    for _ in range(draw(st.integers(1, 6))):
        record = records[draw(st.integers(0, len(records) - 1))]
        record[2] = damage(draw, record[2], [0, 0x0A, 0x0D, 0x20, 0x3A, 0x3B, 0x40, 0x45, 0x80, 0xFF])
    return pcap([(sec, usec, data, len(data)) for sec, usec, data in records], linktype=linktype)


@FUZZ
@given(damaged_capture())
def test_damaged_packets_still_give_a_report(capture):
    analysis = CaptureAnalysis("damaged.pcap")
    analysis.feed(capture)
    report = analysis.finish()
    json.dumps(report)  # the page receives it as JSON
    # The per-packet safety net catches decoder exceptions; none should need it.
    assert not [w for w in report["capture"]["warnings"] if "could not be decoded" in w]
    assert report["capture"]["packets"] == len(CaptureReader().feed(capture))


@FUZZ
@given(damaged_capture())
def test_damaged_packets_are_redacted_or_refused(capture):
    redactor = CaptureRedactor("damaged.pcap", key="fuzz")
    redactor.learn(capture)
    redactor.finish_learning()
    output = [redactor.feed(capture), redactor.finish()]
    summary = redactor.verify(output, evidence=True)
    assert summary["packets_out"] == summary["packets_in"]
    json.dumps(summary)
