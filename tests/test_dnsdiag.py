"""DNS rows, RFC 3263 chains and DNS findings: hand-built lookups and real captures."""

from pathlib import Path

import pytest
from sipdiag.analysis import dns_lookups
from sipdiag.model import CaptureInfo, CaptureResult, DnsMessage, DnsRecord, SipMessage

CLIENT, RESOLVER = "10.0.0.5", "10.0.0.1"


def query(frame, time, qname, qtype, qid, port=40000):
    return DnsMessage(frame, time, CLIENT, port, RESOLVER, 53, "udp", qid, False, 0, 0, qname, qtype)


def response(frame, time, qname, qtype, qid, rcode=0, answers=(), port=40000):
    records = [DnsRecord(qname, rtype, 60, data) for rtype, data in answers]
    return DnsMessage(frame, time, RESOLVER, 53, CLIENT, port, "udp", qid, True, 0, rcode, qname, qtype, records)


def capture(*dns, sip=(), last_time=None):
    times = [m.time for m in dns] + [m.time for m in sip]
    info = CaptureInfo(file="test.pcap", first_time=min(times), last_time=last_time or max(times))
    return CaptureResult(capture=info, dns_messages=list(dns), sip_messages=list(sip))


def codes(findings):
    return sorted(f.code for f in findings)


def test_rows_pair_query_with_first_response_and_time_it():
    result = capture(
        query(1, 100.0, "_sip._udp.example.com", "SRV", 7),
        response(2, 100.25, "_sip._udp.example.com", "SRV", 7, answers=[("SRV", "10 5 5060 pbx.example.com.")]),
    )
    rows, findings = dns_lookups.analyze(result)
    assert rows == [
        {
            "frame": 1, "time": 100.0, "qname": "_sip._udp.example.com", "qtype": "SRV", "rcode": "NOERROR",
            "answers": 1, "response_frame": 2, "response_ms": 250.0, "client": "10.0.0.5:40000",
            "server": "10.0.0.1:53", "answer_data": ["SRV 10 5 5060 pbx.example.com."], "answered_by": 2,
        }
    ]
    assert findings == []


def test_response_from_another_port_does_not_match():
    result = capture(
        query(1, 100.0, "example.com", "A", 9),
        response(2, 100.1, "example.com", "A", 9, answers=[("A", "1.2.3.4")], port=40001),
        last_time=110.0,
    )
    rows, findings = dns_lookups.analyze(result)
    assert rows[0]["rcode"] is None and rows[0]["response_frame"] is None
    assert codes(findings) == ["DNS_NO_RESPONSE", "NO_REGISTER_DNS_SUSPECT"]


def test_retransmitted_query_is_answered_once_but_not_reported_unanswered():
    result = capture(
        query(6, 1.0, "sip.example.com", "A", 3),
        query(7, 2.0, "sip.example.com", "A", 3),
        response(9, 3.5, "sip.example.com", "A", 3, answers=[("A", "192.0.2.10")]),
        last_time=60.0,
    )
    rows, findings = dns_lookups.analyze(result)
    assert [(r["frame"], r["response_frame"]) for r in rows] == [(6, 9), (7, None)]
    assert rows[0]["response_ms"] == 2500.0
    assert codes(findings) == ["DNS_SLOW"]


def test_nxdomain_with_no_register_is_the_suspect():
    result = capture(
        query(1, 5.0, "_sip._udp.exmaple.com", "SRV", 1),
        response(2, 5.02, "_sip._udp.exmaple.com", "SRV", 1, rcode=3),
        query(3, 5.03, "exmaple.com", "A", 2),
        response(4, 5.05, "exmaple.com", "A", 2, rcode=3),
    )
    rows, findings = dns_lookups.analyze(result)
    assert [r["rcode"] for r in rows] == ["NXDOMAIN", "NXDOMAIN"]
    by_code = {}
    for finding in findings:
        by_code.setdefault(finding.code, []).append(finding)
    assert sorted(by_code) == ["DNS_FAILURE", "NO_REGISTER_DNS_SUSPECT"]
    assert {f.severity for f in by_code["DNS_FAILURE"]} == {"error"}
    assert sorted(by_code["NO_REGISTER_DNS_SUSPECT"][0].frames) == [1, 2, 3, 4]
    chain = dns_lookups.resolution_chains(result)
    assert chain == [
        {
            "domain": "exmaple.com",
            "steps": [
                {"step": "NAPTR", "names": [], "state": "not_queried", "rcodes": [], "answers": [], "frames": []},
                {"step": "SRV", "names": ["_sip._udp.exmaple.com"], "state": "failed", "rcodes": ["NXDOMAIN"], "answers": [], "frames": [1, 2]},
                {"step": "A/AAAA", "names": ["exmaple.com"], "state": "failed", "rcodes": ["NXDOMAIN"], "answers": [], "frames": [3, 4]},
            ],
            "addresses": [],
            "outcome": "failed",
            "failed_step": "A/AAAA",
            "failure": "failed",
            "answered_up_to": None,
        }
    ]


def test_naptr_nxdomain_is_a_harmless_fallback_when_srv_resolves():
    result = capture(
        query(1, 1.0, "example.com", "NAPTR", 1),
        response(2, 1.01, "example.com", "NAPTR", 1, rcode=3),
        query(3, 1.02, "_sip._udp.example.com", "SRV", 2),
        response(4, 1.03, "_sip._udp.example.com", "SRV", 2, answers=[("SRV", "0 0 5060 pbx.example.com.")]),
        query(5, 1.04, "pbx.example.com", "A", 3),
        response(6, 1.05, "pbx.example.com", "A", 3, answers=[("A", "192.0.2.7")]),
    )
    _, findings = dns_lookups.analyze(result)
    assert [(f.code, f.severity) for f in findings] == [("DNS_FAILURE", "info")]
    [chain] = dns_lookups.resolution_chains(result)
    assert chain["outcome"] == "resolved" and chain["addresses"] == ["192.0.2.7"]
    assert [s["state"] for s in chain["steps"]] == ["failed", "ok", "ok"]


def test_empty_answer_for_sip_srv_while_registering_elsewhere():
    register = SipMessage(raw=b"", method="REGISTER", frame=9, time=2.0, request_uri="sip:example.com")
    result = capture(
        query(1, 1.0, "_sip._tcp.example.com", "SRV", 4),
        response(2, 1.01, "_sip._tcp.example.com", "SRV", 4),
        sip=[register],
    )
    _, findings = dns_lookups.analyze(result)
    assert [(f.code, f.severity, f.frames) for f in findings] == [("DNS_EMPTY_ANSWER", "warning", [1, 2])]


def test_unrelated_failure_is_only_info_when_sip_is_present():
    invite = SipMessage(raw=b"", method="INVITE", frame=9, time=2.0, request_uri="sip:bob@192.0.2.1")
    result = capture(
        query(1, 1.0, "wpad.lan", "A", 4),
        response(2, 1.01, "wpad.lan", "A", 4, rcode=3),
        sip=[invite],
    )
    _, findings = dns_lookups.analyze(result)
    assert [(f.code, f.severity, f.details["sip_related"]) for f in findings] == [("DNS_FAILURE", "info", False)]


def test_query_at_the_very_end_is_not_called_unanswered():
    result = capture(query(1, 10.0, "example.com", "A", 1), last_time=10.4)
    _, findings = dns_lookups.analyze(result)
    assert findings == []


# ---------------------------------------------------------------- real captures


def _analysis(path: Path):
    from sipdiag.engine import result_for_path

    return result_for_path(str(path))


def test_real_srv_answer_feeds_a_chain(shared_captures):
    result = _analysis(shared_captures / "suricataverify__dns-srv-sip.pcap")
    rows, findings = dns_lookups.analyze(result)
    assert [(r["frame"], r["qtype"], r["rcode"], r["answers"], r["response_frame"]) for r in rows] == [
        (1, "SRV", "NOERROR", 2, 2)
    ]
    assert rows[0]["response_ms"] == pytest.approx(15.03, abs=0.01)
    [chain] = dns_lookups.resolution_chains(result)
    assert chain["domain"] == "sip.voice.google.com"
    assert chain["steps"][1]["state"] == "ok"
    # SRV answered with targets, but no A/AAAA lookup of them was captured: not a failure.
    assert (chain["outcome"], chain["answered_up_to"], chain["failed_step"]) == ("incomplete", "SRV", None)
    assert findings == []


def test_real_naptr_points_at_sips_service(shared_captures):
    result = _analysis(shared_captures / "zeek__dns-naptr.pcap")
    rows, _ = dns_lookups.analyze(result)
    assert [(r["qtype"], r["rcode"], r["answers"]) for r in rows] == [("NAPTR", "NOERROR", 1)]
    assert rows[0]["response_ms"] == pytest.approx(726.27, abs=0.01)
    [chain] = dns_lookups.resolution_chains(result)
    assert chain["steps"][0]["state"] == "ok" and "_sips._tcp" in chain["steps"][0]["answers"][0]


def test_real_unanswered_sip_srv_queries(shared_captures):
    result = _analysis(shared_captures / "sngrep__aaa.pcap")
    rows, findings = dns_lookups.analyze(result)
    assert len(rows) == 303  # tshark: 303 queries
    assert sum(r["response_frame"] is None for r in rows) == 249  # tshark: 249 unanswered
    srv_silence = [f for f in findings if f.code == "DNS_NO_RESPONSE" and f.details["qtype"] == "SRV"]
    assert srv_silence and all(f.details["qname"].startswith("_sip._udp.") for f in srv_silence)
    assert "NO_REGISTER_DNS_SUSPECT" not in codes(findings)  # the capture has REGISTERs


@pytest.mark.parametrize(
    ("name", "rcode", "code"),
    [
        ("dns_nxdomain_no_register", "NXDOMAIN", "DNS_FAILURE"),
        ("dns_servfail_no_register", "SERVFAIL", "DNS_FAILURE"),
        ("dns_timeout_no_register", None, "DNS_NO_RESPONSE"),
    ],
)
def test_fixture_dns_failure_without_register(fixtures_dir, name, rcode, code):
    result = _analysis(fixtures_dir / "dns" / f"{name}.pcap")
    rows, findings = dns_lookups.analyze(result)
    sip_rows = [r for r in rows if r["qtype"] in ("SRV", "NAPTR", "A", "AAAA")]
    assert sip_rows and {r["rcode"] for r in sip_rows} == {rcode}
    assert code in codes(findings) and "NO_REGISTER_DNS_SUSPECT" in codes(findings)
    assert not any(m.method == "REGISTER" for m in result.sip_messages)
    assert all(c["outcome"] == "failed" for c in dns_lookups.resolution_chains(result))


def test_fixture_srv_ok_then_register(fixtures_dir):
    result = _analysis(fixtures_dir / "dns" / "dns_srv_ok_then_register.pcap")
    rows, findings = dns_lookups.analyze(result)
    assert any(r["qtype"] == "SRV" and r["rcode"] == "NOERROR" and r["answers"] >= 1 for r in rows)
    assert not [f for f in findings if f.severity != "info"]
    assert any(c["outcome"] == "resolved" for c in dns_lookups.resolution_chains(result))


def test_failure_answer_without_its_query_is_still_reported(shared_captures):
    # One packet: 192.168.1.1 answers NXDOMAIN for htb.local A; the query was not captured.
    rows, findings = dns_lookups.analyze(_analysis(shared_captures / "pcapplusplus__DNS_NXDomain.pcap"))
    assert rows == []  # the report's dns rows are queries, as tshark lists them
    [finding] = findings
    # Judged as if its query were there (below): an address lookup that failed in a capture without SIP
    # may be a phone failing to find its server, so it is SIP-related and unresolved.
    assert (finding.code, finding.condition, finding.severity, finding.frames) == (
        "DNS_FAILURE", "sip_unresolved", "error", [1])
    assert finding.details == {"qname": "htb.local", "qtype": "A", "rcode": "NXDOMAIN", "server": "192.168.1.1:53",
                               "sip_related": True}


def test_a_failure_gets_the_same_severity_with_or_without_its_query():
    answer = response(2, 1.01, "htb.local", "A", 4, rcode=3)
    with_query = [f for f in dns_lookups.analyze(capture(query(1, 1.0, "htb.local", "A", 4), answer))[1]
                  if f.code != "NO_REGISTER_DNS_SUSPECT"]  # its query makes it a suspect too
    without_query = dns_lookups.analyze(capture(answer))[1]
    assert [(f.code, f.condition, f.severity) for f in with_query] == [("DNS_FAILURE", "sip_unresolved", "error")]
    assert [(f.code, f.condition, f.severity) for f in without_query] == [("DNS_FAILURE", "sip_unresolved", "error")]
    invite = SipMessage(raw=b"", method="INVITE", frame=9, time=2.0, request_uri="sip:bob@192.0.2.1")
    beside_sip = dns_lookups.analyze(capture(answer, sip=[invite]))[1]
    assert [(f.code, f.condition, f.severity) for f in beside_sip] == [("DNS_FAILURE", "not_sip", "info")]
