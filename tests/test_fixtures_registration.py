"""The registration/DNS fixtures and static/sample.pcap really contain what
their names claim. tshark reads them (an independent dissector), so these
tests check the fixtures, not sipdiag."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"


FIELDS = ["frame.number", "frame.time_relative", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst",
          "tcp.srcport", "sip.Method", "sip.Status-Code", "sip.CSeq.method", "sip.Call-ID",
          "sip.Authorization", "sip.Expires", "sip.contact.parameter",
          "dns.qry.name", "dns.qry.type", "dns.flags.response", "dns.flags.rcode",
          "dns.count.answers", "icmp.type", "icmp.code"]
NAPTR, SRV, A = 35, 33, 1
NXDOMAIN, SERVFAIL = 3, 2


@functools.cache
def frames(relative: str) -> tuple[dict[str, str], ...]:
    """One dict per frame: field name -> tshark's text ("" when absent)."""
    out = subprocess.run(["tshark", "-r", str(FIXTURES / relative), "-T", "fields",
                          "-E", "separator=\t", "-E", "occurrence=f",
                          *[arg for field in FIELDS for arg in ("-e", field)]],
                         capture_output=True, text=True, check=True).stdout
    return tuple(dict(zip(FIELDS, line.split("\t"))) for line in out.splitlines())


def sip(relative: str) -> list[dict[str, str]]:
    # tshark also dissects the SIP quoted inside an ICMP error: not a message.
    return [f for f in frames(relative) if f["sip.CSeq.method"] and not f["icmp.type"]]


def flow(relative: str) -> list[str]:
    """SIP messages as "REGISTER", "REGISTER+auth" or a status code."""
    return [f["sip.Method"] + ("+auth" if f["sip.Authorization"] else "")
            if f["sip.Method"] else f["sip.Status-Code"] for f in sip(relative)]


def dns(relative: str) -> list[tuple[bool, str, int, int | None]]:
    """(is response, qname, qtype, rcode or None for a query) per DNS message."""
    result = []
    for f in frames(relative):
        if f["dns.qry.name"]:
            response = f["dns.flags.response"] in ("1", "True")
            result.append((response, f["dns.qry.name"], int(f["dns.qry.type"]),
                           int(f["dns.flags.rcode"]) if response else None))
    return result


def answered(relative: str) -> list[tuple[str, int, int]]:
    return [(name, qtype, rcode) for response, name, qtype, rcode in dns(relative) if response]


def contact_expires(frame: dict[str, str]) -> int:
    return int(frame["sip.contact.parameter"].removeprefix("expires="))


def test_reg_challenge_ok():
    name = "registration/reg_challenge_ok.pcap"
    assert flow(name) == ["REGISTER", "401", "REGISTER+auth", "200"]
    assert len({f["sip.Call-ID"] for f in sip(name)}) == 1
    assert contact_expires(sip(name)[-1]) == 3600


def test_reg_wrong_password_is_challenged_again_after_credentials():
    assert flow("registration/reg_wrong_password.pcap") == [
        "REGISTER", "401", "REGISTER+auth", "401", "REGISTER+auth", "401"]


@pytest.mark.parametrize("status", ["403", "404"])
def test_reg_rejected(status):
    assert flow(f"registration/reg_{status}.pcap") == ["REGISTER", status]


def test_reg_no_response_retransmits_on_timer_e():
    name = "registration/reg_no_response.pcap"
    assert flow(name) == ["REGISTER"] * 10
    assert len(frames(name)) == 10 and len({f["sip.Call-ID"] for f in sip(name)}) == 1
    times = [float(f["frame.time_relative"]) for f in sip(name)]
    gaps = [round(b - a, 1) for a, b in zip(times, times[1:])]
    assert gaps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]


def test_reg_icmp_unreachable_answers_every_register():
    name = "registration/reg_icmp_unreachable.pcap"
    assert flow(name) == ["REGISTER"] * 4
    icmp = [f for f in frames(name) if f["icmp.type"]]
    assert [(f["icmp.type"], f["icmp.code"]) for f in icmp] == [("3", "3")] * 4  # port unreachable
    assert len(frames(name)) == 8


def test_reg_expires_reduced_then_refreshed():
    name = "registration/reg_expires_reduced_refresh.pcap"
    assert flow(name) == ["REGISTER", "401", "REGISTER+auth", "200"] * 2
    messages = sip(name)
    assert {int(f["sip.Expires"]) for f in messages if f["sip.Method"]} == {3600}
    oks = [f for f in messages if f["sip.Status-Code"] == "200"]
    assert [contact_expires(f) for f in oks] == [20, 20]
    refresh_after = float(oks[1]["frame.time_relative"]) - float(oks[0]["frame.time_relative"])
    assert 9 < refresh_after < 20  # refreshed before the granted 20 s ran out


def test_reg_lapsed_capture_outlives_the_binding():
    name = "registration/reg_lapsed.pcap"
    assert flow(name) == ["REGISTER", "401", "REGISTER+auth", "200"]
    ok = sip(name)[-1]
    assert contact_expires(ok) == 10
    last = float(frames(name)[-1]["frame.time_relative"])
    assert last - float(ok["frame.time_relative"]) > 14
    assert len(frames(name)) == 7  # 4 SIP messages + 3 CRLF keep-alives


def test_reg_ipv6():
    name = "registration/reg_ipv6.pcap"
    assert flow(name) == ["REGISTER", "401", "REGISTER+auth", "200"]
    assert {(f["ipv6.src"], f["ipv6.dst"]) for f in sip(name) if f["sip.Method"]} == {("fd77::1", "fd77::2")}
    assert not any(f["ip.src"] for f in frames(name))


def test_reg_tcp():
    name = "registration/reg_tcp.pcap"
    assert flow(name) == ["REGISTER", "401", "REGISTER+auth", "200"]
    assert all(f["tcp.srcport"] == "5060" for f in sip(name))
    assert int(sip(name)[0]["frame.number"]) == 4  # after the three-way handshake
    assert len(frames(name)) == 12                # ... and a FIN/FIN/ACK close


def test_dns_nxdomain_no_register():
    name = "dns/dns_nxdomain_no_register.pcap"
    assert answered(name) == [
        ("exmaple.test", NAPTR, NXDOMAIN), ("_sip._udp.exmaple.test", SRV, NXDOMAIN),
        ("exmaple.test", A, NXDOMAIN)]
    assert sip(name) == []


def test_dns_servfail_no_register():
    name = "dns/dns_servfail_no_register.pcap"
    assert [rcode for _name, _qtype, rcode in answered(name)] == [SERVFAIL] * 3
    assert sip(name) == []


def test_dns_timeout_no_register_retries_unanswered_queries():
    name = "dns/dns_timeout_no_register.pcap"
    assert dns(name) == [(False, "example.test", NAPTR, None)] * 2 + [
        (False, "_sip._udp.example.test", SRV, None)] * 2 + [(False, "example.test", A, None)] * 2
    assert sip(name) == []


def test_dns_srv_ok_then_register():
    name = "dns/dns_srv_ok_then_register.pcap"
    assert answered(name) == [("example.test", NAPTR, 0), ("_sip._udp.example.test", SRV, 0),
                        ("pbx.example.test", A, 0)]
    assert flow(name) == ["REGISTER", "401", "REGISTER+auth", "200"]
    last_dns = max(int(f["frame.number"]) for f in frames(name) if f["dns.qry.name"])
    assert int(sip(name)[0]["frame.number"]) > last_dns


def test_sample_has_a_registration_and_an_answered_call_with_rtp():
    name = "../../static/sample.pcap"
    assert (FIXTURES / name).stat().st_size < 200_000
    assert [(f["sip.Method"] + ("+auth" if f["sip.Authorization"] else "")) or f["sip.Status-Code"]
            for f in sip(name)] == ["REGISTER", "401", "REGISTER+auth", "200",
                                    "INVITE", "100", "180", "200", "ACK", "BYE", "200"]
    streams = subprocess.run(["tshark", "-r", str(FIXTURES / name), "-q", "-z", "rtp,streams"],
                             capture_output=True, text=True, check=True).stdout
    assert streams.count("g711A") == 2  # one PCMA stream each way
