"""Timing per call, RFC 6076 per trunk and registrar, DTMF.

tests/fixtures/timing/timing_dtmf.pcap is byte-built (generate.py there) with
every time chosen, so each metric is asserted exactly; its RFC 4733 packets
are checked against tshark's own decoding. Rarer situations (no BYE, no ACK,
a request still open at the capture's end, a challenge before the answer)
are built from SIP text.
"""

import subprocess
from collections import defaultdict

import pytest
from sipdiag.analysis import timing
from sipdiag.engine import analyze_path
from sipdiag.model import CaptureInfo, CaptureResult
from sipdiag.protocols import sip

BASE = 1767225600  # the fixture's first second


@pytest.fixture(scope="module")
def report(fixtures_dir):
    return analyze_path(str(fixtures_dir / "timing" / "timing_dtmf.pcap"))


def calls_by_id(report):
    return {call["call_id"].split("@")[0]: call for call in report["calls"]}


# ---------------------------------------------------------------- the byte-built fixture


def test_answered_call_timing(report):
    call = calls_by_id(report)["timing-answered"]
    # INVITE at 1 s; 180 at +1.25 s, 200 at +4.5 s, ACK at +4.6 s, BYE at +34.6 s.
    assert call["timing"] == {
        "post_dial_delay_ms": 1250.0, "setup_time_ms": 4500.0, "answer_to_ack_ms": 100.0,
        "duration_s": 30.0, "duration_start": "ack", "duration_end": "bye",
        "failure_ms": None, "failure_status": None,
    }


@pytest.mark.parametrize("name, post_dial_delay, failure", [
    ("timing-busy", 500.0, (2000.0, 486)),        # 180 at +0.5 s, 486 at +2 s
    ("timing-redirect", None, (None, None)),      # a 302 is a redirection, not a failure
    ("timing-unavailable", None, (800.0, 503)),   # 100 only, 503 at +0.8 s
])
def test_failed_call_timing(report, name, post_dial_delay, failure):
    got = calls_by_id(report)[name]["timing"]
    assert got["post_dial_delay_ms"] == post_dial_delay
    assert (got["failure_ms"], got["failure_status"]) == failure
    assert [got[key] for key in ("setup_time_ms", "answer_to_ack_ms", "duration_s", "duration_start",
                                 "duration_end")] == [None] * 5


def test_dtmf_of_the_answered_call(report):
    call = calls_by_id(report)["timing-answered"]
    assert [(d["digit"], d["source"], d["frame"], round(d["time"] - BASE, 6), d["duration_ms"], d["volume"],
             d["ended"]) for d in call["dtmf"]] == [
        ("1", "rfc4733", 51, 6.0, 200.0, 10, True),
        ("2", "rfc4733", 147, 7.0, 300.0, 12, True),
        ("5", "sip-info", 201, 15.0, 160.0, None, None),
    ]
    rfc4733 = [d for d in call["dtmf"] if d["source"] == "rfc4733"]
    assert {(d["src"], d["dst"], d["ssrc"]) for d in rfc4733} == {("10.77.0.1:16384", "10.77.0.2:20000", "0x11A11CE0")}
    # Each end packet is sent three times: the stream still counts two events.
    assert sorted(m["dtmf_events"] for m in call["media"]) == [0, 2]
    assert all(not other["dtmf"] for name, other in calls_by_id(report).items() if name != "timing-answered")


def test_rfc4733_events_agree_with_tshark(fixtures_dir, report):
    out = subprocess.run(["tshark", "-n", "-r", str(fixtures_dir / "timing" / "timing_dtmf.pcap"), "-Y", "rtpevent",
                          "-T", "fields", "-e", "frame.number", "-e", "rtp.timestamp", "-e", "rtpevent.event_id",
                          "-e", "rtpevent.volume", "-e", "rtpevent.duration", "-e", "rtpevent.end_of_event"],
                         capture_output=True, text=True, check=True).stdout
    events = defaultdict(list)  # RTP timestamp -> its packets, as tshark decodes them
    for line in out.splitlines():
        frame, timestamp, event, volume, duration, end = line.split("\t")
        events[timestamp].append((int(frame), int(event), int(volume), int(duration), end == "1"))
    expected = [(packets[0][0], str(packets[0][1]), packets[-1][2], max(p[3] for p in packets) / 8, packets[-1][4])
                for packets in events.values()]
    (call,) = [c for c in report["calls"] if c["dtmf"]]
    got = [(d["frame"], d["digit"], d["volume"], d["duration_ms"], d["ended"]) for d in call["dtmf"]
           if d["source"] == "rfc4733"]
    assert got == expected and len(got) == 2


def test_trunks_carry_rfc6076_session_metrics(report):
    first, second = report["trunks"]
    assert first["endpoints"] == ["10.77.0.1:5060", "10.77.0.2:5060"]
    assert [call_id.split("@")[0] for call_id in first["call_ids"]] == ["timing-answered", "timing-busy",
                                                                        "timing-redirect"]
    assert (first["session_requests"], first["in_progress"]) == (3, 0)
    assert first["rfc6076"] == {
        # successful: INVITE -> 180 (1.25 s); failed: INVITE -> 486 (2 s); the 302 is neither
        "session_request_delay_ms": {"successful": {"count": 1, "min": 1250.0, "mean": 1250.0, "max": 1250.0},
                                     "failed": {"count": 1, "min": 2000.0, "mean": 2000.0, "max": 2000.0}},
        # BYE at +34.6 s, its 200 50 ms later
        "session_disconnect_delay_ms": {"successful": {"count": 1, "min": 50.0, "mean": 50.0, "max": 50.0},
                                        "failed": 0},
        # one 200 of three INVITEs less the one redirected
        "session_establishment_ratio": {"count": 1, "total": 2, "percent": 50.0},
        # the 486 is an effective answer too
        "session_establishment_effectiveness_ratio": {"count": 2, "total": 2, "percent": 100.0},
        "ineffective_session_attempts": {"count": 0, "total": 3, "percent": 0.0},
        # the answered call ended with BYE and 200; the others never completed
        "session_completion_ratio": {"count": 1, "total": 3, "percent": 33.3},
    }
    assert second["endpoints"] == ["10.77.0.1:5060", "10.77.0.3:5060"]
    assert second["rfc6076"]["ineffective_session_attempts"] == {"count": 1, "total": 1, "percent": 100.0}
    assert second["rfc6076"]["session_request_delay_ms"]["failed"] == {"count": 1, "min": 800.0, "mean": 800.0,
                                                                        "max": 800.0}
    assert second["rfc6076"]["session_establishment_ratio"] == {"count": 0, "total": 1, "percent": 0.0}


def test_registrar_carries_rfc6076_registration_metrics(report):
    (registrar,) = report["registrars"]
    assert registrar["registrar"] == "10.77.0.2:5060"
    assert registrar["rfc6076"] == {
        # REGISTER at 0 s, 401 at 40 ms, REGISTER with credentials at 100 ms, 200 at 180 ms
        "registration_request_delay_ms": {"count": 1, "min": 180.0, "mean": 180.0, "max": 180.0},
        # carol's REGISTER was answered 403
        "ineffective_registration_attempts": {"count": 1, "total": 2, "percent": 50.0},
    }


def test_sip_info_dtmf_of_a_real_capture(shared_captures):
    (call,) = analyze_path(str(shared_captures / "redrabbit__DTMFsipinfo.pcap"))["calls"]
    assert [(d["digit"], d["source"], d["frame"], d["duration_ms"]) for d in call["dtmf"]] == [
        ("1", "sip-info", 17, 180.0), ("3", "sip-info", 19, 180.0), ("4", "sip-info", 29, 180.0),
        ("2", "sip-info", 31, 180.0)]
    # Answered and never hung up in the capture: the duration runs to its end.
    assert (call["timing"]["duration_start"], call["timing"]["duration_end"]) == ("ack", "capture_end")


# ---------------------------------------------------------------- built from SIP text

CALLER, CALLEE, PROXY = ("10.0.0.1", 5060), ("10.0.0.2", 5060), ("10.0.0.5", 5060)


def message(start, headers, frame, time, src, dst, body="", content_type=None):
    lines = [start, *headers]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body.encode())}")
    parsed = sip.parse_message(("\r\n".join(lines) + "\r\n\r\n" + body).encode())
    parsed.frame, parsed.time = frame, time
    (parsed.src_ip, parsed.src_port), (parsed.dst_ip, parsed.dst_port) = src, dst
    return parsed


def request(method, cseq, frame, time, src=CALLER, dst=CALLEE, to_tag=None, branch=None, body="",
            content_type=None, call_id="call-1"):
    return message(f"{method} sip:bob@10.0.0.2 SIP/2.0", [
        f"Via: SIP/2.0/UDP {src[0]}:{src[1]};branch={branch or f'z9hG4bK-{method}-{cseq}'}",
        "From: <sip:alice@example.com>;tag=a", f"To: <sip:bob@example.com>{f';tag={to_tag}' if to_tag else ''}",
        f"Call-ID: {call_id}", f"CSeq: {cseq} {method}"], frame, time, src, dst, body, content_type)


def response(status, reason, req, frame, time, to_tag="b"):
    return message(f"SIP/2.0 {status} {reason}", [
        f"Via: {req.header('via')}", "From: <sip:alice@example.com>;tag=a",
        f"To: <sip:bob@example.com>{f';tag={to_tag}' if to_tag else ''}", f"Call-ID: {req.call_id}",
        f"CSeq: {req.cseq} {req.cseq_method}"], frame, time, (req.dst_ip, req.dst_port), (req.src_ip, req.src_port))


def measured(messages, last_time):
    """(call rows, trunks) as the report gets them."""
    result = CaptureResult(CaptureInfo("test.pcap", last_time=last_time), sip_messages=list(messages))
    rows = [{"call_id": call_id} for call_id in dict.fromkeys(m.call_id for m in messages if m.method == "INVITE")]
    trunks = timing.analyze(result, rows, [])
    return rows, trunks


def answered(ack=True):
    invite = request("INVITE", 1, 1, 100.0)
    ok = response(200, "OK", invite, 3, 102.0)
    messages = [invite, response(180, "Ringing", invite, 2, 100.5), ok]
    if ack:
        messages.append(request("ACK", 1, 4, 102.1, to_tag="b", branch="z9hG4bK-ack"))
    return messages


def test_duration_runs_to_the_capture_end_without_a_bye():
    (row,), (trunk,) = measured(answered(), last_time=130.1)
    assert (row["timing"]["duration_s"], row["timing"]["duration_start"], row["timing"]["duration_end"]) == (
        28.0, "ack", "capture_end")
    # Still up: neither a completed nor a failed session.
    assert trunk["rfc6076"]["session_completion_ratio"] == {"count": 0, "total": 0, "percent": None}


def test_duration_starts_at_the_200_without_an_ack():
    messages = answered(ack=False)
    bye = request("BYE", 2, 5, 110.0, to_tag="b")
    (row,), (trunk,) = measured(messages + [bye, response(200, "OK", bye, 6, 110.25)], last_time=111.0)
    assert (row["timing"]["answer_to_ack_ms"], row["timing"]["duration_s"], row["timing"]["duration_start"],
            row["timing"]["duration_end"]) == (None, 8.0, "200", "bye")
    assert trunk["rfc6076"]["session_disconnect_delay_ms"] == {
        "successful": {"count": 1, "min": 250.0, "mean": 250.0, "max": 250.0}, "failed": 0}
    assert trunk["rfc6076"]["session_completion_ratio"] == {"count": 1, "total": 1, "percent": 100.0}


@pytest.mark.parametrize("last_time, failed, completion", [
    (150.0, 1, {"count": 0, "total": 1, "percent": 0.0}),    # timer F ran out: a failed disconnect
    (120.0, 0, {"count": 0, "total": 0, "percent": None}),   # the capture ended first: not judged
])
def test_unanswered_bye(last_time, failed, completion):
    (_row,), (trunk,) = measured(answered() + [request("BYE", 2, 5, 112.0, to_tag="b")], last_time)
    assert trunk["rfc6076"]["session_disconnect_delay_ms"] == {"successful": None, "failed": failed}
    assert trunk["rfc6076"]["session_completion_ratio"] == completion


def test_a_request_still_open_at_the_capture_end_is_left_out_of_the_ratios():
    invite = request("INVITE", 1, 1, 100.0)
    (row,), (trunk,) = measured([invite, response(180, "Ringing", invite, 2, 101.0)], last_time=110.0)
    assert row["timing"]["post_dial_delay_ms"] == 1000.0
    assert (trunk["session_requests"], trunk["in_progress"]) == (1, 1)
    for name in ("session_establishment_ratio", "ineffective_session_attempts", "session_completion_ratio"):
        assert trunk["rfc6076"][name] == {"count": 0, "total": 0, "percent": None}


def test_a_challenge_is_part_of_the_setup():
    first = request("INVITE", 1, 1, 100.0)
    challenge = response(407, "Proxy Authentication Required", first, 2, 100.05)
    ack = request("ACK", 1, 3, 100.06, to_tag="b", branch="z9hG4bK-INVITE-1")
    second = request("INVITE", 2, 4, 100.2)
    ringing = response(183, "Session Progress", second, 5, 100.7)
    ok = response(200, "OK", second, 6, 103.0)
    (row,), (trunk,) = measured([first, challenge, ack, second, ringing, ok], last_time=104.0)
    assert (row["timing"]["post_dial_delay_ms"], row["timing"]["setup_time_ms"]) == (700.0, 3000.0)
    assert trunk["rfc6076"]["session_request_delay_ms"] == {
        "successful": {"count": 1, "min": 700.0, "mean": 700.0, "max": 700.0}, "failed": None}
    assert trunk["rfc6076"]["session_establishment_ratio"] == {"count": 1, "total": 1, "percent": 100.0}


def test_each_hop_of_a_proxied_call_is_its_own_trunk():
    invite = request("INVITE", 1, 1, 100.0, dst=PROXY)
    forwarded = request("INVITE", 1, 2, 100.01, src=PROXY, branch="z9hG4bK-hop2")
    busy_downstream = response(486, "Busy Here", forwarded, 3, 101.0)
    busy = response(486, "Busy Here", invite, 4, 101.02)
    _rows, trunks = measured([invite, forwarded, busy_downstream, busy], last_time=102.0)
    assert [(t["endpoints"], t["rfc6076"]["session_request_delay_ms"]["failed"]["mean"]) for t in trunks] == [
        (["10.0.0.1:5060", "10.0.0.5:5060"], 1020.0), (["10.0.0.5:5060", "10.0.0.2:5060"], 990.0)]


def test_sip_info_with_application_dtmf():
    messages = answered()
    info = request("INFO", 2, 5, 105.0, to_tag="b", body="#", content_type="application/dtmf")
    retransmission = request("INFO", 2, 6, 105.5, to_tag="b", body="#", content_type="application/dtmf")
    other = request("INFO", 3, 7, 106.0, to_tag="b", body="<xml/>", content_type="application/xml")
    (row,), _trunks = measured(messages + [info, retransmission, other], last_time=107.0)
    assert [(d["digit"], d["source"], d["frame"], d["duration_ms"]) for d in row["dtmf"]] == [
        ("#", "sip-info", 5, None)]


@pytest.mark.parametrize("body, expected", [
    (b"Signal=5\r\nDuration=160\r\n", ("5", 160.0)),
    (b"Signal= 1\r\nDuration= 180\r\n", ("1", 180.0)),  # Cisco-style spacing (redrabbit__DTMFsipinfo)
    (b"signal=a\r\n", ("A", None)),
    (b"Signal=10\r\nDuration=100\r\n", ("*", 100.0)),  # RFC 4733 event numbers
    (b"#\r\n", ("#", None)),  # application/dtmf: the digit alone
    (b"11", ("#", None)),
    (b"Signal=\r\n", (None, None)),
    (b"hello", (None, None)),
    (b"", (None, None)),
])
def test_sip_info_bodies(body, expected):
    assert timing.sip_info_digit(body) == expected
