"""Calls: what happened to each INVITE dialog and its media.

A *call* is every message sharing the Call-ID of an initial INVITE (one without
a To tag). A proxied call shows several *legs* in one capture: the same
Call-ID, one INVITE per hop. A *transaction* is a request, its retransmissions
and its responses; the top Via branch identifies it on each hop, so the 200 a
proxy forwards upstream is not confused with the one it received. The outcome
is judged on the caller's leg, where the user's experience is. Which RTP
belongs to the call follows the SDP in force (media.py). Why a call failed
(the CALL_* / SDP_* / RTP_* findings) is in call_findings.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import CaptureResult, SessionDescription, SipMessage, hostport
from ..protocols import sdp
from .derived import once
from .media import (
    CALLEE,
    CALLER,
    MediaTimeline,
    StreamMatch,
    build_timeline,
    match_streams,
    media_address,
    media_direction,
)
from .mos import estimate_mos
from .transaction import Transaction, TransactionTable

_HOLD_DIRECTIONS = frozenset({"sendonly", "inactive"})


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
    timeline: MediaTimeline | None = None  # set by attach_media
    media: list[StreamMatch] = field(default_factory=list)

    @property
    def first_invite(self) -> SipMessage:
        return self.legs[0].invites[0].request

    @property
    def caller_leg(self) -> Leg:
        return self.legs[0]

    def requests(self, method: str) -> list[SipMessage]:
        return [m for m in self.messages if m.method == method]


def _response_identity(response: SipMessage) -> tuple:
    """Equal for a response and its retransmissions. Reliable provisionals
    (RFC 3262) repeat status and CSeq with a new RSeq; forked answers differ in
    the To tag."""
    to_tag = response.to_addr.params.get("tag") if response.to_addr else None
    return (response.status, response.cseq, to_tag, response.header("rseq"))


def _is_initial_invite(message: SipMessage) -> bool:
    return message.method == "INVITE" and not (message.to_addr and message.to_addr.params.get("tag"))


def build_calls(result: CaptureResult) -> list[Call]:
    by_call_id: dict[str, list[SipMessage]] = {}
    for message in result.sip_messages:
        if message.call_id and message.has_start_line:
            by_call_id.setdefault(message.call_id, []).append(message)
    calls = []
    for call_id, messages in by_call_id.items():
        if any(_is_initial_invite(m) for m in messages):
            calls.append(_build_call(call_id, messages))
    calls.sort(key=lambda call: call.first_invite.frame)
    return calls


def _build_call(call_id: str, messages: list[SipMessage]) -> Call:
    table = TransactionTable()
    retransmissions = []
    legs: dict[tuple[str, str], Leg] = {}
    for message in messages:
        transaction = table.add(message)
        if message.is_request:
            if transaction.requests:
                retransmissions.append(message)
            elif _is_initial_invite(message):
                leg = legs.setdefault((message.src, message.dst), Leg(message.src, message.dst))
                leg.invites.append(transaction)
            transaction.requests.append(message)
        else:
            if any(_response_identity(r) == _response_identity(message) for r in transaction.responses):
                retransmissions.append(message)
            transaction.responses.append(message)
    return Call(call_id, messages, table.transactions, list(legs.values()), retransmissions)


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


def _codecs(description: SessionDescription | None) -> list[str]:
    names: list[str] = []
    for media in description.media if description else []:
        if media.port:
            names.extend(n for n in sdp.codec_names(media) if n not in names)
    return names


def offer_answer(call: Call) -> tuple[SipMessage | None, SipMessage | None]:
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


def _sent_by_callee(call: Call, message: SipMessage) -> bool:
    """Requests the callee starts carry the caller's tag in To, not in From;
    responses are sent by the side that did not start the transaction."""
    caller_tag = call.first_invite.from_addr.params.get("tag") if call.first_invite.from_addr else None
    from_tag = message.from_addr.params.get("tag") if message.from_addr else None
    started_by_caller = caller_tag is None or from_tag == caller_tag
    return started_by_caller != message.is_request


def _dialog_end(call: Call, result: CaptureResult) -> float:
    """When the dialog's media ended: its first BYE, the final failure of
    the caller's INVITE, else the end of the capture."""
    bye = _first_bye(call)
    if bye is not None:
        return bye.time
    final = call.caller_leg.final
    if final is not None and final.status >= 300:
        return final.time
    return result.capture.last_time or call.messages[-1].time


def _announced(call: Call) -> list[tuple[SipMessage, str]]:
    """Every SDP of the dialog with the side that sent it, except offers in
    requests the other side refused (an in-dialog re-INVITE or UPDATE
    answered >= 300 leaves the session as it was)."""
    refused = {
        request.frame
        for transaction in call.transactions.values()
        if transaction.final is not None and transaction.final.status >= 300
        for request in transaction.requests
        if request.to_addr is not None and request.to_addr.params.get("tag")
    }
    return [(m, CALLEE if _sent_by_callee(call, m) else CALLER)
            for m in call.messages if m.sdp is not None and m.frame not in refused]


def attach_media(calls: list[Call], result: CaptureResult) -> None:
    """Each call's SDP timeline and the RTP streams it names (a stream may
    belong to several calls: the legs of one call through a B2BUA)."""
    for call in calls:
        call.timeline = build_timeline(_announced(call), _dialog_end(call, result))
    for call, media in zip(calls, match_streams([call.timeline for call in calls], result.rtp_streams)):
        call.media = media


def _payload_names(call: Call) -> dict[int, str]:
    names: dict[int, str] = {}
    for message in call.messages:
        for media in message.sdp.media if message.sdp else []:
            for payload_type, name in zip(media.payload_types, sdp.codec_names(media)):
                names.setdefault(payload_type, name)
    return names


def _media_row(match: StreamMatch, names: dict[int, str]) -> dict:
    stream = match.stream
    main_type = max(stream.payload_types, key=stream.payload_types.get) if stream.payload_types else None
    codec = names.get(main_type) if main_type is not None else None
    return {
        "src": stream.src,
        "dst": stream.dst,
        "ssrc": f"0x{stream.ssrc:08X}",
        "direction": match.direction,
        "sdp_frame": match.sdp_frame,
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
    offer, answer = offer_answer(call)
    names = _payload_names(call)
    provisional = [r for t in leg.invites for r in t.provisional if r.status >= 180]
    ok = leg.answer
    bye = _first_bye(call)
    end_time = bye.time if bye else result.capture.last_time
    media = [_media_row(match, names) for match in call.media]
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


# ---------------------------------------------------------------- analyze


def _calls_with_media(result: CaptureResult) -> list[Call]:
    calls = build_calls(result)
    attach_media(calls, result)
    return calls


def calls_with_media(result: CaptureResult) -> list[Call]:
    """Every call with its media assigned, built once per capture (the call
    findings and timing both read them; neither changes them)."""
    return once(result, _calls_with_media)


def calls_with_rows(result: CaptureResult) -> list[tuple[Call, dict]]:
    """Every call with its media assigned, beside its report row."""
    return [(call, _row(call, result)) for call in calls_with_media(result)]
