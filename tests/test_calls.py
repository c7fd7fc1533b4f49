"""Call outcomes, SDP negotiation, media and CALL_*/SDP_*/RTP_* findings.

Scenario captures (tests/fixtures/calls, generated with SIPp/kamailio by
generate.py) and public captures go through the real engine; rarer situations
(CANCEL races, hold, NAT) are built from SIP text so each rule is pinned down.
"""

import pytest
from sipdiag.analysis import call_findings
from sipdiag.model import CaptureInfo, CaptureResult, RtpStream
from sipdiag.protocols import sip

CALLER, CALLEE = ("10.0.0.1", 5060), ("10.0.0.2", 5060)


def analyze_file(path):
    from sipdiag.engine import result_for_path

    return call_findings.analyze(result_for_path(path))


def scenario(fixtures_dir, name):
    rows, findings = analyze_file(fixtures_dir / "calls" / f"{name}.pcap")
    (row,) = rows
    return row, findings


def codes(findings):
    return sorted(f.code for f in findings)


# ---------------------------------------------------------------- scenario captures


def test_answered_call_with_two_way_rtp(fixtures_dir):
    row, findings = scenario(fixtures_dir, "call_answered_rtp")
    assert (row["outcome"], row["final_status"]) == ("answered", 200)
    assert row["codecs_offered"] == ["PCMA", "PCMU", "telephone-event"]
    assert row["codecs_answered"] == ["PCMA", "telephone-event"]
    assert sorted(m["direction"] for m in row["media"]) == ["callee_to_caller", "caller_to_callee"]
    assert all(m["packets"] == 150 and m["lost"] == 0 and m["payload_types"] == [8] for m in row["media"])
    assert row["ended_by"] == "caller" and 3.0 < row["duration_s"] < 4.5
    assert 4.0 < row["mos_estimate"] <= 4.5
    assert codes(findings) == []


@pytest.mark.parametrize("name, status, outcome, severity", [
    ("call_486", 486, "busy", "warning"),
    ("call_480", 480, "rejected", "error"),
    ("call_404", 404, "rejected", "error"),
])
def test_rejected_calls(fixtures_dir, name, status, outcome, severity):
    row, findings = scenario(fixtures_dir, name)
    assert (row["outcome"], row["final_status"]) == (outcome, status)
    assert row["codecs_offered"] == ["PCMU"] and row["codecs_answered"] == [] and row["media"] == []
    (failed,) = findings
    assert (failed.code, failed.status, failed.severity) == ("CALL_FAILED", status, severity)
    assert row["frames"] == [1, 2, 3, 4]  # INVITE, 100, final answer, ACK
    assert failed.frames == [1, 2, 3]
    assert str(status) in failed.summary


def test_488_is_a_codec_mismatch(fixtures_dir):
    row, findings = scenario(fixtures_dir, "call_488_codec_mismatch")
    assert (row["outcome"], row["final_status"]) == ("rejected", 488)
    assert codes(findings) == ["CALL_CODEC_MISMATCH", "CALL_FAILED"]
    mismatch = next(f for f in findings if f.code == "CALL_CODEC_MISMATCH")
    assert mismatch.details["offered"] == row["codecs_offered"] == ["PCMU"]


def test_cancelled_call(fixtures_dir):
    row, findings = scenario(fixtures_dir, "call_cancel_487")
    assert (row["outcome"], row["final_status"]) == ("cancelled", 487)
    assert row["post_dial_delay_ms"] is not None and row["answer_time"] is None
    assert codes(findings) == []


def test_unacknowledged_200(fixtures_dir):
    row, findings = scenario(fixtures_dir, "call_no_ack")
    assert row["outcome"] == "answered"
    no_ack = next(f for f in findings if f.code == "CALL_NO_ACK")
    assert no_ack.details == {"ok_copies": 1 + len(row["retransmission_frames"]), "acked": False}
    assert no_ack.details["ok_copies"] > 2


@pytest.mark.parametrize("name", ["call_408_proxy", "call_one_way_rtp_private_sdp", "call_tcp_compact",
                                  "call_fragmented_invite", "call_ipv6"])
def test_further_scenarios_are_calls(fixtures_dir, name):
    row, findings = scenario(fixtures_dir, name)
    expected = {
        "call_408_proxy": ("rejected", 408, {"CALL_FAILED"}),
        "call_one_way_rtp_private_sdp": ("answered", 200, {"RTP_ONE_WAY", "SDP_PRIVATE_ADDRESS"}),
        "call_tcp_compact": ("answered", 200, set()),
        "call_fragmented_invite": ("answered", 200, set()),
        "call_ipv6": ("answered", 200, set()),
    }[name]
    assert (row["outcome"], row["final_status"]) == expected[:2]
    assert expected[2] <= set(codes(findings))


# ---------------------------------------------------------------- public captures


def test_sngrep_calls_judged_after_authentication(shared_captures):
    rows, findings = analyze_file(shared_captures / "sngrep__aaa.pcap")
    assert [(r["outcome"], r["final_status"]) for r in rows] == [
        ("rejected", 408), ("rejected", 403), ("rejected", 403), ("rejected", 480)]
    assert [r["legs"][0]["invites"] for r in rows] == [1, 2, 2, 2]  # 407 challenge, then credentials
    assert rows[0]["legs"][0]["invite_retransmissions"] == 2
    assert [f.status for f in findings if f.code == "CALL_FAILED"] == [408, 403, 403, 480]
    (unanswered,) = [f for f in findings if f.code == "CALL_CANCEL_UNANSWERED"]
    assert unanswered.frames[0] == 247 and unanswered.frames[-1] == 274
    early = rows[3]["media"]
    assert [(m["src"], m["packets"], m["rtcp_packets"]) for m in early] == [("192.168.1.2:30000", 9, 1)]


def test_g711_capture_media_is_one_way_as_negotiated(shared_captures):
    # The SIPp caller offers a=recvonly and FreeSWITCH answers a=sendonly:
    # RTP one way only is what both sides agreed, not one-way audio.
    rows, findings = analyze_file(shared_captures / "redrabbit__sip-rtp-g711.pcap")
    assert [(r["outcome"], r["codecs_offered"]) for r in rows] == [("answered", ["PCMU"]), ("answered", ["PCMA"])]
    assert [[(m["direction"], m["packets"], m["sdp_frame"]) for m in r["media"]] for r in rows] == [
        [("callee_to_caller", 425, 1)], [("callee_to_caller", 414, 434)]]
    assert codes(findings) == []


def test_heplify_call_streams_and_unanswered_second_call(shared_captures):
    rows, _ = analyze_file(shared_captures / "heplify__rtp_rtcp_sip_ipv4_udp.pcap")
    answered, ringing = rows
    assert answered["outcome"] == "answered" and ringing["outcome"] == "no_answer"
    assert answered["codecs_offered"] == ["PCMA", "G729", "G723", "PCMU"]
    assert all(m["rtcp_packets"] > 0 for m in answered["media"])


# ---------------------------------------------------------------- built from SIP text


def message(text, frame, time, src, dst, body=""):
    head = text.strip().replace("\n", "\r\n")
    if body:
        body = body.strip().replace("\n", "\r\n") + "\r\n"
        head += f"\r\nContent-Type: application/sdp\r\nContent-Length: {len(body)}"
    parsed = sip.parse_message((head + "\r\n\r\n" + body).encode())
    parsed.frame, parsed.time = frame, time
    (parsed.src_ip, parsed.src_port), (parsed.dst_ip, parsed.dst_port) = src, dst
    return parsed


def sdp_body(address, port, payloads="0 8", direction="sendrecv"):
    return f"""v=0
o=- 1 1 IN IP4 {address}
s=-
c=IN IP4 {address}
t=0 0
m=audio {port} RTP/AVP {payloads}
a={direction}"""


def request(method, cseq, frame, time, src=CALLER, dst=CALLEE, to_tag="", branch=None, body="", extra=""):
    from_tag, to = ("a", f";tag={to_tag}" if to_tag else "")
    text = f"""{method} sip:bob@10.0.0.2 SIP/2.0
Via: SIP/2.0/UDP {src[0]}:{src[1]};branch={branch or f"z9hG4bK{method}{cseq}"}
From: <sip:alice@example.com>;tag={from_tag}
To: <sip:bob@example.com>{to}
Call-ID: call-1
CSeq: {cseq} {method}
Contact: <sip:alice@{src[0]}:{src[1]}>
{extra}""".strip()
    return message(text, frame, time, src, dst, body)


def response(status, reason, req, frame, time, to_tag="b", body="", extra=""):
    via = req.header("via")
    text = f"""SIP/2.0 {status} {reason}
Via: {via}
From: <sip:alice@example.com>;tag=a
To: <sip:bob@example.com>{f";tag={to_tag}" if to_tag else ""}
Call-ID: call-1
CSeq: {req.cseq} {req.cseq_method}
Contact: <sip:bob@{req.dst_ip}:{req.dst_port}>
{extra}""".strip()
    return message(text, frame, time, (req.dst_ip, req.dst_port), (req.src_ip, req.src_port), body)


def result_of(messages, streams=(), last_time=None):
    return CaptureResult(CaptureInfo("test.pcap", last_time=last_time or messages[-1].time),
                         sip_messages=list(messages), rtp_streams=list(streams))


def answered_call(invite_body=None, ok_body=None):
    invite = request("INVITE", 1, 1, 100.0, body=invite_body or sdp_body("10.0.0.1", 4000))
    ringing = response(180, "Ringing", invite, 2, 100.5)
    ok = response(200, "OK", invite, 3, 102.0, body=ok_body or sdp_body("10.0.0.2", 6000, "8"))
    ack = request("ACK", 1, 4, 102.1, to_tag="b", branch="z9hG4bKack")
    return [invite, ringing, ok, ack]


def stream(src, dst, first_frame, packets=100):
    return RtpStream(*src, *dst, ssrc=first_frame, first_frame=first_frame, first_time=102.2,
                     last_time=110.0, packets=packets, expected=packets, payload_types={8: packets})


def test_timing_fields_and_bye_reason():
    messages = answered_call()
    bye = request("BYE", 2, 9, 112.0, to_tag="b", branch="z9hG4bKbye", extra="Reason: Q.850;cause=16")
    rows, findings = call_findings.analyze(result_of(messages + [bye, response(200, "OK", bye, 10, 112.1)]))
    (row,) = rows
    assert row["post_dial_delay_ms"] == 500.0 and row["answer_delay_ms"] == 2000.0
    assert row["duration_s"] == 10.0 and row["ended_by"] == "caller" and row["bye_reason"] == "Q.850;cause=16"
    assert row["codecs_offered"] == ["PCMU", "PCMA"] and row["codecs_answered"] == ["PCMA"]
    assert codes(findings) == ["RTP_MISSING"]


def test_two_way_media_is_healthy_and_one_way_is_reported():
    messages = answered_call()
    forward, backward = stream(("10.0.0.1", 4000), ("10.0.0.2", 6000), 5), stream(("10.0.0.2", 6000), ("10.0.0.1", 4000), 6)
    (row,), findings = call_findings.analyze(result_of(messages, [forward, backward], last_time=111.0))
    assert [m["direction"] for m in row["media"]] == ["caller_to_callee", "callee_to_caller"]
    assert codes(findings) == []
    _, findings = call_findings.analyze(result_of(messages, [forward], last_time=111.0))
    (one_way,) = findings
    assert one_way.code == "RTP_ONE_WAY" and one_way.details == {"direction_seen": "caller_to_callee"}


def test_missing_rtp_is_an_error_only_where_the_capture_carries_media():
    messages = answered_call()
    (signalling_only,) = call_findings.analyze(result_of(messages, last_time=111.0))[1]
    assert (signalling_only.code, signalling_only.severity) == ("RTP_MISSING", "warning")
    # Another call's media is in the capture, so this call's absence is real.
    elsewhere = stream(("10.9.9.1", 7000), ("10.9.9.2", 7002), 5)
    (missing,) = call_findings.analyze(result_of(messages, [elsewhere], last_time=111.0))[1]
    assert (missing.code, missing.severity) == ("RTP_MISSING", "error")


def test_rtp_to_a_port_the_sdp_did_not_announce():
    messages = answered_call()
    wrong = stream(("10.0.0.2", 6000), ("10.0.0.1", 4002), 5)
    right = stream(("10.0.0.1", 4000), ("10.0.0.2", 6000), 6)
    _, findings = call_findings.analyze(result_of(messages, [wrong, right], last_time=111.0))
    assert "RTP_PORT_MISMATCH" in codes(findings)
    assert next(f for f in findings if f.code == "RTP_PORT_MISMATCH").frames == [5]


def test_no_common_codec_in_offer_and_answer():
    messages = answered_call(ok_body=sdp_body("10.0.0.2", 6000, "18 101"))
    _, findings = call_findings.analyze(result_of(messages))
    mismatch = next(f for f in findings if f.code == "CALL_CODEC_MISMATCH")
    assert mismatch.details["offered"] == ["PCMU", "PCMA"] and mismatch.details["answered"][0] == "G729"


def test_private_sdp_address_from_a_public_source():
    public = ("203.0.113.7", 5060)
    invite = request("INVITE", 1, 1, 100.0, src=public, body=sdp_body("192.168.1.20", 4000))
    trying = response(100, "Trying", invite, 2, 100.1, to_tag="")
    _, findings = call_findings.analyze(result_of([invite, trying]))
    (private,) = [f for f in findings if f.code == "SDP_PRIVATE_ADDRESS"]
    assert private.details["addresses"] == ["192.168.1.20"] and private.frames == [1]
    assert "private (RFC 1918)" in private.explanation


def test_cgnat_contact_is_private_too():
    invite = request("INVITE", 1, 1, 100.0, src=("198.51.100.1", 5060), body=sdp_body("198.51.100.1", 4000))
    invite.contacts[0].uri = "sip:alice@100.64.3.4:5060"
    (_, findings) = call_findings.analyze(result_of([invite]))
    assert [f.details["addresses"] for f in findings if f.code == "SDP_PRIVATE_ADDRESS"] == [["100.64.3.4"]]


def test_unanswered_invite_retransmissions():
    copies = [request("INVITE", 1, n + 1, 100.0 + t, body=sdp_body("10.0.0.1", 4000))
              for n, t in enumerate((0, 0.5, 1.5, 3.5))]
    (row,), findings = call_findings.analyze(result_of(copies))
    assert row["outcome"] == "no_response" and row["retransmission_frames"] == [2, 3, 4]
    (silent,) = findings
    assert silent.code == "CALL_NO_RESPONSE" and silent.details == {"invites_sent": 4, "seconds": 3.5}


def test_cancel_crossing_the_200_is_a_race():
    invite, ringing, ok, ack = answered_call()
    cancel = request("CANCEL", 1, 20, 101.9, branch="z9hG4bKINVITE1")
    _, findings = call_findings.analyze(result_of([invite, ringing, cancel, ok, ack]))
    race = next(f for f in findings if f.code == "CALL_CANCEL_RACE")
    assert race.frames == [20, ok.frame]


def test_hold_and_resume_by_reinvite():
    messages = answered_call()
    hold = request("INVITE", 2, 5, 105.0, to_tag="b", branch="z9hG4bKhold",
                   body=sdp_body("10.0.0.1", 4000, direction="sendonly"))
    resume = request("INVITE", 3, 7, 108.0, to_tag="b", branch="z9hG4bKresume", body=sdp_body("10.0.0.1", 4000))
    moved = request("INVITE", 4, 9, 109.0, to_tag="b", branch="z9hG4bKmove", body=sdp_body("10.0.0.9", 4000))
    (row,), _ = call_findings.analyze(result_of(messages + [hold, resume, moved]))
    assert [(e["frame"], e["kind"], e["by"]) for e in row["events"]] == [
        (5, "hold", "caller"), (7, "resume", "caller"), (9, "media_change", "caller")]


def test_proxied_call_is_judged_on_the_caller_leg():
    proxy = ("10.0.0.5", 5060)
    invite = request("INVITE", 1, 1, 100.0, dst=proxy, body=sdp_body("10.0.0.1", 4000))
    forwarded = request("INVITE", 1, 2, 100.01, src=proxy, dst=CALLEE, branch="z9hG4bKhop2",
                        body=sdp_body("10.0.0.1", 4000))
    timeout = response(408, "Request Timeout", invite, 3, 132.0)
    (row,), findings = call_findings.analyze(result_of([invite, forwarded, timeout]))
    assert (row["outcome"], row["final_status"], row["callee"]) == ("rejected", 408, "10.0.0.5:5060")
    assert [(leg["caller"], leg["callee"], leg["final_status"]) for leg in row["legs"]] == [
        ("10.0.0.1:5060", "10.0.0.5:5060", 408), ("10.0.0.5:5060", "10.0.0.2:5060", None)]
    (failed,) = findings
    assert failed.status == 408 and "10.0.0.2:5060, which never answered" in failed.explanation


def test_late_ack_is_a_warning_with_the_ack_as_evidence(shared_captures):
    # Caller -> proxy -> callee over IPv6: the callee sends its 200 OK twice
    # (frames 26, 27) before the proxy's ACK (frame 30) reaches it.
    _, findings = analyze_file(shared_captures / "sngrep__ipv6frag.pcap")
    late = [f for f in findings if f.code == "CALL_NO_ACK"]
    assert [(f.severity, sorted(f.frames), f.details) for f in late] == [
        ("warning", [26, 27, 30], {"ok_copies": 2, "acked": True})]


def test_a_reused_branch_with_a_new_cseq_is_a_new_transaction(shared_captures):
    # Zoiper sends its re-INVITE (CSeq 2, frame 12) with the branch of its
    # first INVITE (CSeq 1): a new request, not a retransmission.
    rows, findings = analyze_file(shared_captures / "snort3demo__digium.pcap")
    zoiper = next(row for row in rows if 3 in row["frames"])
    assert zoiper["retransmission_frames"] == []
    assert "CALL_NO_ACK" not in codes(findings)


def test_a_response_with_a_damaged_status_line_is_left_out():
    # Found by tests/test_fuzz_engine.py: "SIP/2.0 2x0 OK" parses with no status,
    # and the call analysis compared that None with 300.
    invite, ringing, ok, ack = answered_call()
    damaged = response("2x0", "OK", invite, 3, 101.0, body=sdp_body("10.0.0.2", 6000, "8"))
    assert (damaged.status, damaged.method) == (None, None)
    (row,), _ = call_findings.analyze(result_of([invite, ringing, damaged, ok, ack]))
    assert (row["outcome"], row["final_status"]) == ("answered", 200)


def test_reliable_provisionals_are_not_retransmissions(shared_captures):
    # Two 183s with RSeq 1 (frames 6, 7: one per hop) and two with RSeq 2
    # (16, 17), each PRACKed: four first sends. Only the 200 OK repeated by
    # the callee (frame 27) is a retransmission.
    rows, _ = analyze_file(shared_captures / "sngrep__ipv6frag.pcap")
    assert rows[0]["retransmission_frames"] == [27]
