"""Call findings: what a support engineer reads about each call.

The CALL_* / SDP_PRIVATE_ADDRESS / RTP_* findings (summary, explanation, next
steps, frames), built from the calls and report rows that calls.py assembles.
`analyze` runs both, and call_groups.py between them (each row learns which
call its dialog is a leg of): calls.py never needs to know how its calls are
judged.
"""

from __future__ import annotations

from ..model import CaptureResult, SipMessage, hostport
from ..protocols.sip import uri_parts
from . import call_groups, network_path
from .calls import Call, calls_with_rows, offer_answer
from .findings import Finding, call_subject, counted
from .media import CALLEE_TO_CALLER, CALLER_TO_CALLEE, media_address
from .transaction import transaction_key

# RFC 3261 timer B: an INVITE client transaction gives up after 64*T1 = 32 s.
INVITE_TIMEOUT = 32.0
# Without an ACK a UAS retransmits its 2xx at T1, 2*T1, 4*T1...: a capture
# running this long after a 2xx would show the ACK or a retransmission.
ACK_WAIT = 4.0
# An answered call shorter than this may end before any RTP flows.
MIN_MEDIA_SECONDS = 1.0
# Final responses that are the callee's choice (busy, declined), not a fault.
CALLEE_CHOICE = frozenset({486, 600, 603})
# Encodings that are not voice: sharing only these is still a codec mismatch.
_NON_VOICE = frozenset({"telephone-event", "cn", "comfort-noise"})

# Plain-words meaning of each failure status, from the caller's point of view.
_STATUS_MEANING = {
    401: ("the called side demanded credentials and the caller did not retry with valid ones",
          ["Check the caller's SIP username/password for outbound calls."]),
    403: ("the server refused the call: the caller is not allowed to call this number "
          "(barred destination, no credit, IP not trusted or wrong credentials)",
          ["Check the caller's account permissions and dial plan on the server."]),
    404: ("the callee's address is unknown to the server: wrong number or URI, or a "
          "domain the server does not serve",
          ["Check the dialled number/URI and the server's dial plan or routing for it."]),
    407: ("the proxy demanded credentials and the caller did not retry with valid ones",
          ["Check the caller's SIP username/password for outbound calls."]),
    408: ("nothing answered in time: the INVITE was forwarded but the next hop never "
          "responded (unregistered or unreachable callee, or a routing problem)",
          ["Check that the callee is registered and reachable from the proxy.",
           "Look at the proxy's next hop: does it receive the INVITE at all?"]),
    480: ("the callee is known but not reachable right now: not registered, offline or "
          "do-not-disturb",
          ["Check that the callee registered before the call was made."]),
    484: ("the dialled number is incomplete for the server's dial plan",
          ["Check the number format the server expects."]),
    486: ("the callee is busy with another call",
          ["Retry later, or check call-waiting / the number of lines on the callee."]),
    487: ("the INVITE was cancelled before it was answered",
          ["Nothing to fix if the caller hung up on purpose."]),
    488: ("the callee accepts none of the offered media: no common codec or an "
          "unacceptable media description",
          ["Compare the codecs offered with the callee's codec configuration."]),
    603: ("the callee declined the call", ["Nothing to fix if the callee rejected on purpose."]),
    606: ("the callee accepts none of the offered media anywhere (global codec mismatch)",
          ["Compare the codecs offered with the callee's codec configuration."]),
}
_CLASS_MEANING = {
    3: ("the call was redirected to another address and the caller did not follow it",
        ["Check the Contact of the 3xx and whether the caller should follow redirects."]),
    4: ("the request was refused by the called side or a proxy",
        ["Read the reason phrase and any Warning header for the cause."]),
    5: ("a server failed or is overloaded (5xx): the problem is on the server side, not the caller's",
        ["Check the server's logs and load; 503 often means no route or an overloaded trunk."]),
    6: ("a global failure (6xx): the callee side refuses the call everywhere",
        ["Check with the callee's provider."]),
}


def analyze(result: CaptureResult) -> tuple[list[dict], list[Finding]]:
    """The calls' report rows and every finding about them."""
    rows, findings = [], []
    calls_rows = calls_with_rows(result)
    call_groups.label_rows(calls_rows)
    for call, row in calls_rows:
        rows.append(row)
        findings.extend(call_findings(call, row, result))
    return rows, findings


def call_findings(call: Call, row: dict, result: CaptureResult) -> list[Finding]:
    findings = []
    outcome = row["outcome"]
    if outcome in ("busy", "rejected", "redirected") and row["final_status"] >= 400:
        findings.append(_call_failed(call, row))
    findings.extend(_codec_mismatch(call, row))
    if outcome == "no_response":
        findings.append(_no_response(call, result))
    findings.extend(_no_ack(call, result))
    findings.extend(_cancel_findings(call))
    findings.extend(_private_addresses(call))
    findings.extend(_rtp_findings(call, row, result))
    subject = call_subject(call.call_id, row["from_uri"], row["to_uri"])
    for finding in findings:
        finding.subject = subject
    return findings


def _call_failed(call: Call, row: dict) -> Finding:
    status = row["final_status"]
    final = call.caller_leg.final
    meaning, steps = _STATUS_MEANING.get(status) or _CLASS_MEANING[status // 100]
    explanation = f"The INVITE from {row['caller']} to {row['to_uri']} was answered {status} {final.reason or ''}: {meaning}."
    downstream = [leg for leg in call.legs[1:] if leg.final is None]
    if status == 408 and downstream:
        silent = downstream[-1]
        explanation += (f" The proxy {silent.caller} forwarded the INVITE to {silent.callee}, which never "
                        f"answered ({len(silent.last_invite.requests)} copies sent).")
    warning = final.header("warning")
    if warning:
        explanation += f" Warning: {warning}."
    return Finding(
        "CALL_FAILED", "busy_or_declined" if status in CALLEE_CHOICE else "refused",
        f"failed with {status} {final.reason or ''}".strip(),
        explanation, list(steps), [m.frame for t in call.caller_leg.invites for m in t.requests[:1] + t.responses],
        call_id=call.call_id, status=status, links={("final_response", final.frame)},
        cause=f"Calls failed with {status} {final.reason or ''}".strip(),
    )


def _voice(codecs: list[str]) -> set[str]:
    return {c.lower() for c in codecs} - _NON_VOICE


def _codec_mismatch(call: Call, row: dict) -> list[Finding]:
    offered, answered = row["codecs_offered"], row["codecs_answered"]
    final = call.caller_leg.final
    status = final.status if final else None
    if status in (488, 606):
        warning = final.header("warning")
        reason = f"the callee answered {status} {final.reason or ''}".strip()
        if warning:
            reason += f" (Warning: {warning})"
        frames = [final.frame]
        links = {("final_response", final.frame)}
    elif offered and answered and not _voice(offered) & _voice(answered):
        reason = "the answer lists no voice codec that the offer contained"
        frames = [m.frame for m in offer_answer(call) if m]
        links = set()
    else:
        return []
    return [Finding(
        "CALL_CODEC_MISMATCH", "no_common_codec",
        f"No common codec: offered {', '.join(offered) or 'none'}; answered {', '.join(answered) or 'none'}",
        f"The caller offered {', '.join(offered) or 'no codec'} and {reason}. The two sides have no audio "
        "codec in common, so no media can flow. A proxy or SBC may also have removed codecs from the offer.",
        ["Enable a common codec (PCMU/PCMA are supported almost everywhere) on both sides.",
         "Compare the SDP leaving the caller with the SDP reaching the callee for stripped codecs."],
        frames, call_id=call.call_id, status=status, links=links,
        details={"offered": offered, "answered": answered, "warning": final.header("warning") if final else None},
    )]


def _no_response(call: Call, result: CaptureResult) -> Finding:
    leg = call.caller_leg
    requests = leg.last_invite.requests
    invite = requests[0]
    waited = requests[-1].time - invite.time
    clues = network_path.path_clues(result, invite.dst_ip, invite.dst_port)
    explanation = (
        f"{leg.caller} sent the INVITE {counted(len(requests), 'time')} over {waited:.1f} s and nothing came back from "
        f"{leg.callee}, not even 100 Trying. Over UDP the caller retransmits at doubling intervals "
        f"(timer A, from 0.5 s) and gives up after {INVITE_TIMEOUT:.0f} s (timer B)."
    )
    if clues:
        explanation += " The capture also shows: " + "; ".join(clue.text for clue in clues) + "."
    return Finding(
        "CALL_NO_RESPONSE", "no_response", f"INVITE to {leg.callee} got no response",
        explanation,
        ["Check that the destination address and port are right and the server is running.",
         "Check firewalls between caller and server for SIP (UDP/TCP 5060, TLS 5061).",
         "If the capture was taken at the caller, check whether the INVITE leaves the network at all."],
        [m.frame for m in requests] + [f for clue in clues for f in clue.frames], call_id=call.call_id,
        details={"invites_sent": len(requests), "seconds": round(waited, 3)},
        links={("destination", hostport(invite.dst_ip, invite.dst_port))},
    )


def _no_ack(call: Call, result: CaptureResult) -> list[Finding]:
    findings = []
    capture_end = result.capture.last_time or 0.0
    for leg in call.legs:
        for transaction in leg.invites:
            oks = [r for r in transaction.responses if r.status and 200 <= r.status < 300]
            if not oks:
                continue
            acks = [m for m in call.requests("ACK") if m.cseq == oks[0].cseq]
            # Through a proxy every hop has its ACK: prefer the one back to whoever sent the 200.
            ack = next((m for m in acks if m.dst_ip == oks[0].src_ip), acks[0] if acks else None)
            acked = ack is not None
            retransmitted = len(oks) > 1
            if acked and not retransmitted:
                continue
            if not acked and not retransmitted and capture_end - oks[0].time < ACK_WAIT:
                continue  # the capture stops too soon to tell
            copies = len(oks) - 1
            evidence = dict(frames=[r.frame for r in oks] + ([ack.frame] if ack else []), call_id=call.call_id, status=oks[0].status,
                            details={"ok_copies": len(oks), "acked": acked})
            if acked:
                # The ACK came, only late: the dialog survives, but a slow or
                # lossy ACK path is worth knowing about before it gets worse.
                findings.append(Finding(
                    "CALL_NO_ACK", "late_ack",
                    f"200 OK from {leg.callee} was sent {copies + 1} times before the ACK arrived",
                    f"{leg.callee} answered the INVITE from {leg.caller} and repeated its 200 OK "
                    f"{counted(copies, 'time')} (it does so every 0.5 s, 1 s, 2 s... until an ACK arrives). "
                    "The ACK did come, so the call stands, but the first copies went unacknowledged: the caller "
                    "answered slowly, or the ACK or the first 200 OK was lost on the way.",
                    ["Compare the time of the first 200 OK and of the ACK in the capture.",
                     "If this repeats on every call, check for packet loss and for a slow Record-Route path."],
                    cause=f"200 OK from {leg.callee} repeated before the ACK arrived", **evidence,
                ))
                continue
            what = f"was retransmitted {counted(copies, 'time')}" if retransmitted else "was never acknowledged"
            findings.append(Finding(
                "CALL_NO_ACK", "no_ack", f"200 OK from {leg.callee} {what}, no ACK seen",
                f"{leg.callee} answered the INVITE from {leg.caller} but its 200 OK {what}. The caller must "
                "confirm a 2xx with an ACK sent to the Contact of the 200 OK (via the Record-Route path). When the "
                "ACK does not arrive, the callee repeats the 200 and hangs up after 32 s (timer H). Typical causes: "
                "a private or unreachable Contact address (NAT), a missing or wrong Record-Route on a proxy, or a "
                "firewall dropping the ACK.",
                ["Check the Contact header of the 200 OK: is that address reachable from the caller?",
                 "Check Record-Route handling on proxies between the two sides.",
                 "Calls dropping after about 32 s are the usual symptom."],
                cause=f"200 OK from {leg.callee} not acknowledged", links={("contact", call.call_id)}, **evidence,
            ))
    return findings


def _cancel_findings(call: Call) -> list[Finding]:
    cancels = [m for m in call.requests("CANCEL") if m.frame not in {r.frame for r in call.retransmissions}]
    if not cancels:
        return []
    cancel = cancels[0]
    answer = call.caller_leg.answer
    if answer is not None:
        return [Finding(
            "CALL_CANCEL_RACE", "answered_anyway", "CANCEL crossed the 200 OK: the call was answered anyway",
            f"The caller sent CANCEL (frame {cancel.frame}) but the callee's 200 OK (frame {answer.frame}) was "
            "already on its way. A CANCEL has no effect on an answered INVITE: the caller must ACK the 200 and end "
            "the call with BYE, otherwise the callee keeps a call up that nobody hears.",
            ["Check that the caller sent ACK and BYE after the 200 OK.",
             "Frequent races suggest a long answer delay or a slow path between the two sides."],
            [cancel.frame, answer.frame], call_id=call.call_id,
        )]
    replies = call.transactions[transaction_key(cancel)].responses
    if any(r.status == 200 for r in replies):
        return []
    copies = call.transactions[transaction_key(cancel)].requests
    got = f"got {replies[0].status} {replies[0].reason or ''}".strip() if replies else "got no answer"
    return [Finding(
        "CALL_CANCEL_UNANSWERED", "not_confirmed", f"CANCEL to {cancel.dst} {got}",
        f"The caller gave up on the call and sent CANCEL {counted(len(copies), 'time')}, but it {got} instead of 200 OK. "
        "The called side either never received the CANCEL or no longer knows the INVITE it cancels, so the "
        "callee may keep ringing until its own timer expires.",
        ["Check that the CANCEL takes the same path (same Via/port) as the INVITE it cancels.",
         "Check the server for overload or a routing problem toward the callee."],
        [m.frame for m in copies + replies], call_id=call.call_id,
    )]


def _contact_host(message: SipMessage) -> str | None:
    return uri_parts(message.contacts[0].uri)[1] if message.contacts and message.contacts[0].uri != "*" else None


def _private_addresses(call: Call) -> list[Finding]:
    """SDP or Contact addresses nobody outside the sender's network can reach."""
    seen: dict[tuple[str, str], dict] = {}
    received = _via_received(call)
    for message in call.messages:
        # Inside one private network a private address is normal; it matters when
        # the message reached us from a routable address or a server saw NAT.
        if network_path.unroutable_kind(message.src_ip) and not received:
            continue
        where = []
        if message.sdp is not None:
            for media in message.sdp.media:
                where.append(("SDP c=", media_address(message.sdp, media)))
        where.append(("Contact", _contact_host(message)))
        for place, address in where:
            kind = network_path.unroutable_kind(address)
            if kind is None or address == message.src_ip:
                continue
            entry = seen.setdefault((place, address), {"kind": kind, "sender": message.src_ip, "frames": []})
            entry["frames"].append(message.frame)
    if not seen:
        return []
    sdp_private = {address for place, address in seen if place == "SDP c="}
    contact_private = {address for place, address in seen if place == "Contact"}
    lines = [f"{place} {address} is {entry['kind']} but the message came from {entry['sender']}"
             for (place, address), entry in seen.items()]
    explanation = ("; ".join(lines) + ". The far end cannot send to that address, so media (or in-dialog requests "
                   "such as ACK and BYE) goes nowhere: one-way or no audio, calls dropping after 32 s.")
    if received:
        explanation += " The server also noted the real source in Via: " + ", ".join(received) + "."
    alg = bool(sdp_private) != bool(contact_private) and bool(contact_private or _contact_matches_source(call))
    if alg:
        explanation += (" Only some addresses were rewritten to the public one: a SIP ALG in a router may be "
                        "editing the messages inconsistently.")
    return [Finding(
        "SDP_PRIVATE_ADDRESS", "private_behind_nat",
        "Private address in SDP/Contact behind NAT: " + ", ".join(sorted({a for _, a in seen})),
        explanation,
        ["Configure the phone/PBX with its public address (external IP, STUN) or enable NAT handling "
         "(comedia/symmetric RTP, rport, SDP rewriting) on the server or SBC.",
         "If a router with SIP ALG is in the path, try turning the ALG off."],
        [f for entry in seen.values() for f in entry["frames"]], call_id=call.call_id,
        cause="Private address in SDP/Contact behind NAT",
        # A private SDP address explains the call's missing media, a private Contact its missing ACK.
        links={(kind, call.call_id) for kind, private in (("media", sdp_private), ("contact", contact_private)) if private},
        details={"addresses": sorted({a for _, a in seen}), "via_received": received, "possible_sip_alg": alg},
    )]


def _via_received(call: Call) -> list[str]:
    """Via received=/rport values that differ from the sent-by host: the server saw NAT."""
    notes = []
    for message in call.messages:
        for via in message.vias[:1]:
            if via.received and via.received != via.host:
                note = f"{via.host} seen as {via.received}" + (f":{via.rport}" if via.rport else "")
                if note not in notes:
                    notes.append(note)
    return notes


def _contact_matches_source(call: Call) -> bool:
    invite = call.first_invite
    return _contact_host(invite) == invite.src_ip


def _expected_media(call: Call, start: float, end: float) -> dict[str, list[tuple[float, float]]]:
    """When each direction should carry RTP between the answer and the end of
    the dialog, by the SDP in force; a dialog whose SDP the capture does not
    show is expected to carry media both ways all along."""
    if not call.timeline.announcements:
        return {CALLER_TO_CALLEE: [(start, end)], CALLEE_TO_CALLER: [(start, end)]}
    return call.timeline.expected(start, end)


def _rtp_findings(call: Call, row: dict, result: CaptureResult) -> list[Finding]:
    if row["outcome"] != "answered":
        return []
    findings = []
    ok = call.caller_leg.answer
    media = row["media"]
    expected = _expected_media(call, ok.time, call.timeline.end)
    # A direction counts as present when its RTP flowed while the SDP
    # expected it; it is missing when the SDP expected it long enough.
    present = {direction for direction, spans in expected.items()
               if any(m.direction == direction
                      and any(a <= m.stream.last_time and m.stream.first_time <= b for a, b in spans)
                      for m in call.media)}
    missing = {direction for direction, spans in expected.items()
               if sum(b - a for a, b in spans) >= MIN_MEDIA_SECONDS} - present
    if missing and not present and not result.rtp_streams:
        # No RTP anywhere: most likely a signalling-only capture, not a media failure.
        findings.append(Finding(
            "RTP_MISSING", "signalling_only_capture", "Answered call, but the capture holds no RTP at all",
            "The call was answered, yet the capture contains no RTP stream of any call. Captures are often "
            "filtered to signalling (a SIP port filter, an SBC or HEP signalling trace), so this alone does not "
            "show that media failed.",
            ["If the complaint is about audio, capture again without a port filter on the media path.",
             "Check the SDP addresses and ports of offer and answer: that is where the media should flow."],
            [ok.frame], call_id=call.call_id,
        ))
    elif missing and not present:
        elsewhere = (" Its only RTP flowed outside the time its SDP expected media (before the answer, or while "
                     "on hold)." if media else "")
        findings.append(Finding(
            "RTP_MISSING", "no_rtp_for_call",
            "Answered call without RTP while its SDP expected media" if media
            else "Answered call without any RTP in the capture",
            "The call was answered but no RTP packets of it appear in the capture, in either direction, at the "
            "addresses its SDP in force announced (re-INVITEs and UPDATEs included)." + elsewhere + " "
            "Either media is blocked (firewall, NAT with a private SDP address) or the capture point does not "
            "see the media path (media relayed elsewhere, or filtered out of the capture).",
            ["Check the SDP addresses and ports of offer and answer and whether the capture point is on that path.",
             "Check firewalls for the RTP port range (UDP), both directions."],
            [ok.frame], call_id=call.call_id, links={("media", call.call_id)},
        ))
    elif missing:
        (seen,) = present
        (absent,) = missing
        findings.append(Finding(
            "RTP_ONE_WAY", "one_direction", f"One-way audio: RTP only {seen.replace('_', ' ')}",
            f"RTP flows {seen.replace('_', ' ')} but nothing {absent.replace('_', ' ')} appears in the "
            "capture while the SDP in force expected it. Typical causes: one side announced an address the other "
            "cannot reach (private SDP address behind NAT), a firewall allowing media in one direction only, or "
            "asymmetric NAT.",
            ["Check the SDP c= address and port each side announced.",
             "Allow the RTP port range in both directions on firewalls; consider symmetric RTP/comedia on the server."],
            [ok.frame] + [m["first_frame"] for m in media], call_id=call.call_id,
            details={"direction_seen": seen}, links={("media", call.call_id)},
        ))
    findings.extend(_port_mismatch(call))
    return findings


def _port_mismatch(call: Call) -> list[Finding]:
    """RTP sent to the right host but a port nobody announced: NAT or a firewall changed it."""
    announced = call.timeline.endpoints()
    hosts = {ip for ip, _ in announced}
    wrong = [m.stream for m in call.media
             if (m.stream.dst_ip, m.stream.dst_port) not in announced and m.stream.dst_ip in hosts]
    if not wrong:
        return []
    return [Finding(
        "RTP_PORT_MISMATCH", "unannounced_port", "RTP sent to a port the SDP did not announce",
        "; ".join(f"{s.src} sends to {s.dst}" for s in wrong)
        + f", while the SDP announced {', '.join(sorted(hostport(*a) for a in announced))}. "
        "A NAT device or firewall rewrote the port, or a side ignores the SDP (symmetric RTP sending back to "
        "the port packets came from). Packets to an unannounced port are often dropped.",
        ["Check NAT port mappings and firewall pinholes for the RTP ports.",
         "Check whether symmetric RTP/comedia is enabled where NAT is involved."],
        [s.first_frame for s in wrong], call_id=call.call_id,
    )]
