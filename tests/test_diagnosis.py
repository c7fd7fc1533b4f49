"""Findings read as a diagnosis (issue 12): one finding per cause with its
instances named, severity set by the condition alone, and a cause leading the
findings it explains. Every capture we have goes through the real engine."""

from __future__ import annotations

import re
from collections import defaultdict
from functools import cache

import pytest
from locations import FIXTURES, REPO, SHARED_CAPTURES
from sipdiag.analysis.findings import EXPLAINS, SEVERITIES, Finding, diagnose
from sipdiag.engine import result_for_path
from sipdiag.report import build_report
from test_registration import Flow, lockout_flow
from test_registration import capture as registration_capture

CAPTURES = sorted(SHARED_CAPTURES.glob("*.pcap*")) + sorted(FIXTURES.rglob("*.pcap*"))


@cache
def analysed(path) -> tuple:
    result = result_for_path(str(path))
    return result, build_report(result)


def findings_of(name: str) -> list[dict]:
    path = next(p for p in CAPTURES if p.name == name)
    return analysed(path)[1]["findings"]


def by_code(findings: list[dict], code: str) -> list[dict]:
    return [f for f in findings if f["code"] == code]


# ---------------------------------------------------------------- severity by condition


def test_the_severity_table_in_design_is_the_code_s():
    design = (REPO / "docs" / "DESIGN.md").read_text()
    table = design.split("| code | condition | severity | when |\n| --- | --- | --- | --- |\n", 1)[1].split("\n\n", 1)[0]
    rows = [re.fullmatch(r"\| `(\w+)` \| `(\w+)` \| (\w+) \| (.+) \|", line).groups() for line in table.splitlines()]
    assert rows == [(code, condition, severity, when)
                    for code, conditions in SEVERITIES.items() for condition, (severity, when) in conditions.items()]


def test_a_leader_is_never_explained_itself():
    explained = {code for targets in EXPLAINS.values() for code in targets}
    assert not explained & EXPLAINS.keys()
    assert explained | EXPLAINS.keys() <= SEVERITIES.keys()


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_each_condition_holds_on_the_report_s_facts(path):
    result, report = analysed(path)
    calls = {c["call_id"]: c for c in report["calls"]}
    resolved = {name for chain in report["dns_chains"] if chain["outcome"] == "resolved"
                for step in chain["steps"] for name in step["names"]}
    for finding in report["findings"]:
        code, condition = finding["code"], finding["condition"]
        assert finding["severity"] == SEVERITIES[code][condition][0]
        for instance in finding["instances"]:
            if code == "CALL_FAILED":
                assert (condition == "busy_or_declined") == (instance["status"] in (486, 600, 603))
                assert calls[instance["call_id"]]["final_status"] == instance["status"]
            elif code == "RTP_MISSING":
                assert calls[instance["call_id"]]["outcome"] == "answered"
                assert (condition == "signalling_only_capture") == (not result.rtp_streams)
            elif code == "REG_AUTH_FAILED":
                (row,) = [r for r in report["registrations"] if r["call_id"] == instance["call_id"]
                          and (r["aor"], r["client"], r["registrar"]) == tuple(instance["registration"].values())]
                # The sequence's outcome says whether a later attempt succeeded.
                assert (condition == "recovered") == (row["outcome"] in ("registered", "unregistered"))
            elif code.startswith("DNS_") and code != "DNS_SLOW":
                qname = instance["lookup"].split(" ", 1)[1]
                assert (condition == "fallback") == (qname in resolved)
            elif code == "TLS_SIGNALING":
                assert (condition == "tls_only") == (not report["sip_messages"])


def test_each_code_and_condition_has_one_severity_across_every_capture():
    seen = defaultdict(set)
    for path in CAPTURES:
        for finding in analysed(path)[1]["findings"]:
            seen[finding["code"], finding["condition"]].add((finding["severity"], path.name))
    severities = {key: {severity for severity, _ in found} for key, found in seen.items()}
    assert all(len(found) == 1 for found in severities.values()), severities
    # The captures cover both sides of the conditions users met as "error here, warning there".
    assert severities["RTP_MISSING", "signalling_only_capture"] == {"warning"}
    assert severities["CALL_FAILED", "busy_or_declined"] == {"warning"}
    assert severities["CALL_FAILED", "refused"] == {"error"}
    assert severities["DNS_FAILURE", "sip_unresolved"] == {"error"}


# ---------------------------------------------------------------- one finding per cause


@pytest.mark.parametrize("name, calls", [("heplify__erspan_sip_ipv4_udp.pcapng", 3), ("ndpi__gre_sip.pcapng", 2),
                                         ("heplify__sip_tcp_websocket.pcap", 2)])
def test_answered_calls_without_rtp_are_one_finding_naming_each_call(name, calls):
    _, report = analysed(next(p for p in CAPTURES if p.name == name))
    silent = [c for c in report["calls"] if c["outcome"] == "answered" and not c["media"]]
    assert len(silent) == calls
    (finding,) = by_code(report["findings"], "RTP_MISSING")
    assert finding["count"] == len(finding["instances"]) == calls
    assert sorted(i["call_id"] for i in finding["instances"]) == sorted(c["call_id"] for c in silent)
    assert finding["summary"] == f"Answered call, but the capture holds no RTP at all ({calls} calls)"
    assert "call_id" not in finding  # no one call is the finding's
    for instance in finding["instances"]:
        call = next(c for c in silent if c["call_id"] == instance["call_id"])
        assert instance["summary"] == (f"Call from {call['from_uri']} to {call['to_uri']} (Call-ID {call['call_id']}): "
                                       "Answered call, but the capture holds no RTP at all")
        assert instance["frames"] and set(instance["frames"]) <= set(call["frames"])


def test_calls_refused_alike_are_one_cause_and_other_statuses_their_own():
    _, report = analysed(SHARED_CAPTURES / "sngrep__aaa.pcap")
    failed = by_code(report["findings"], "CALL_FAILED")
    assert sorted((f["status"], f["count"]) for f in failed) == [(403, 2), (408, 1), (480, 1)]
    (refused,) = [f for f in failed if f["status"] == 403]
    assert sorted(i["call_id"] for i in refused["instances"]) == sorted(
        c["call_id"] for c in report["calls"] if c["final_status"] == 403)
    assert refused["summary"] == "Calls failed with 403 Wrong password or domain (2 calls)"
    # Two registrations challenged then accepted by one registrar: one healthy pattern, both named.
    (healthy,) = by_code(report["findings"], "REG_CHALLENGE_OK")
    assert healthy["count"] == 2
    rows = {r["call_id"]: {"aor": r["aor"], "client": r["client"], "registrar": r["registrar"]}
            for r in report["registrations"]}
    assert all(i["registration"] == rows[i["call_id"]] for i in healthy["instances"])
    # The first sequence's row is named by its first AOR (voi18063); the AOR it registered is voi18062.
    assert [i["summary"] for i in healthy["instances"]] == [
        f"Registration of sip:{user}@sip.cybercity.dk from 192.168.1.2:5060 to 212.242.33.35:5060: "
        "challenged (401) then accepted" for user in ("voi18062", "35104723")]


# ---------------------------------------------------------------- a cause leads what it explains


@pytest.mark.parametrize("name, code, answer", [
    ("dns_nxdomain_no_register.pcap", "DNS_FAILURE", "answered NXDOMAIN"),
    ("dns_servfail_no_register.pcap", "DNS_FAILURE", "answered SERVFAIL"),
    ("dns_timeout_no_register.pcap", "DNS_NO_RESPONSE", "never answered"),
])
def test_a_failed_registrar_domain_explains_the_missing_register(name, code, answer):
    cause, explained = findings_of(name)
    domain = "exmaple.test" if "nxdomain" in name else "example.test"
    assert (cause["id"], cause["code"], cause["count"], cause["explains"]) == ("F1", code, 3, ["F2"])
    assert cause["summary"] == f"SIP domain {domain} does not resolve: lookups {answer} (3 lookups)"
    assert [i["lookup"] for i in cause["instances"]] == [f"NAPTR {domain}", f"SRV _sip._udp.{domain}", f"A {domain}"]
    assert all(i["summary"].startswith(f"DNS {i['lookup']} {answer}") for i in cause["instances"])
    assert (explained["code"], explained["explained_by"]) == ("NO_REGISTER_DNS_SUSPECT", "F1")
    assert set(explained["frames"]) == set(cause["frames"])


@pytest.mark.parametrize("name, explained_code, target", [
    ("reg_icmp_unreachable.pcap", "REG_NO_RESPONSE", "10.77.0.2:5070"),
    ("leak_icmp_quote_tcp.pcap", "CALL_NO_RESPONSE", "[2001:db8:2::2]:5060"),
])
def test_icmp_unreachable_explains_the_request_without_response_to_that_address(name, explained_code, target):
    findings = findings_of(name)
    (icmp,) = by_code(findings, "ICMP_UNREACHABLE")
    (silent,) = by_code(findings, explained_code)
    assert icmp["details"]["target"] == target and target in silent["summary"]
    assert (icmp["explains"], silent["explained_by"]) == ([silent["id"]], icmp["id"])
    assert findings.index(silent) == findings.index(icmp) + 1
    # A TCP connect to another address that failed explains nothing here.
    assert all("explains" not in f and "explained_by" not in f for f in by_code(findings, "TCP_CONNECT_FAILED"))


@pytest.mark.parametrize("name, leader, explained", [
    ("call_488_codec_mismatch.pcap", "CALL_CODEC_MISMATCH", "CALL_FAILED"),
    ("call_one_way_rtp_private_sdp.pcap", "SDP_PRIVATE_ADDRESS", "RTP_ONE_WAY"),
    ("redrabbit__h263-over-rtp.pcap", "SDP_PRIVATE_ADDRESS", "RTP_ONE_WAY"),
])
def test_a_call_s_cause_leads_its_symptom(name, leader, explained):
    first, second = findings_of(name)
    assert (first["code"], first["explains"]) == (leader, [second["id"]])
    assert (second["code"], second["explained_by"], second["call_id"]) == (explained, first["id"], first["call_id"])
    # The symptom is the error; its cause still comes first.
    assert second["severity"] == "error"


def test_a_signalling_only_capture_s_missing_rtp_is_not_blamed_on_private_sdp():
    findings = findings_of("heplify__erspan_sip_ipv4_udp.pcapng")
    assert not [f for f in findings if "explains" in f or "explained_by" in f]


def instance(code, condition, call_id, links=(), frame=1):
    return Finding(code, condition, "the same", "why", ["fix"], [frame], call_id=call_id,
                   subject={"kind": "call", "name": f"Call {call_id}"}, links=set(links))


def test_a_finding_is_explained_only_when_each_of_its_instances_is():
    private = instance("SDP_PRIVATE_ADDRESS", "private_behind_nat", "a", [("media", "a")], frame=1)
    one_way = [instance("RTP_ONE_WAY", "one_direction", call, [("media", call)], frame=5) for call in ("a", "b")]
    findings = diagnose([private] + one_way)
    # Call b's one-way audio has no private address to blame: the grouped finding stays a cause of its own,
    # and as the error it leads the report.
    assert [(f["code"], f["count"], f.get("explains"), f.get("explained_by")) for f in findings] == [
        ("RTP_ONE_WAY", 2, None, None), ("SDP_PRIVATE_ADDRESS", 1, None, None)]
    assert [i["summary"] for i in findings[0]["instances"]] == ["Call a: the same", "Call b: the same"]
    findings = diagnose([private, one_way[0]])
    assert [(f["id"], f["code"], f.get("explains"), f.get("explained_by")) for f in findings] == [
        ("F1", "SDP_PRIVATE_ADDRESS", ["F2"], None), ("F2", "RTP_ONE_WAY", None, "F1")]


def registration_findings(result) -> list[dict]:
    """The REG_* findings of the report (the hand-built messages lack headers that SIP_MALFORMED_MESSAGE wants)."""
    return [f for f in build_report(result)["findings"] if f["code"].startswith("REG_")]


def test_refused_credentials_explain_the_lockout_403():
    findings = registration_findings(registration_capture(lockout_flow()))
    assert [(f["code"], f["status"], f.get("explains"), f.get("explained_by")) for f in findings] == [
        ("REG_AUTH_FAILED", 401, ["F2"], None), ("REG_REJECTED", 403, None, "F1")]


def test_a_registrar_s_limiter_explains_the_registrations_it_refused():
    flows = []
    for index in range(5):
        flow = Flow(call_id=f"c{index}", phone=(f"192.0.2.{10 + index}", 5060), start=index * 0.05)
        flow.register()
        flow.respond(200 if index < 3 else 503, contact_expires=3600)
        flows.append(flow)
    limit, refused = registration_findings(registration_capture(*flows))
    assert (limit["code"], limit["explains"]) == ("REG_RATE_LIMIT_SUSPECT", [refused["id"]])
    assert (refused["code"], refused["status"], refused["count"], refused["explained_by"]) == (
        "REG_REJECTED", 503, 2, limit["id"])
    assert [i["registration"]["client"] for i in refused["instances"]] == ["192.0.2.13:5060", "192.0.2.14:5060"]
