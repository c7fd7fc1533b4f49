"""Calls: what happened to each INVITE dialog, its media, and why it failed.

A *call* is every message sharing the Call-ID of an initial INVITE (one without
a To tag). A proxied call shows several *legs* in one capture: the same
Call-ID, one INVITE per hop. A *transaction* is a request, its retransmissions
and its responses; the top Via branch identifies it on each hop, so the 200 a
proxy forwards upstream is not confused with the one it received. The outcome
is judged on the caller's leg, where the user's experience is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import pathdiag, sdp
from .sip import uri_parts
from .findings import Finding
from .model import CaptureResult, RtpStream, SdpMedia, SessionDescription, SipMessage, hostport
from .mos import estimate_mos
from .transaction import Transaction

# RFC 3261 timer B: an INVITE client transaction gives up after 64*T1 = 32 s.
INVITE_TIMEOUT = 32.0
# Without an ACK a UAS retransmits its 2xx at T1, 2*T1, 4*T1...: a capture
# running this long after a 2xx would show the ACK or a retransmission.
ACK_WAIT = 4.0
# An answered call shorter than this may end before any RTP flows.
MIN_MEDIA_SECONDS = 1.0
# Encodings that are not voice: sharing only these is still a codec mismatch.
_NON_VOICE = frozenset({"telephone-event", "cn", "comfort-noise"})
_HOLD_DIRECTIONS = frozenset({"sendonly", "inactive"})

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


@dataclass
class Leg:
    """One hop of the call: the initial INVITEs sent from one address to another."""

    caller: str
    callee: str
    invites: list[Transaction] = field(default_factory=list)

    @property
    def last_invite(self) -> Transaction:
        return self.invites[-1]

    @property
    def answer(self) -> SipMessage | None:
        return next((t.final for t in self.invites if t.final and t.final.status < 300), None)

    @property
    def final(self) -> SipMessage | None:
        return self.answer or self.last_invite.final


@dataclass
class Call:
    call_id: str
    messages: list[SipMessage]
    transactions: dict[tuple, Transaction]
    legs: list[Leg]
    retransmissions: list[SipMessage]
    streams: list[RtpStream] = field(default_factory=list)

    @property
    def first_invite(self) -> SipMessage:
        return self.legs[0].invites[0].request

    @property
    def caller_leg(self) -> Leg:
        return self.legs[0]

    def requests(self, method: str) -> list[SipMessage]:
        return [m for m in self.messages if m.method == method]


def _transaction_key(message: SipMessage) -> tuple:
    """Same key for a request, its retransmissions and its responses on one hop."""
    branch = message.vias[0].branch if message.vias else None
    method = message.method or message.cseq_method
    if branch:
        return (branch, method)
    # RFC 2543 peers have no branch: fall back to CSeq and the address pair.
    ends = tuple(sorted((message.src, message.dst)))
    return (message.cseq, method, ends)


def _is_initial_invite(message: SipMessage) -> bool:
    return message.method == "INVITE" and not (message.to_addr and message.to_addr.params.get("tag"))


def build_calls(result: CaptureResult) -> list[Call]:
    by_call_id: dict[str, list[SipMessage]] = {}
    for message in result.sip_messages:
        if message.call_id:
            by_call_id.setdefault(message.call_id, []).append(message)
    calls = []
    for call_id, messages in by_call_id.items():
        if any(_is_initial_invite(m) for m in messages):
            calls.append(_build_call(call_id, messages))
    calls.sort(key=lambda call: call.first_invite.frame)
    return calls


def _build_call(call_id: str, messages: list[SipMessage]) -> Call:
    transactions: dict[tuple, Transaction] = {}
    retransmissions = []
    legs: dict[tuple[str, str], Leg] = {}
    for message in messages:
        transaction = transactions.setdefault(_transaction_key(message), Transaction())
        if message.is_request:
            if transaction.requests:
                retransmissions.append(message)
            elif _is_initial_invite(message):
                leg = legs.setdefault((message.src, message.dst), Leg(message.src, message.dst))
                leg.invites.append(transaction)
            transaction.requests.append(message)
        else:
            if any(r.status == message.status and r.cseq == message.cseq for r in transaction.responses):
                retransmissions.append(message)
            transaction.responses.append(message)
    return Call(call_id, messages, transactions, list(legs.values()), retransmissions)


# ---------------------------------------------------------------- outcome


def _outcome(call: Call) -> str:
    leg = call.caller_leg
    final = leg.final
    cancelled = bool(call.requests("CANCEL"))
    if final is None:
        if cancelled:
            return "cancelled"
        return "no_answer" if any(t.provisional for t in leg.invites) else "no_response"
    status = final.status
    if status < 300:
        return "answered"
    if status < 400:
        return "redirected"
    if status in (486, 600):
        return "busy"
    if status == 487 and cancelled:
        return "cancelled"
    return "rejected"


# ---------------------------------------------------------------- SDP


def media_address(description: SessionDescription, media: SdpMedia) -> str | None:
    return media.connection or description.connection


def media_direction(description: SessionDescription, media: SdpMedia) -> str:
    return media.direction or description.direction or "sendrecv"


def _codecs(description: SessionDescription | None) -> list[str]:
    names: list[str] = []
    for media in description.media if description else []:
        if media.port:
            names.extend(n for n in sdp.codec_names(media) if n not in names)
    return names


def _offer_answer(call: Call) -> tuple[SipMessage | None, SipMessage | None]:
    """The SDP offer and answer of the caller's leg (early or late offer)."""
    leg = call.caller_leg
    invite = leg.last_invite.request if leg.answer is None else _answered_invite(leg)
    transaction = next(t for t in leg.invites if t.request is invite)
    responses_with_sdp = [r for r in transaction.responses if r.sdp is not None and r.status < 300]
    if invite.sdp is not None:
        return invite, (responses_with_sdp[0] if responses_with_sdp else None)
    # Late offer (RFC 3261 13.2.1): the 2xx offers, the ACK answers.
    offer = responses_with_sdp[-1] if responses_with_sdp else None
    acks = [m for m in call.requests("ACK") if m.cseq == invite.cseq and m.sdp is not None]
    return offer, (acks[0] if acks else None)


def _answered_invite(leg: Leg) -> SipMessage:
    return next(t.request for t in leg.invites if t.final and t.final.status < 300)


def _media_addresses(message: SipMessage | None) -> set[tuple[str, int]]:
    if message is None or message.sdp is None:
        return set()
    description = message.sdp
    return {
        (address, media.port)
        for media in description.media
        if media.port and (address := media_address(description, media))
    }


# ---------------------------------------------------------------- RTP


def _call_media_sides(call: Call) -> tuple[set, set]:
    """Media addresses announced by the calling side and by the called side, on every leg."""
    calling, called = set(), set()
    for message in call.messages:
        if message.sdp is not None:
            (called if _sent_by_callee(call, message) else calling).update(_media_addresses(message))
    return calling, called


def _sent_by_callee(call: Call, message: SipMessage) -> bool:
    """Requests the callee starts carry the caller's tag in To, not in From;
    responses are sent by the side that did not start the transaction."""
    caller_tag = call.first_invite.from_addr.params.get("tag") if call.first_invite.from_addr else None
    from_tag = message.from_addr.params.get("tag") if message.from_addr else None
    started_by_caller = caller_tag is None or from_tag == caller_tag
    return started_by_caller != message.is_request


def assign_streams(calls: list[Call], streams: list[RtpStream]) -> None:
    """Give each RTP stream to the latest call that announced one of its ends before it began."""
    announced = [(call, set().union(*_call_media_sides(call))) for call in calls]
    for stream in streams:
        ends = {(stream.src_ip, stream.src_port), (stream.dst_ip, stream.dst_port)}
        owners = [call for call, addresses in announced
                  if ends & addresses and call.first_invite.time <= stream.first_time]
        if owners:
            owners[-1].streams.append(stream)


def _stream_direction(stream: RtpStream, calling: set, called: set) -> str | None:
    source, destination = (stream.src_ip, stream.src_port), (stream.dst_ip, stream.dst_port)
    if source in calling or destination in called:
        return "caller_to_callee"
    if source in called or destination in calling:
        return "callee_to_caller"
    return None


def _payload_names(call: Call) -> dict[int, str]:
    names: dict[int, str] = {}
    for message in call.messages:
        for media in message.sdp.media if message.sdp else []:
            for payload_type, name in zip(media.payload_types, sdp.codec_names(media)):
                names.setdefault(payload_type, name)
    return names


def _media_row(stream: RtpStream, direction: str | None, names: dict[int, str]) -> dict:
    main_type = max(stream.payload_types, key=stream.payload_types.get) if stream.payload_types else None
    codec = names.get(main_type) if main_type is not None else None
    return {
        "src": stream.src,
        "dst": stream.dst,
        "ssrc": f"0x{stream.ssrc:08X}",
        "direction": direction,
        "packets": stream.packets,
        "expected": stream.expected,
        "lost": stream.lost,
        "jitter_ms": round(stream.mean_jitter_ms, 3),
        "max_jitter_ms": round(stream.max_jitter_ms, 3),
        "max_gap_ms": round(stream.max_gap_ms, 3),
        "payload_types": sorted(stream.payload_types),
        "codec": codec,
        "dtmf_events": stream.dtmf_events,
        "rtcp_packets": stream.rtcp_packets,
        "first_frame": stream.first_frame,
        "last_frame": stream.last_frame,
        "first_time": stream.first_time,
        "last_time": stream.last_time,
        "mos_estimate": estimate_mos(codec, stream.expected, stream.lost, stream.mean_jitter_ms),
    }


# ---------------------------------------------------------------- timeline


def _first_bye(call: Call) -> SipMessage | None:
    byes = call.requests("BYE")
    return byes[0] if byes else None


def _dialog_events(call: Call) -> list[dict]:
    """Hold, resume and media changes from in-dialog INVITE/UPDATE offers."""
    events = []
    retransmitted = {m.frame for m in call.retransmissions}
    last_offer: dict[str, tuple] = {}  # side -> (addresses, codecs, on hold)
    for message in call.messages:
        if message.method not in ("INVITE", "UPDATE") or message.sdp is None or message.frame in retransmitted:
            continue
        description = message.sdp
        directions = {media_direction(description, m) for m in description.media if m.port}
        offer = (frozenset(_media_addresses(message)), tuple(_codecs(description)), bool(directions & _HOLD_DIRECTIONS))
        by = "callee" if _sent_by_callee(call, message) else "caller"
        before = last_offer.get(by)
        last_offer[by] = offer
        if before is None or _is_initial_invite(message):
            continue
        if offer[2] and not before[2]:
            events.append(_event(message, "hold", by, f"{by} put the call on hold ({'/'.join(sorted(directions))})"))
        elif before[2] and not offer[2]:
            events.append(_event(message, "resume", by, f"{by} resumed the call"))
        if offer[:2] != before[:2]:
            events.append(_event(message, "media_change", by, _media_change_text(before[:2], offer[:2])))
    return events


def _media_change_text(before: tuple, after: tuple) -> str:
    changes = []
    if before[0] != after[0]:
        changes.append("media address " + ", ".join(sorted(hostport(*a) for a in after[0])))
    if before[1] != after[1]:
        changes.append("codecs " + ", ".join(after[1]))
    return "mid-call change: " + "; ".join(changes)


def _event(message: SipMessage, kind: str, by: str, text: str) -> dict:
    return {"frame": message.frame, "time": message.time, "kind": kind, "by": by, "text": text}


def _hosts(call: Call) -> list[dict]:
    """Every address in the call, named by the User-Agent/Server it sent."""
    names: dict[str, str | None] = {}
    for message in call.messages:
        for address in (message.src, message.dst):
            names.setdefault(address, None)
        agent = message.header("user-agent") or message.header("server")
        if agent and not names[message.src]:
            names[message.src] = agent
    return [{"address": address, "name": name} for address, name in names.items()]


def _ms(start: SipMessage | None, end: SipMessage | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end.time - start.time) * 1000.0, 1)


def _row(call: Call, result: CaptureResult) -> dict:
    invite = call.first_invite
    leg = call.caller_leg
    offer, answer = _offer_answer(call)
    calling, called = _call_media_sides(call)
    names = _payload_names(call)
    provisional = [r for t in leg.invites for r in t.provisional if r.status >= 180]
    ok = leg.answer
    bye = _first_bye(call)
    end_time = bye.time if bye else result.capture.last_time
    media = [_media_row(s, _stream_direction(s, calling, called), names) for s in call.streams]
    return {
        "call_id": call.call_id,
        "from_uri": invite.from_uri,
        "to_uri": invite.to_uri,
        "caller": invite.src,
        "callee": invite.dst,
        "outcome": _outcome(call),
        "final_status": leg.final.status if leg.final else None,
        "final_reason": leg.final.reason if leg.final else None,
        "codecs_offered": _codecs(offer.sdp if offer else None),
        "codecs_answered": _codecs(answer.sdp if answer else None),
        "media": media,
        "frames": [m.frame for m in call.messages],
        "retransmission_frames": [m.frame for m in call.retransmissions],
        "start_time": invite.time,
        "legs": [_leg_row(each) for each in call.legs],
        "hosts": _hosts(call),
        "post_dial_delay_ms": _ms(invite, provisional[0] if provisional else None),
        "answer_time": ok.time if ok else None,
        "answer_delay_ms": _ms(invite, ok),
        "duration_s": round(end_time - ok.time, 3) if ok and end_time is not None else None,
        "ended_by": ("callee" if _sent_by_callee(call, bye) else "caller") if bye else None,
        "bye_reason": bye.header("reason") if bye else None,
        "events": _dialog_events(call),
        "mos_estimate": min((m["mos_estimate"] for m in media), default=None),
    }


def _leg_row(leg: Leg) -> dict:
    final = leg.final
    return {
        "caller": leg.caller,
        "callee": leg.callee,
        "final_status": final.status if final else None,
        "invites": len(leg.invites),
        "invite_retransmissions": sum(len(t.requests) - 1 for t in leg.invites),
    }


# ---------------------------------------------------------------- findings


def analyze(result: CaptureResult) -> tuple[list[dict], list[Finding]]:
    calls = build_calls(result)
    assign_streams(calls, result.rtp_streams)
    rows, findings = [], []
    for call in calls:
        row = _row(call, result)
        rows.append(row)
        findings.extend(_call_findings(call, row, result))
    return rows, findings


def _call_findings(call: Call, row: dict, result: CaptureResult) -> list[Finding]:
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
    findings.extend(_rtp_findings(call, row))
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
        "CALL_FAILED", "warning" if row["outcome"] == "busy" else "error",
        f"Call to {row['to_uri']} failed: {status} {final.reason or ''}".strip(),
        explanation, list(steps), [m.frame for t in call.caller_leg.invites for m in t.requests[:1] + t.responses],
        call_id=call.call_id, status=status,
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
    elif offered and answered and not _voice(offered) & _voice(answered):
        reason = "the answer lists no voice codec that the offer contained"
        frames = [m.frame for m in _offer_answer(call) if m]
    else:
        return []
    return [Finding(
        "CALL_CODEC_MISMATCH", "error",
        f"No common codec: offered {', '.join(offered) or 'none'}; answered {', '.join(answered) or 'none'}",
        f"The caller offered {', '.join(offered) or 'no codec'} and {reason}. The two sides have no audio "
        "codec in common, so no media can flow. A proxy or SBC may also have removed codecs from the offer.",
        ["Enable a common codec (PCMU/PCMA are supported almost everywhere) on both sides.",
         "Compare the SDP leaving the caller with the SDP reaching the callee for stripped codecs."],
        frames, call_id=call.call_id, status=status,
        details={"offered": offered, "answered": answered, "warning": final.header("warning") if final else None},
    )]


def _no_response(call: Call, result: CaptureResult) -> Finding:
    leg = call.caller_leg
    requests = leg.last_invite.requests
    invite = requests[0]
    waited = requests[-1].time - invite.time
    clues = pathdiag.path_clues(result, invite.dst_ip, invite.dst_port)
    explanation = (
        f"{leg.caller} sent the INVITE {len(requests)} time(s) over {waited:.1f} s and nothing came back from "
        f"{leg.callee}, not even 100 Trying. Over UDP the caller retransmits at doubling intervals "
        f"(timer A, from 0.5 s) and gives up after {INVITE_TIMEOUT:.0f} s (timer B)."
    )
    if clues:
        explanation += " The capture also shows: " + "; ".join(clue.text for clue in clues) + "."
    return Finding(
        "CALL_NO_RESPONSE", "error", f"INVITE to {leg.callee} got no response",
        explanation,
        ["Check that the destination address and port are right and the server is running.",
         "Check firewalls between caller and server for SIP (UDP/TCP 5060, TLS 5061).",
         "If the capture was taken at the caller, check whether the INVITE leaves the network at all."],
        [m.frame for m in requests] + [f for clue in clues for f in clue.frames], call_id=call.call_id,
        details={"invites_sent": len(requests), "seconds": round(waited, 3)},
    )


def _no_ack(call: Call, result: CaptureResult) -> list[Finding]:
    findings = []
    capture_end = result.capture.last_time or 0.0
    for leg in call.legs:
        for transaction in leg.invites:
            oks = [r for r in transaction.responses if r.status and 200 <= r.status < 300]
            if not oks:
                continue
            acked = any(m.cseq == oks[0].cseq for m in call.requests("ACK"))
            retransmitted = len(oks) > 1
            if acked and not retransmitted:
                continue
            if not acked and not retransmitted and capture_end - oks[0].time < ACK_WAIT:
                continue  # the capture stops too soon to tell
            what = "was retransmitted {0} times".format(len(oks) - 1) if retransmitted else "was never acknowledged"
            findings.append(Finding(
                "CALL_NO_ACK", "error", f"200 OK from {leg.callee} {what}" + ("" if acked else ", no ACK seen"),
                f"{leg.callee} answered the INVITE from {leg.caller} but its 200 OK {what}. The caller must "
                "confirm a 2xx with an ACK sent to the Contact of the 200 OK (via the Record-Route path). When the "
                "ACK does not arrive, the callee repeats the 200 and hangs up after 32 s (timer H). Typical causes: "
                "a private or unreachable Contact address (NAT), a missing or wrong Record-Route on a proxy, or a "
                "firewall dropping the ACK.",
                ["Check the Contact header of the 200 OK: is that address reachable from the caller?",
                 "Check Record-Route handling on proxies between the two sides.",
                 "Calls dropping after about 32 s are the usual symptom."],
                [r.frame for r in oks], call_id=call.call_id, status=oks[0].status,
                details={"ok_copies": len(oks), "acked": acked},
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
            "CALL_CANCEL_RACE", "warning", "CANCEL crossed the 200 OK: the call was answered anyway",
            f"The caller sent CANCEL (frame {cancel.frame}) but the callee's 200 OK (frame {answer.frame}) was "
            "already on its way. A CANCEL has no effect on an answered INVITE: the caller must ACK the 200 and end "
            "the call with BYE, otherwise the callee keeps a call up that nobody hears.",
            ["Check that the caller sent ACK and BYE after the 200 OK.",
             "Frequent races suggest a long answer delay or a slow path between the two sides."],
            [cancel.frame, answer.frame], call_id=call.call_id,
        )]
    replies = call.transactions[_transaction_key(cancel)].responses
    if any(r.status == 200 for r in replies):
        return []
    copies = call.transactions[_transaction_key(cancel)].requests
    got = f"got {replies[0].status} {replies[0].reason or ''}".strip() if replies else "got no answer"
    return [Finding(
        "CALL_CANCEL_UNANSWERED", "warning", f"CANCEL to {cancel.dst} {got}",
        f"The caller gave up on the call and sent CANCEL {len(copies)} time(s), but it {got} instead of 200 OK. "
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
        if pathdiag.unroutable_kind(message.src_ip) and not received:
            continue
        where = []
        if message.sdp is not None:
            for media in message.sdp.media:
                where.append(("SDP c=", media_address(message.sdp, media)))
        where.append(("Contact", _contact_host(message)))
        for place, address in where:
            kind = pathdiag.unroutable_kind(address)
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
        "SDP_PRIVATE_ADDRESS", "warning",
        "Private address in SDP/Contact behind NAT: " + ", ".join(sorted({a for _, a in seen})),
        explanation,
        ["Configure the phone/PBX with its public address (external IP, STUN) or enable NAT handling "
         "(comedia/symmetric RTP, rport, SDP rewriting) on the server or SBC.",
         "If a router with SIP ALG is in the path, try turning the ALG off."],
        [f for entry in seen.values() for f in entry["frames"]], call_id=call.call_id,
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


def _rtp_findings(call: Call, row: dict) -> list[Finding]:
    if row["outcome"] != "answered":
        return []
    findings = []
    ok = call.caller_leg.answer
    media = row["media"]
    long_enough = row["duration_s"] is not None and row["duration_s"] >= MIN_MEDIA_SECONDS
    if not media and long_enough:
        findings.append(Finding(
            "RTP_MISSING", "error", "Answered call without any RTP in the capture",
            "The call was answered but no RTP packets of it appear in the capture, in either direction. "
            "Either media is blocked (firewall, NAT with a private SDP address) or the capture point does not "
            "see the media path (media relayed elsewhere, or filtered out of the capture).",
            ["Check the SDP addresses and ports of offer and answer and whether the capture point is on that path.",
             "Check firewalls for the RTP port range (UDP), both directions."],
            [ok.frame], call_id=call.call_id,
        ))
    directions = {m["direction"] for m in media if m["packets"]}
    if media and len(directions - {None}) == 1:
        (present,) = directions - {None}
        missing = "callee_to_caller" if present == "caller_to_callee" else "caller_to_callee"
        findings.append(Finding(
            "RTP_ONE_WAY", "error", f"One-way audio: RTP only {present.replace('_', ' ')}",
            f"RTP flows {present.replace('_', ' ')} but nothing {missing.replace('_', ' ')} appears in the "
            "capture. Typical causes: one side announced an address the other cannot reach (private SDP address "
            "behind NAT), a firewall allowing media in one direction only, or asymmetric NAT.",
            ["Check the SDP c= address and port each side announced.",
             "Allow the RTP port range in both directions on firewalls; consider symmetric RTP/comedia on the server."],
            [ok.frame] + [m["first_frame"] for m in media], call_id=call.call_id,
            details={"direction_seen": present},
        ))
    findings.extend(_port_mismatch(call))
    return findings


def _port_mismatch(call: Call) -> list[Finding]:
    """RTP sent to the right host but a port nobody announced: NAT or a firewall changed it."""
    announced = set().union(*_call_media_sides(call))
    hosts = {ip for ip, _ in announced}
    wrong = [s for s in call.streams
             if (s.dst_ip, s.dst_port) not in announced and s.dst_ip in hosts]
    if not wrong:
        return []
    return [Finding(
        "RTP_PORT_MISMATCH", "warning", "RTP sent to a port the SDP did not announce",
        "; ".join(f"{s.src} sends to {s.dst}" for s in wrong)
        + f", while the SDP announced {', '.join(sorted(hostport(*a) for a in announced))}. "
        "A NAT device or firewall rewrote the port, or a side ignores the SDP (symmetric RTP sending back to "
        "the port packets came from). Packets to an unannounced port are often dropped.",
        ["Check NAT port mappings and firewall pinholes for the RTP ports.",
         "Check whether symmetric RTP/comedia is enabled where NAT is involved."],
        [s.first_frame for s in wrong], call_id=call.call_id,
    )]
