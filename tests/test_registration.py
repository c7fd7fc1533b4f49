"""Registration sequences, outcomes and REG_* findings.

Hand-built message flows pin the rules (whole-sequence judgement, expiry,
auth hints); real captures prove them on what phones and registrars send.
"""

from pathlib import Path

import pytest
from sipdiag.analysis import registration, registration_findings
from sipdiag.model import CaptureInfo, CaptureResult, NameAddr, SipMessage, Via

PHONE, REGISTRAR = ("192.0.2.10", 5060), ("198.51.100.1", 5060)
AOR = "sip:alice@example.com"
CHALLENGE = 'Digest realm="example.com", nonce="n1", algorithm=MD5'


class Flow:
    """Builds one phone's REGISTER flow: frames and times advance as messages are added."""

    def __init__(self, call_id="reg-1", phone=PHONE, registrar=REGISTRAR, aor=AOR, contact_host=None, start=0.0):
        self.call_id, self.phone, self.registrar, self.aor = call_id, phone, registrar, aor
        self.contact = f"sip:alice@{contact_host or phone[0]}:{phone[1]}"
        self.time = start
        self.messages: list[SipMessage] = []
        self.cseq = 0

    def _message(self, dt, **fields):
        self.time += dt
        message = SipMessage(raw=b"", time=self.time, call_id=self.call_id, cseq_method="REGISTER",
                             to_addr=NameAddr(self.aor), from_addr=NameAddr(self.aor), **fields)
        self.messages.append(message)
        return message

    def register(self, dt=0.1, expires=3600, auth=None, retransmit=False, header="authorization"):
        if not retransmit:
            self.cseq += 1
        headers = [(header, auth)] if auth else []
        return self._message(
            dt, method="REGISTER", request_uri="sip:example.com", headers=headers, cseq=self.cseq,
            src_ip=self.phone[0], src_port=self.phone[1], dst_ip=self.registrar[0], dst_port=self.registrar[1],
            vias=[Via("UDP", self.phone[0], self.phone[1], branch=f"z9hG4bK{self.call_id}-{self.cseq}")],
            contacts=[NameAddr(self.contact, params={"expires": str(expires)})],
        )

    def respond(self, status, dt=0.05, headers=(), contact_expires=None, reason="Reason"):
        request = next(m for m in reversed(self.messages) if m.is_request)
        contacts = [NameAddr(self.contact, params={"expires": str(contact_expires)})] if contact_expires is not None else []
        return self._message(
            dt, status=status, reason=reason, headers=list(headers), cseq=request.cseq,
            src_ip=self.registrar[0], src_port=self.registrar[1], dst_ip=self.phone[0], dst_port=self.phone[1],
            vias=list(request.vias), contacts=contacts,
        )

    def challenge_and_register(self, expires=3600, granted=3600, dt=0.1):
        self.register(dt, expires=expires)
        self.respond(401, headers=[("www-authenticate", CHALLENGE)])
        self.register(expires=expires, auth=credentials())
        self.respond(200, contact_expires=granted)


def credentials(realm="example.com", username="alice", nonce="n1", algorithm=None):
    text = f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="sip:example.com", response="x"'
    return text + (f", algorithm={algorithm}" if algorithm else "")


def capture(*flows, last_time=None):
    messages = sorted((m for f in flows for m in f.messages), key=lambda m: m.time)
    for frame, message in enumerate(messages, 1):
        message.frame = frame
    info = CaptureInfo(file="t.pcap", first_time=messages[0].time, last_time=last_time or messages[-1].time)
    return CaptureResult(capture=info, sip_messages=messages)


def analyze(*flows, last_time=None):
    rows, findings = registration_findings.analyze(capture(*flows, last_time=last_time))
    return rows, findings, {f.code: f for f in findings}


def test_challenge_then_200_is_healthy():
    flow = Flow()
    flow.challenge_and_register()
    [row], findings, by_code = analyze(flow)
    assert {k: row[k] for k in ("outcome", "final_status", "challenges", "requests", "retransmissions",
                                "expires_requested", "expires_granted", "frames", "client", "registrar", "aor", "contact")} == {
        "outcome": "registered", "final_status": 200, "challenges": 1, "requests": 2, "retransmissions": 0,
        "expires_requested": 3600, "expires_granted": 3600, "frames": [1, 2, 3, 4],
        "client": "192.0.2.10:5060", "registrar": "198.51.100.1:5060", "aor": AOR, "contact": flow.contact,
    }
    assert [(f.code, f.severity, f.frames) for f in findings] == [("REG_CHALLENGE_OK", "info", [1, 2, 3, 4])]


def test_repeated_challenges_after_credentials_are_an_auth_failure_with_header_hints():
    flow = Flow()
    flow.register()
    flow.respond(401, headers=[("www-authenticate", 'Digest realm="example.com", nonce="n1", algorithm=SHA-256')])
    flow.register(auth=credentials(realm="other.example", username="sip:alice@example.com "))
    flow.respond(401, headers=[("www-authenticate", 'Digest realm="example.com", nonce="n2", algorithm=SHA-256, stale=true')])
    flow.register(auth=credentials(realm="other.example", nonce="n1"))
    flow.respond(401, headers=[("www-authenticate", 'Digest realm="example.com", nonce="n3", algorithm=SHA-256, stale=true')])
    [row], _, by_code = analyze(flow)
    assert (row["outcome"], row["final_status"], row["challenges"], row["requests"]) == ("auth_failed", 401, 3, 3)
    failure = by_code["REG_AUTH_FAILED"]
    assert failure.severity == "error" and failure.status == 401 and failure.frames == [1, 2, 3, 4, 5, 6]
    hints = " | ".join(failure.details["hints"])
    for fact in ("realm mismatch", "offered SHA-256, used MD5", "older nonce", "whitespace", "full SIP URI", "stale=true repeated 2 times"):
        assert fact in hints
    assert "REG_CHALLENGE_OK" not in by_code


def test_proxy_challenge_answered_with_the_wrong_header():
    flow = Flow()
    flow.register()
    flow.respond(407, headers=[("proxy-authenticate", CHALLENGE)])
    flow.register(auth=credentials(), header="authorization")
    flow.respond(407, headers=[("proxy-authenticate", CHALLENGE)])
    [row], _, by_code = analyze(flow)
    assert row["outcome"] == "auth_failed" and by_code["REG_AUTH_FAILED"].status == 407
    hints = " | ".join(by_code["REG_AUTH_FAILED"].details["hints"])
    assert "instead of Proxy-Authorization" in hints and "407 Proxy Authentication Required" in hints


def test_challenge_never_answered():
    flow = Flow()
    flow.register()
    flow.respond(401, headers=[("www-authenticate", CHALLENGE)])
    [row], findings, _ = analyze(flow, last_time=100.0)
    assert (row["outcome"], row["final_status"], row["challenges"]) == ("challenged", 401, 1)
    assert findings == []


def test_whole_sequence_counts_not_the_last_response():
    """An auth failure then a fresh attempt that succeeds: registered, and the failure still reported."""
    flow = Flow()
    flow.register()
    flow.respond(401, headers=[("www-authenticate", CHALLENGE)])
    flow.register(auth=credentials())
    flow.respond(401, headers=[("www-authenticate", CHALLENGE)])
    flow.challenge_and_register(dt=5)
    [row], _, by_code = analyze(flow)
    assert (row["outcome"], row["challenges"], [a["outcome"] for a in row["attempts"]]) == (
        "registered", 3, ["auth_failed", "registered"])
    assert by_code["REG_AUTH_FAILED"].severity == "warning"
    assert by_code["REG_CHALLENGE_OK"].frames == [5, 6, 7, 8]


def lockout_flow() -> Flow:
    """Credentials refused twice (REGISTER, 401, REGISTER with credentials, 401), then a 403."""
    flow = Flow()
    for _ in range(2):
        flow.register(dt=2)
        flow.respond(401, headers=[("www-authenticate", CHALLENGE)])
        flow.register(auth=credentials())
        flow.respond(401, headers=[("www-authenticate", CHALLENGE)])
    flow.register(dt=2)
    flow.respond(403, reason="Forbidden")
    return flow


def test_lockout_hint_on_403_after_failed_attempts():
    [row], _, by_code = analyze(lockout_flow())
    assert (row["outcome"], row["final_status"]) == ("rejected", 403)
    rejected = by_code["REG_REJECTED"]
    assert rejected.status == 403 and rejected.details["possible_lockout"] is True and rejected.frames == [9, 10]


@pytest.mark.parametrize(
    ("status", "headers", "detail"),
    [(423, [("min-expires", "600")], ("min_expires", "600")), (503, [("retry-after", "120")], ("retry_after", "120"))],
)
def test_rejection_carries_the_servers_hint(status, headers, detail):
    flow = Flow()
    flow.register(expires=60)
    flow.respond(status, headers=headers)
    [row], _, by_code = analyze(flow)
    assert (row["outcome"], row["final_status"], row["challenges"]) == ("rejected", status, 0)
    assert by_code["REG_REJECTED"].details[detail[0]] == detail[1]
    assert detail[1] in by_code["REG_REJECTED"].explanation


def test_redirect_shows_its_contact():
    flow = Flow()
    flow.register()
    response = flow.respond(302)
    response.contacts = [NameAddr("sip:registrar2.example.com")]
    _, _, by_code = analyze(flow)
    assert by_code["REG_REJECTED"].details["contacts"] == ["sip:registrar2.example.com"]


def test_no_response_counts_retransmissions_with_their_schedule():
    flow = Flow()
    flow.register(dt=0)
    for gap in (0.5, 1.0, 2.0, 4.0, 4.0):
        flow.register(dt=gap, retransmit=True)
    [row], _, by_code = analyze(flow, last_time=60.0)
    assert (row["outcome"], row["final_status"], row["requests"], row["retransmissions"]) == ("no_response", None, 6, 5)
    silence = by_code["REG_NO_RESPONSE"]
    assert silence.details["retransmission_schedule"] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]
    assert "no SIP packet from 198.51.100.1" in silence.details["path"][0]


def test_single_send_unanswered_past_timer_f_is_no_response():
    """Over TCP there are no retransmissions: silence for 32 s (timer F) is the verdict."""
    flow = Flow()
    flow.register()
    [row], _, by_code = analyze(flow, last_time=40.0)
    assert (row["outcome"], row["retransmissions"]) == ("no_response", 0)
    assert by_code["REG_NO_RESPONSE"].details["retransmission_schedule"] == [0.0]


def test_request_at_the_end_of_the_capture_is_pending():
    flow = Flow()
    flow.register()
    [row], findings, _ = analyze(flow, last_time=5.0)
    assert row["outcome"] == "pending" and findings == []


def test_reduced_expiry_refreshed_in_time_does_not_lapse():
    flow = Flow()
    flow.challenge_and_register(expires=3600, granted=60)
    flow.challenge_and_register(expires=3600, granted=60, dt=30)
    [row], _, by_code = analyze(flow, last_time=80.0)
    assert (row["expires_requested"], row["expires_granted"]) == (3600, 60)
    assert row["refresh_intervals"] == [30.2]
    assert by_code["REG_EXPIRES_REDUCED"].details == {"requested": 3600, "granted": 60}
    assert "REG_LAPSED" not in by_code


def test_binding_lapses_without_refresh():
    flow = Flow()
    flow.challenge_and_register(expires=60, granted=60)
    _, _, by_code = analyze(flow, last_time=200.0)
    lapsed = by_code["REG_LAPSED"]
    assert lapsed.severity == "error" and lapsed.frames == [3, 4] and lapsed.details["granted"] == 60


def test_deregistration_is_unregistered():
    flow = Flow()
    flow.register(expires=0)
    flow.respond(200)
    [row], _, by_code = analyze(flow, last_time=500.0)
    assert row["outcome"] == "unregistered" and row["expires_requested"] == 0
    assert "REG_DEREGISTERED" in by_code and "REG_LAPSED" not in by_code


def test_private_contact_from_a_public_source_is_a_nat_hint():
    flow = Flow(phone=("203.0.113.9", 40000), contact_host="192.168.1.20")
    flow.challenge_and_register()
    _, _, by_code = analyze(flow)
    nat = by_code["REG_NAT_SUSPECT"]
    assert nat.details == {"advertised": ["Contact 192.168.1.20"], "source": "203.0.113.9"} and nat.frames == [1]


def test_first_clients_succeed_then_the_registrar_limits():
    flows = []
    for index in range(5):
        flow = Flow(call_id=f"c{index}", phone=(f"192.0.2.{10 + index}", 5060), start=index * 0.05)
        if index < 3:
            flow.register()
            flow.respond(200, contact_expires=3600)
        else:
            flow.register()
            flow.respond(503, headers=[("retry-after", "30")])
        flows.append(flow)
    rows, _, by_code = analyze(*flows)
    limit = by_code["REG_RATE_LIMIT_SUSPECT"]
    assert limit.details == {"successes": 3, "failures": 2}
    [summary] = registration.registrar_summary(rows)
    assert summary == {
        "registrar": "198.51.100.1:5060", "clients": 5, "sequences": 5, "attempts": 5, "registered": 3, "failed": 2,
        "failed_by_status": {"503": 2}, "outcomes": {"registered": 3, "rejected": 2}, "pattern": "some_fail",
    }


def test_burst_of_registers():
    flows = [Flow(call_id=f"b{i}", phone=(f"192.0.2.{i + 1}", 5060), start=i * 0.01) for i in range(12)]
    for flow in flows:
        flow.register(dt=0)
        flow.respond(200, contact_expires=3600)
    _, _, by_code = analyze(*flows)
    assert by_code["REG_BURST"].details == {"per_second": 12}


def test_answer_without_its_request_still_makes_a_row():
    flow = Flow()
    flow.register()
    flow.respond(504)
    flow.messages.pop(0)
    [row], _, by_code = analyze(flow)
    assert (row["outcome"], row["final_status"], row["requests"], row["client"]) == ("rejected", 504, 0, "192.0.2.10:5060")
    assert by_code["REG_REJECTED"].status == 504


# ---------------------------------------------------------------- real captures


def _result(path: Path):
    from sipdiag.engine import result_for_path

    return result_for_path(str(path))


def test_real_capture_auth_loops_403_and_successes(shared_captures):
    rows, findings = registration_findings.analyze(_result(shared_captures / "sngrep__aaa.pcap"))
    assert [(r["call_id"], r["requests"], r["challenges"], r["final_status"], r["outcome"]) for r in rows] == [
        # tshark: 12 REGISTER transactions, ending in two challenged credential attempts for 35104723
        ("578222729-4665d775@578222732-4665d772", 12, 10, 401, "auth_failed"),
        # tshark: 6 transactions, two of them 200 OK with expires=1200
        ("29858147-465b0752@29858051-465b07b2", 6, 4, 200, "registered"),
    ]
    first, second = rows
    assert [a["outcome"] for a in first["attempts"]] == [
        "rejected", "auth_failed", "auth_failed", "registered", "auth_failed", "auth_failed"]
    assert second["expires_granted"] == 1200 and second["refresh_intervals"] == [pytest.approx(204.532, abs=0.001)]
    by_code = {}
    for finding in findings:
        by_code.setdefault(finding.code, []).append(finding)
    assert [f.frames for f in by_code["REG_REJECTED"]] == [[19, 20, 30, 31, 32]]
    assert by_code["REG_REJECTED"][0].status == 403
    assert {f.call_id: f.severity for f in by_code["REG_AUTH_FAILED"]} == {first["call_id"]: "error", second["call_id"]: "warning"}
    assert [f.frames for f in by_code["REG_CHALLENGE_OK"]] == [[169, 170, 180, 181, 182], [515, 516, 524, 526, 527]]


def test_real_capture_answers_without_requests(shared_captures):
    rows, findings = registration_findings.analyze(_result(shared_captures / "pcapplusplus__sip_resp.pcap"))
    assert sorted((r["final_status"], r["outcome"]) for r in rows) == [
        (401, "challenged"), (401, "challenged"), (503, "rejected"), (504, "rejected")]
    unavailable = [f for f in findings if f.code == "REG_REJECTED" and f.status == 503]
    assert [(f.frames, f.details.get("retry_after")) for f in unavailable] == [([7], "0")]


REGISTRATION_FIXTURES = {
    # name: (outcome, final_status, codes that must be present, codes that must be absent)
    "reg_challenge_ok": ("registered", 200, {"REG_CHALLENGE_OK"}, {"REG_AUTH_FAILED", "REG_REJECTED"}),
    "reg_wrong_password": ("auth_failed", 401, {"REG_AUTH_FAILED"}, {"REG_CHALLENGE_OK"}),
    "reg_403": ("rejected", 403, {"REG_REJECTED"}, {"REG_CHALLENGE_OK"}),
    "reg_404": ("rejected", 404, {"REG_REJECTED"}, {"REG_CHALLENGE_OK"}),
    "reg_no_response": ("no_response", None, {"REG_NO_RESPONSE"}, {"ICMP_UNREACHABLE"}),
    "reg_icmp_unreachable": ("no_response", None, {"REG_NO_RESPONSE", "ICMP_UNREACHABLE"}, set()),
    "reg_expires_reduced_refresh": ("registered", 200, {"REG_EXPIRES_REDUCED"}, {"REG_LAPSED"}),
    "reg_lapsed": ("registered", 200, {"REG_LAPSED"}, set()),
    "reg_ipv6": ("registered", 200, set(), {"REG_REJECTED", "REG_NO_RESPONSE"}),
    "reg_tcp": ("registered", 200, set(), {"REG_REJECTED", "REG_NO_RESPONSE"}),
}


@pytest.mark.parametrize("name", sorted(REGISTRATION_FIXTURES))
def test_generated_registration_scenario(fixtures_dir, name):
    from sipdiag.analysis import network_path

    outcome, status, present, absent = REGISTRATION_FIXTURES[name]
    result = _result(fixtures_dir / "registration" / f"{name}.pcap")
    rows, findings = registration_findings.analyze(result)
    codes = {f.code for f in findings} | {f.code for f in network_path.analyze(result)}
    assert rows, "no registration sequence found"
    if name == "reg_lapsed":
        accepted = max(m.time for m in result.sip_messages if m.status == 200)
        # The fixture must outlive the binding, or no lapse is observable.
        assert result.capture.last_time > accepted + rows[-1]["expires_granted"]
    assert (rows[-1]["outcome"], rows[-1]["final_status"]) == (outcome, status)
    assert present <= codes and not (absent & codes)
    if name == "reg_no_response":
        assert rows[-1]["retransmissions"] >= 3
    if name == "reg_ipv6":
        assert rows[-1]["registrar"].startswith("[")
    if name == "reg_tcp":
        assert rows[-1]["transport"] == "tcp"
    if name == "reg_expires_reduced_refresh":
        assert rows[-1]["expires_granted"] < rows[-1]["expires_requested"]


def _parsed(text: str, frame: int, time: float, outbound: bool) -> SipMessage:
    from sipdiag.protocols import sip

    message = sip.parse_message(text.replace("\n", "\r\n").encode())
    ends = (PHONE, REGISTRAR) if outbound else (REGISTRAR, PHONE)
    message.frame, message.time = frame, time
    (message.src_ip, message.src_port), (message.dst_ip, message.dst_port) = ends
    return message


REGISTER_TEXT = """REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{branch};rport
From: <sip:alice@example.com>;tag=1
To: <sip:alice@example.com>
Call-ID: parsed-1
CSeq: {cseq} REGISTER
Contact: <sip:alice@192.0.2.10:5060>;expires=600
{auth}Content-Length: 0

"""
RESPONSE_TEXT = """SIP/2.0 {status}
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{branch};rport=5060
From: <sip:alice@example.com>;tag=1
To: <sip:alice@example.com>;tag=srv
Call-ID: parsed-1
CSeq: {cseq} REGISTER
{extra}Content-Length: 0

"""


def test_parsed_messages_sha256_offered_md5_used_and_granted_contact():
    offer = 'WWW-Authenticate: Digest realm="example.com", nonce="abc", algorithm=SHA-256, qop="auth"\n'
    answer = 'Authorization: Digest username="alice", realm="example.com", nonce="abc", uri="sip:example.com", response="00"\n'
    messages = [
        _parsed(REGISTER_TEXT.format(branch="a", cseq=1, auth=""), 1, 0.0, True),
        _parsed(RESPONSE_TEXT.format(status="401 Unauthorized", branch="a", cseq=1, extra=offer), 2, 0.01, False),
        _parsed(REGISTER_TEXT.format(branch="b", cseq=2, auth=answer), 3, 0.02, True),
        _parsed(RESPONSE_TEXT.format(status="401 Unauthorized", branch="b", cseq=2, extra=offer), 4, 0.03, False),
        _parsed(REGISTER_TEXT.format(branch="c", cseq=3, auth=""), 5, 1.0, True),
        _parsed(RESPONSE_TEXT.format(status="401 Unauthorized", branch="c", cseq=3, extra=offer), 6, 1.01, False),
        _parsed(REGISTER_TEXT.format(branch="d", cseq=4, auth=answer), 7, 1.02, True),
        _parsed(RESPONSE_TEXT.format(status="200 OK", branch="d", cseq=4,
                                     extra="Contact: <sip:alice@192.0.2.10:5060>;expires=300\n"), 8, 1.03, False),
    ]
    result = CaptureResult(capture=CaptureInfo(file="t.pcap", last_time=2.0), sip_messages=messages)
    [row], findings = registration_findings.analyze(result)
    assert (row["outcome"], row["challenges"], row["expires_requested"], row["expires_granted"]) == ("registered", 3, 600, 300)
    by_code = {f.code: f for f in findings}
    assert by_code["REG_AUTH_FAILED"].details["hints"] == ["algorithm mismatch: offered SHA-256, used MD5"]
    assert by_code["REG_EXPIRES_REDUCED"].details == {"requested": 600, "granted": 300}
    assert by_code["REG_CHALLENGE_OK"].frames == [5, 6, 7, 8]


def test_wrong_password_counts_each_refused_submission(fixtures_dir):
    # REGISTER, 401, REGISTER+credentials, 401, REGISTER+credentials, 401: one
    # attempt, two submissions of credentials, both refused.
    _, findings = registration_findings.analyze(_result(fixtures_dir / "registration" / "reg_wrong_password.pcap"))
    [failed] = [f for f in findings if f.code == "REG_AUTH_FAILED"]
    assert failed.summary.endswith("refused 2 times") and failed.severity == "error"
