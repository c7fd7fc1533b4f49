"""Path findings: ICMP unreachable, failed TCP connects, TLS-only signalling."""

from pathlib import Path

from sipdiag.analysis import network_path
from sipdiag.model import (
    CaptureInfo,
    CaptureResult,
    IcmpError,
    SipMessage,
    TcpConnection,
    TlsConnection,
)

PHONE, SERVER = "192.0.2.10", "198.51.100.1"


def register(frame, dst_port=5060):
    return SipMessage(raw=b"", method="REGISTER", frame=frame, time=float(frame), cseq_method="REGISTER",
                      src_ip=PHONE, src_port=5060, dst_ip=SERVER, dst_port=dst_port)


def icmp(frame, port=5060, quoted_sip=True, description="port unreachable"):
    return IcmpError(frame, float(frame), SERVER, 3, 3, description, "udp", PHONE, 5060, SERVER, port, quoted_sip)


def result(**fields):
    return CaptureResult(capture=CaptureInfo(file="t.pcap"), **fields)


def test_icmp_port_unreachable_cites_the_sip_request():
    capture = result(sip_messages=[register(1), register(3)], icmp_errors=[icmp(2), icmp(4)])
    [finding] = network_path.analyze(capture)
    assert (finding.code, finding.severity, sorted(finding.frames)) == ("ICMP_UNREACHABLE", "error", [1, 2, 3, 4])
    assert finding.details == {"target": "198.51.100.1:5060", "protocol": "udp", "icmp": "port unreachable", "reporter": SERVER}
    assert "nothing listens on that port" in finding.explanation
    [clue] = network_path.path_clues(capture, SERVER, 5060)
    assert (clue.kind, clue.frames) == ("icmp", [2, 4])
    assert network_path.path_clues(capture, SERVER, 5080) == []


def test_icmp_about_unrelated_traffic_is_ignored():
    capture = result(sip_messages=[register(1)], icmp_errors=[icmp(2, port=123, quoted_sip=False)])
    assert network_path.analyze(capture) == []


def test_unanswered_and_refused_tcp_connects_to_sip_ports():
    silent = TcpConnection(PHONE, 40000, SERVER, 5060, syn_frame=5, syn_count=4)
    refused = TcpConnection(PHONE, 40001, SERVER, 5061, syn_frame=9, reset_frame=10, reset_by="server")
    web = TcpConnection(PHONE, 40002, SERVER, 80, syn_frame=11)
    fine = TcpConnection(PHONE, 40003, SERVER, 5060, syn_frame=12, established=True)
    findings = network_path.analyze(result(tcp_connections=[silent, refused, web, fine]))
    assert [(f.code, f.frames, f.details["syn_count"], f.details["reset_by"]) for f in findings] == [
        ("TCP_CONNECT_FAILED", [5], 4, None),
        ("TCP_CONNECT_FAILED", [9, 10], 1, "server"),
    ]
    assert "never answered (4 SYN)" in findings[0].summary and "refused" in findings[1].summary


def test_tls_only_signalling_is_a_warning():
    tls = TlsConnection(PHONE, 40000, SERVER, 5061, first_frame=3, sni="sip.example.com")
    [finding] = network_path.analyze(result(tls_connections=[tls]))
    assert (finding.code, finding.severity, finding.frames) == ("TLS_SIGNALING", "warning", [3])
    assert finding.details["server_names"] == ["sip.example.com"]


def test_tls_next_to_plain_sip_is_info():
    tls = TlsConnection(PHONE, 40000, SERVER, 5061, first_frame=3)
    [finding] = network_path.analyze(result(tls_connections=[tls], sip_messages=[register(1)]))
    assert finding.severity == "info"


def _result(path: Path):
    from sipdiag.engine import result_for_path

    return result_for_path(str(path))


def test_real_tls_capture(shared_captures):
    capture = _result(shared_captures / "sngrep__tlssaved.pcap")
    findings = [f for f in network_path.analyze(capture) if f.code == "TLS_SIGNALING"]
    assert len(findings) == 1 and findings[0].severity == "warning"
    # tshark: every TLS stream in the file has 10.10.9.40:5061 at one end
    assert findings[0].details["servers"] == ["10.10.9.40:5061"]
    assert findings[0].details["connections"] == len(capture.tls_connections) == 2


def test_fixture_icmp_unreachable(fixtures_dir):
    capture = _result(fixtures_dir / "registration" / "reg_icmp_unreachable.pcap")
    [finding] = [f for f in network_path.analyze(capture) if f.code == "ICMP_UNREACHABLE"]
    assert finding.details["icmp"] == "port unreachable"
    assert any(m.method == "REGISTER" and m.frame in finding.frames for m in capture.sip_messages)
