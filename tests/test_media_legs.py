"""Media follows the SDP in force; one call's dialogs through a B2BUA are one
group; responses without a usable Via still find their request (issue 12).

The lab fixtures in tests/fixtures/media (real SIPp runs, see its README
section) go through the real engine; the rules each fixture cannot show alone
are pinned down with calls built from SIP text.
"""

import pytest
from sipdiag import analyze_path
from sipdiag.analysis import call_findings, malformed
from sipdiag.analysis.calls import calls_with_rows
from sipdiag.analysis.findings import diagnose
from sipdiag.analysis.transaction import TransactionTable
from sipdiag.engine import result_for_path
from sipdiag.model import RtpStream
from test_calls import codes, message, request, response, result_of, sdp_body

RTP_CODES = {"RTP_MISSING", "RTP_ONE_WAY", "RTP_PORT_MISMATCH"}


@pytest.fixture(scope="module")
def media_dir(fixtures_dir):
    return fixtures_dir / "media"


def media_rows(row):
    return [(m["src"], m["dst"], m["direction"], m["sdp_frame"], m["packets"]) for m in row["media"]]


# ---------------------------------------------------------------- PBX handing the media over


def test_direct_media_streams_belong_to_both_legs_with_the_sdp_that_named_them(media_dir):
    rows, findings = call_findings.analyze(result_for_path(media_dir / "media_pbx_direct.pcap"))
    leg1, leg2 = rows
    assert (leg1["call_id"], leg2["call_id"]) == ("media_pbx_direct-1@10.77.0.1", "7c1e5a90d3b24f68@10.77.0.2")
    assert [row["outcome"] for row in rows] == ["answered", "answered"]
    # Leg 1 (alice <-> PBX): her first packets to the port of the PBX's 200
    # (frame 10), then to bob where the PBX's re-INVITE (31) sent her; bob's
    # stream reaches her at the address her 200 to that re-INVITE (32) kept.
    assert media_rows(leg1) == [
        ("10.77.0.1:16384", "10.77.0.2:30000", "caller_to_callee", 10, 10),
        ("10.77.0.1:16384", "10.77.0.3:20000", "caller_to_callee", 31, 150),
        ("10.77.0.3:20000", "10.77.0.1:16384", "callee_to_caller", 32, 150)]
    # Leg 2 (PBX <-> bob): bob's first packets to the PBX's offer (3); the
    # direct streams by bob's answer (7) and the PBX's re-INVITE (35).
    assert media_rows(leg2) == [
        ("10.77.0.3:20000", "10.77.0.2:30010", "callee_to_caller", 3, 10),
        ("10.77.0.1:16384", "10.77.0.3:20000", "caller_to_callee", 7, 150),
        ("10.77.0.3:20000", "10.77.0.1:16384", "callee_to_caller", 35, 150)]
    # Before: leg 1 got RTP_MISSING (error) and leg 2 an RTP_PORT_MISMATCH.
    assert not RTP_CODES & set(codes(findings))
    assert codes(findings) == []


def test_the_two_legs_are_one_call_by_session_id(media_dir):
    report = analyze_path(media_dir / "media_pbx_direct.pcap")
    leg1, leg2 = (row["call_id"] for row in report["calls"])
    assert report["call_groups"] == [{"id": "G1", "calls": [leg1, leg2], "correlated_by": "session_id"}]
    assert [row["group"] for row in report["calls"]] == ["G1", "G1"]
    assert report["calls"][0]["group_links"] == [
        {"call_id": leg2, "by": "session_id", "evidence": "Session-ID UUID ab30317f1a784dc48ff824d0d3715d86"}]


# ---------------------------------------------------------------- hold and resume


def test_hold_and_resume_on_a_new_port(media_dir):
    result = result_for_path(media_dir / "media_hold_resume.pcap")
    ((call, row),) = calls_with_rows(result)
    # The resume re-INVITE (209) moved the caller to 16386: the callee's
    # second stream matched it, the caller's new one the 200 answering it.
    assert media_rows(row) == [
        ("10.77.0.2:20000", "10.77.0.1:16384", "callee_to_caller", 1, 50),
        ("10.77.0.1:16384", "10.77.0.2:20000", "caller_to_callee", 4, 150),
        ("10.77.0.2:20000", "10.77.0.1:16386", "callee_to_caller", 209, 75),
        ("10.77.0.1:16386", "10.77.0.2:20000", "caller_to_callee", 210, 75)]
    assert [(e["frame"], e["kind"]) for e in row["events"]] == [(106, "hold"), (209, "resume"), (209, "media_change")]
    # On hold (106 sendonly, answered recvonly) nothing is due from the callee.
    hold, resume = (m.time for m in call.messages if m.frame in (106, 209))
    expected = call.timeline.expected(call.caller_leg.answer.time, call.timeline.end)

    def during_hold(direction):
        return sum(max(0.0, min(b, resume) - max(a, hold)) for a, b in expected[direction])

    assert during_hold("callee_to_caller") == 0.0
    assert during_hold("caller_to_callee") == pytest.approx(resume - hold)
    _, findings = call_findings.analyze(result)
    assert codes(findings) == []


# ---------------------------------------------------------------- responses without Via


def test_tcp_call_whose_responses_lack_via_is_answered(media_dir):
    result = result_for_path(media_dir / "media_tcp_no_via.pcap")
    ((call, row),) = calls_with_rows(result)
    assert (row["outcome"], row["final_status"], row["answer_time"] is not None) == ("answered", 200, True)
    assert [r.status for r in call.caller_leg.invites[0].responses] == [100, 180, 200]
    assert {m["direction"] for m in row["media"]} == {"caller_to_callee", "callee_to_caller"}
    report = analyze_path(media_dir / "media_tcp_no_via.pcap")
    (finding,) = report["findings"]
    assert (finding["code"], finding["severity"], finding["frames"]) == ("SIP_MALFORMED_MESSAGE", "warning",
                                                                         [6, 8, 10, 316])
    assert [(m["frame"], m["message"], m["missing"]) for m in finding["details"]["messages"]] == [
        (6, "100 Trying to INVITE", ["Via"]), (8, "180 Ringing to INVITE", ["Via"]),
        (10, "200 OK to INVITE", ["Via"]), (316, "200 OK to BYE", ["Via"])]
    assert "frame 10 (200 OK to INVITE from 10.77.0.2:5060 to 10.77.0.1:5060) has no Via" in finding["explanation"]


def without_via(msg):
    return message("\n".join(line for line in msg.raw.decode().split("\r\n\r\n")[0].split("\r\n")
                             if not line.startswith("Via:")),
                   msg.frame, msg.time, (msg.src_ip, msg.src_port), (msg.dst_ip, msg.dst_port))


def test_a_response_falls_back_to_cseq_method_and_direction():
    table = TransactionTable()
    invite = request("INVITE", 1, 1, 100.0)
    bye = request("BYE", 2, 5, 110.0, to_tag="b")
    ringing, ok = without_via(response(180, "Ringing", invite, 2, 100.5)), response(200, "OK", invite, 3, 101.0)
    ok.vias[0].branch = "z9hG4bKrewritten"  # a branch no request has
    bye_ok = without_via(response(200, "OK", bye, 6, 110.1))
    stray = without_via(response(200, "OK", request("OPTIONS", 7, 7, 120.0), 8, 120.1))
    for msg in (invite, ringing, ok, bye, bye_ok):
        table.add(msg).responses.append(msg) if not msg.is_request else table.add(msg).requests.append(msg)
    assert table.add(invite) is table.add(ringing) is table.add(ok)
    assert table.add(bye_ok) is table.add(bye) is not table.add(invite)
    # A response whose request the capture does not hold starts its own transaction.
    assert table.add(stray).request is None


def test_a_message_lacking_from_and_with_an_unreadable_cseq_is_named():
    broken = message("""OPTIONS sip:bob@10.0.0.2 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx
To: <sip:bob@example.com>
Call-ID: opt-1
CSeq: one OPTIONS""", 4, 100.0, ("10.0.0.1", 5060), ("10.0.0.2", 5060))
    (finding,) = malformed.analyze(result_of([broken]))
    assert finding.details["messages"] == [{"frame": 4, "message": "OPTIONS", "src": "10.0.0.1:5060",
                                            "dst": "10.0.0.2:5060", "call_id": "opt-1", "missing": ["From"],
                                            "unusable": ["CSeq"]}]
    assert finding.summary == "1 SIP message without a usable From, CSeq"
    assert "Without a Via" not in finding.explanation  # only said of responses that lack one
    assert malformed.analyze(result_of(answered())) == []


def test_call_ids_whose_responses_lack_the_same_header_from_one_sender_are_one_cause():
    stripped = [message(f"""SIP/2.0 200 OK
From: <sip:alice@example.com>;tag=a
To: <sip:bob@example.com>;tag=b
Call-ID: {call_id}
CSeq: 1 INVITE""", frame, 100.0 + frame, ("10.0.0.2", 5060), ("10.0.0.1", 5060)) for frame, call_id in ((1, "one"), (2, "two"))]
    instances = malformed.analyze(result_of(stripped))
    assert [(f.call_id, f.frames) for f in instances] == [("one", [1]), ("two", [2])]
    (finding,) = diagnose(instances)
    assert (finding["summary"], finding["count"], finding["frames"]) == (
        "SIP messages without a usable Via from 10.0.0.2:5060 (2 Call-IDs)", 2, [1, 2])
    assert [i["summary"] for i in finding["instances"]] == [
        f"Messages of Call-ID {call_id}: 1 SIP message without a usable Via" for call_id in ("one", "two")]


# ---------------------------------------------------------------- built from SIP text


def answered(invite_body=None, ok_body=None):
    invite = request("INVITE", 1, 1, 100.0, body=invite_body or sdp_body("10.0.0.1", 4000))
    ok = response(200, "OK", invite, 2, 102.0, body=ok_body or sdp_body("10.0.0.2", 6000, "8"))
    ack = request("ACK", 1, 3, 102.1, to_tag="b", branch="z9hG4bKack")
    return [invite, ok, ack]


def bye_at(frame, time):
    bye = request("BYE", 9, frame, time, to_tag="b", branch="z9hG4bKbye")
    return [bye, response(200, "OK", bye, frame + 1, time + 0.1)]


def rtp(src, dst, first_frame, first_time, last_time, packets=100):
    return RtpStream(*src, *dst, ssrc=first_frame, first_frame=first_frame, first_time=first_time,
                     last_time=last_time, packets=packets, expected=packets, payload_types={8: packets})


CALLER_MEDIA, CALLEE_MEDIA = ("10.0.0.1", 4000), ("10.0.0.2", 6000)


def test_a_call_held_right_after_the_answer_is_not_one_way():
    # The callee puts the caller on hold (RFC 2543 style: c=0.0.0.0,
    # sendonly) and plays music; the held caller sends nothing until it
    # hangs up. Judged on the whole call this looked like one-way audio.
    callee, caller = ("10.0.0.2", 5060), ("10.0.0.1", 5060)
    dialog_headers = """From: <sip:bob@example.com>;tag=b
To: <sip:alice@example.com>;tag=a
Call-ID: call-1
CSeq: 1 INVITE"""
    hold = message(f"""INVITE sip:alice@10.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKhold
{dialog_headers}""", 5, 102.3, callee, caller, sdp_body("0.0.0.0", 6000, "8", direction="sendonly"))
    held_ok = message(f"""SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKhold
{dialog_headers}""", 6, 102.35, caller, callee, sdp_body("10.0.0.1", 4000, direction="recvonly"))
    music = rtp(CALLEE_MEDIA, CALLER_MEDIA, 7, 102.4, 110.0)
    (row,), findings = call_findings.analyze(result_of(answered() + [hold, held_ok] + bye_at(20, 110.0), [music]))
    # Sent to the address the held caller's 200 (frame 6) kept.
    assert [(m["direction"], m["sdp_frame"]) for m in row["media"]] == [("callee_to_caller", 6)]
    assert codes(findings) == []
    # Without the hold the same media is one-way audio.
    (_, findings) = call_findings.analyze(result_of(answered() + bye_at(20, 110.0), [music]))
    assert codes(findings) == ["RTP_ONE_WAY"]


def test_a_call_inactive_all_along_is_not_missing_media():
    messages = answered(invite_body=sdp_body("10.0.0.1", 4000, direction="inactive"),
                        ok_body=sdp_body("10.0.0.2", 6000, "8", direction="inactive"))
    other_call = rtp(("10.9.9.1", 7000), ("10.9.9.2", 7002), 5, 102.2, 110.0)
    _, findings = call_findings.analyze(result_of(messages + bye_at(20, 110.0), [other_call]))
    assert codes(findings) == []
    _, findings = call_findings.analyze(result_of(answered() + bye_at(20, 110.0), [other_call]))
    assert codes(findings) == ["RTP_MISSING"]


def test_a_switch_to_t38_ends_the_rtp_that_is_due():
    # The audio stream is replaced by an image/udptl one (fax): RTP was due
    # only for the half second before the re-INVITE.
    fax = "v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=image 4002 udptl t38"
    reinvite = request("INVITE", 2, 5, 102.6, to_tag="b", branch="z9hG4bKfax", body=fax)
    ok = response(200, "OK", reinvite, 6, 102.7, body=fax.replace("10.0.0.1", "10.0.0.2"))
    _, findings = call_findings.analyze(result_of(answered() + [reinvite, ok] + bye_at(20, 130.0),
                                                  [rtp(("10.9.9.1", 7000), ("10.9.9.2", 7002), 5, 102.2, 110.0)]))
    assert codes(findings) == []


def test_a_refused_reinvite_leaves_the_media_where_it_was():
    move = request("INVITE", 2, 5, 104.0, to_tag="b", branch="z9hG4bKmove", body=sdp_body("10.0.0.9", 4000))
    refused = response(488, "Not Acceptable Here", move, 6, 104.1)
    streams = [rtp(CALLEE_MEDIA, CALLER_MEDIA, 7, 102.2, 110.0), rtp(CALLER_MEDIA, CALLEE_MEDIA, 8, 102.2, 110.0),
               rtp(CALLEE_MEDIA, ("10.0.0.9", 4000), 9, 105.0, 110.0)]
    (row,), findings = call_findings.analyze(result_of(answered() + [move, refused] + bye_at(20, 110.0), streams))
    # The refused offer named 10.0.0.9 in vain: the stream sent there is the
    # callee's (its source is the callee's SDP in force, frame 2), and
    # nothing is missing at the addresses still in force.
    assert [(m["dst"], m["direction"], m["sdp_frame"]) for m in row["media"]] == [
        ("10.0.0.1:4000", "callee_to_caller", 1), ("10.0.0.2:6000", "caller_to_callee", 2),
        ("10.0.0.9:4000", "callee_to_caller", 2)]
    assert codes(findings) == []


def test_early_media_matches_the_183_sdp():
    invite = request("INVITE", 1, 1, 100.0, body=sdp_body("10.0.0.1", 4000))
    progress = response(183, "Session Progress", invite, 2, 100.5, body=sdp_body("10.0.0.7", 8000, "8"))
    busy = response(486, "Busy Here", invite, 3, 104.0)
    ringback = rtp(("10.0.0.7", 8000), CALLER_MEDIA, 4, 100.6, 103.9)
    (row,), _ = call_findings.analyze(result_of([invite, progress, busy], [ringback]))
    assert [(m["direction"], m["sdp_frame"]) for m in row["media"]] == [("callee_to_caller", 1)]
    # Sent to the caller's offer (frame 1); a stream toward the 183's address matches the 183.
    back = rtp(CALLER_MEDIA, ("10.0.0.7", 8000), 5, 100.6, 103.9)
    (row,), _ = call_findings.analyze(result_of([invite, progress, busy], [back]))
    assert [(m["direction"], m["sdp_frame"]) for m in row["media"]] == [("caller_to_callee", 2)]


def test_prack_and_update_bodies_move_the_media():
    # Early offer answered reliably (183 with RSeq); the PRACK and its 200
    # move both sides to new ports, then an UPDATE after the answer moves them again.
    invite = request("INVITE", 1, 1, 100.0, body=sdp_body("10.0.0.1", 4000), extra="Supported: 100rel")
    progress = response(183, "Session Progress", invite, 2, 100.5, body=sdp_body("10.0.0.2", 6000, "8"),
                        extra="Require: 100rel\nRSeq: 1")
    prack = request("PRACK", 2, 3, 100.6, to_tag="b", branch="z9hG4bKprack", body=sdp_body("10.0.0.1", 4010),
                    extra="RAck: 1 1 INVITE")
    prack_ok = response(200, "OK", prack, 4, 100.7, body=sdp_body("10.0.0.2", 6010, "8"))
    ok = response(200, "OK", invite, 5, 102.0)
    ack = request("ACK", 1, 6, 102.1, to_tag="b", branch="z9hG4bKack")
    update = request("UPDATE", 3, 7, 105.0, to_tag="b", branch="z9hG4bKupdate", body=sdp_body("10.0.0.1", 4020))
    update_ok = response(200, "OK", update, 8, 105.1, body=sdp_body("10.0.0.2", 6020, "8"))
    streams = [rtp(("10.0.0.2", 6010), ("10.0.0.1", 4010), 10, 102.2, 104.9),
               rtp(("10.0.0.1", 4010), ("10.0.0.2", 6010), 11, 102.2, 104.9),
               rtp(("10.0.0.2", 6020), ("10.0.0.1", 4020), 12, 105.2, 110.0),
               rtp(("10.0.0.1", 4020), ("10.0.0.2", 6020), 13, 105.2, 110.0)]
    messages = [invite, progress, prack, prack_ok, ok, ack, update, update_ok] + bye_at(20, 110.0)
    (row,), findings = call_findings.analyze(result_of(messages, streams))
    assert [(m["dst"], m["direction"], m["sdp_frame"]) for m in row["media"]] == [
        ("10.0.0.1:4010", "callee_to_caller", 3), ("10.0.0.2:6010", "caller_to_callee", 4),
        ("10.0.0.1:4020", "callee_to_caller", 7), ("10.0.0.2:6020", "caller_to_callee", 8)]
    assert codes(findings) == []


# ---------------------------------------------------------------- legs of one call


def dialog(call_id, frame, time, src, dst, media, extra="", number="2000", from_user="alice"):
    """An answered dialog: INVITE at `time`, 200 one second later, ACK; BYE at time + 10."""
    def sip(text, n, t, a, b, body=""):
        return message(text, n, t, a, b, body)
    head = f"""From: <sip:{from_user}@example.com>;tag=f{frame}
Call-ID: {call_id}"""
    invite = sip(f"""INVITE sip:{number}@{dst[0]} SIP/2.0
Via: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bK{frame}i
{head}
To: <sip:{number}@example.com>
CSeq: 1 INVITE
{extra}""".strip(), frame, time, src, dst, sdp_body(*media[0]))
    ok = sip(f"""SIP/2.0 200 OK
Via: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bK{frame}i
{head}
To: <sip:{number}@example.com>;tag=t{frame}
CSeq: 1 INVITE""", frame + 1, time + 1, dst, src, sdp_body(*media[1]))
    bye = sip(f"""BYE sip:{number}@{dst[0]} SIP/2.0
Via: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bK{frame}b
{head}
To: <sip:{number}@example.com>;tag=t{frame}
CSeq: 2 BYE""", frame + 2, time + 10, src, dst)
    return [invite, ok, bye]


PHONE_A, PBX, PHONE_B = ("10.0.0.1", 5060), ("10.0.0.5", 5060), ("10.0.0.2", 5060)


def groups_of(messages, streams=()):
    rows, _ = call_findings.analyze(result_of(sorted(messages, key=lambda m: m.frame), streams))
    from sipdiag.analysis.call_groups import summary
    return summary(rows), rows


def test_an_x_header_naming_the_other_leg_links_them():
    leg1 = dialog("in-1", 1, 100.0, PHONE_A, PBX, [("10.0.0.1", 4000), ("10.0.0.5", 30000)])
    leg2 = dialog("out-1", 10, 100.1, PBX, PHONE_B, [("10.0.0.5", 30002), ("10.0.0.2", 6000)],
                  extra="X-Orig-Call-ID: in-1", number="2001")
    groups, rows = groups_of(leg1 + leg2)
    assert groups == [{"id": "G1", "calls": ["in-1", "out-1"], "correlated_by": "header"}]
    assert rows[0]["group_links"] == [{"call_id": "out-1", "by": "header", "evidence": "x-orig-call-id: in-1"}]


def test_a_shared_icid_links_the_legs():
    pcv = "P-Charging-Vector: icid-value=\"AyretyU0dm+6O2IrT5tAFrbHLso=\";icid-generated-at=10.0.0.5"
    leg1 = dialog("in-1", 1, 100.0, PHONE_A, PBX, [("10.0.0.1", 4000), ("10.0.0.5", 30000)], extra=pcv)
    leg2 = dialog("out-1", 10, 130.0, PBX, PHONE_B, [("10.0.0.5", 30002), ("10.0.0.2", 6000)], extra=pcv,
                  number="2001")
    groups, _ = groups_of(leg1 + leg2)
    assert groups == [{"id": "G1", "calls": ["in-1", "out-1"], "correlated_by": "icid"}]


def test_time_and_numbers_link_a_pbx_that_anchors_the_media():
    # No correlation header, media relayed by the PBX (no shared address):
    # the PBX dials out for the same number while the first INVITE waits.
    leg1 = dialog("in-1", 1, 100.0, PHONE_A, PBX, [("10.0.0.1", 4000), ("10.0.0.5", 30000)], number="+14155550199")
    leg2 = dialog("out-1", 10, 100.05, PBX, PHONE_B, [("10.0.0.5", 30002), ("10.0.0.2", 6000)], number="4155550199")
    groups, rows = groups_of(leg1 + leg2)
    assert groups == [{"id": "G1", "calls": ["in-1", "out-1"], "correlated_by": "time_numbers"}]
    assert rows[1]["group_links"][0]["evidence"] == (
        "10.0.0.5 sent the second INVITE 0.050 s after receiving the first, before its final response; "
        "both for 4155550199")


def test_shared_media_links_direct_media_legs_and_the_stream_belongs_to_both():
    leg1 = dialog("in-1", 1, 100.0, PHONE_A, PBX, [("10.0.0.1", 4000), ("10.0.0.2", 6000)], number="2000")
    leg2 = dialog("out-1", 10, 100.2, PBX, PHONE_B, [("10.0.0.1", 4000), ("10.0.0.2", 6000)], number="3000",
                  from_user="pbx")
    direct = rtp(("10.0.0.1", 4000), ("10.0.0.2", 6000), 20, 101.5, 109.0)
    groups, rows = groups_of(leg1 + leg2, [direct])
    assert groups == [{"id": "G1", "calls": ["in-1", "out-1"], "correlated_by": "media"}]
    assert [[m["sdp_frame"] for m in row["media"]] for row in rows] == [[2], [11]]


def test_consecutive_calls_of_one_phone_are_not_one_call():
    # Same phone, same RTP port, same number, one after the other.
    first = dialog("c-1", 1, 100.0, PHONE_A, PBX, [("10.0.0.1", 4000), ("10.0.0.5", 30000)])
    second = dialog("c-2", 10, 120.0, PHONE_A, PBX, [("10.0.0.1", 4000), ("10.0.0.5", 30000)])
    groups, rows = groups_of(first + second)
    assert groups == [{"id": "G1", "calls": ["c-1"], "correlated_by": None},
                      {"id": "G2", "calls": ["c-2"], "correlated_by": None}]
    assert [row["group_links"] for row in rows] == [[], []]


# ---------------------------------------------------------------- the existing fixtures still caught


@pytest.mark.parametrize("name, code, severity", [
    ("call_one_way_rtp_private_sdp", "RTP_ONE_WAY", "error"),
    ("call_no_ack", "RTP_MISSING", "warning"),   # no RTP in the capture at all
])
def test_one_way_and_missing_media_are_still_found(fixtures_dir, name, code, severity):
    _, findings = call_findings.analyze(result_for_path(fixtures_dir / "calls" / f"{name}.pcap"))
    assert [(f.code, f.severity) for f in findings if f.code.startswith("RTP_")] == [(code, severity)]
