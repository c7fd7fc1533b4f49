"""Timing, as a support engineer measures it, and the DTMF a call carried.

Per call, on the caller's leg (where the user waits, as calls.py judges the
outcome): post-dial delay (first INVITE -> first 180/183), setup time (-> 2xx),
2xx -> ACK, duration (ACK, else 2xx, -> BYE, else -> the capture's end, and
which), time to the final failure; RFC 4733 events of the call's streams and
SIP INFO digits.

Per registrar and per trunk, RFC 6076's metrics as the RFC defines them. A
*trunk* is a pair of signalling endpoints carrying a call's INVITEs or BYEs,
in either direction; each leg of a call (calls.Leg) is one session request on
its trunk. The RFC measures at the originating UA; a capture sees each
message once, where it was taken, so the delays here are those of that point.
Requests whose outcome the capture ended too early to see (no final response
and younger than the transaction timeout at the capture's end, or a session
still up) are left out of the ratios: they are neither successes nor failures.

This module reads the Call objects of calls.py and the sequences of
registration.py; it changes neither.
"""

from __future__ import annotations

from ..model import CaptureResult, SipMessage
from .calls import Call, Leg, calls_with_media
from .registration import Attempt, judged_sequences
from .transaction import Transaction

# RFC 3261 timers B and F: a client transaction gives up after 64*T1 = 32 s.
# An INVITE or BYE without a final response younger than that at the
# capture's end may still be answered.
TRANSACTION_TIMEOUT = 32.0

ALERTING = (180, 183)  # post-dial delay ends at ringing or early media
# RFC 6076 4.7: final responses that are a clear answer from the user, not a network failure.
EFFECTIVE_FAILURES = frozenset({480, 486, 600, 603})
# RFC 6076 4.8: an element released the request with a failed or overloaded condition.
INEFFECTIVE_STATUSES = frozenset({408, 500, 503, 504})
# RFC 6076 4.2: 401, 402 and 407 challenge rather than fail a registration.
REGISTRATION_CHALLENGES = frozenset({401, 402, 407})

# RFC 4733 3.2 (and the digits SIP INFO bodies name by number).
EVENT_NAMES = {**{code: str(code) for code in range(10)}, 10: "*", 11: "#", 12: "A", 13: "B", 14: "C", 15: "D",
               16: "flash"}
_DTMF_CHARACTERS = frozenset("0123456789*#ABCD")
DTMF_CONTENT_TYPES = ("application/dtmf-relay", "application/dtmf")


def analyze(result: CaptureResult, call_rows: list[dict], registrars: list[dict]) -> list[dict]:
    """Adds "timing" and "dtmf" to each call row and "rfc6076" to each registrar
    summary; returns the report's "trunks"."""
    capture_end = result.capture.last_time or max((m.time for m in result.sip_messages), default=0.0)
    calls = calls_with_media(result)
    by_call_id = {call.call_id: call for call in calls}
    for row in call_rows:
        call = by_call_id[row["call_id"]]
        row["timing"] = call_timing(call, capture_end)
        row["dtmf"] = dtmf(call)
    _registrar_metrics(result, registrars)
    return trunks(calls, capture_end)


# ---------------------------------------------------------------- helpers


def _ms(start: SipMessage | None, end: SipMessage | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end.time - start.time) * 1000.0, 1)


def _earliest(messages) -> SipMessage | None:
    return min(messages, key=lambda m: (m.time, m.frame), default=None)


def _stats(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"count": len(values), "min": min(values), "mean": round(sum(values) / len(values), 1),
            "max": max(values)}


def _ratio(count: int, total: int) -> dict:
    return {"count": count, "total": total, "percent": round(100.0 * count / total, 1) if total else None}


def _first_invite(leg: Leg) -> SipMessage:
    return leg.invites[0].request


# ---------------------------------------------------------------- per call


def call_timing(call: Call, capture_end: float) -> dict:
    leg = call.caller_leg
    invite = _first_invite(leg)
    responses = [r for t in leg.invites for r in t.responses]
    alerting = _earliest(r for r in responses if r.status in ALERTING)
    answer = leg.answer
    ack = _ack(call, leg) if answer else None
    final = leg.final
    failure = final if final is not None and final.status >= 400 else None
    timing = {
        "post_dial_delay_ms": _ms(invite, alerting),
        "setup_time_ms": _ms(invite, answer),
        "answer_to_ack_ms": _ms(answer, ack),
        "duration_s": None,
        "duration_start": None,
        "duration_end": None,
        "failure_ms": _ms(invite, failure),
        "failure_status": failure.status if failure else None,
    }
    if answer is not None:
        start = ack or answer
        bye = _earliest(m for m in call.requests("BYE") if m.time >= answer.time)
        end_time = bye.time if bye else capture_end
        timing.update(duration_s=round(end_time - start.time, 3), duration_start="ack" if ack else "200",
                      duration_end="bye" if bye else "capture_end")
    return timing


def _ack(call: Call, leg: Leg) -> SipMessage | None:
    """The ACK of the leg's 2xx: same CSeq as the answered INVITE, after the 2xx.
    The leg's own caller sends it first; a proxy forwards a copy further on."""
    answered = next(t.request for t in leg.invites if t.final is leg.answer)
    acks = [m for m in call.requests("ACK") if m.cseq == answered.cseq and m.time >= leg.answer.time]
    return min(acks, key=lambda m: (m.src != leg.caller, m.time, m.frame), default=None)


# ---------------------------------------------------------------- DTMF


def dtmf(call: Call) -> list[dict]:
    """Every digit the call carried: RFC 4733 events of its streams, SIP INFO bodies."""
    events = [
        {
            "digit": EVENT_NAMES.get(event.event, f"event {event.event}"),
            "source": "rfc4733",
            "frame": event.first_frame,
            "time": event.first_time,
            "duration_ms": round(event.duration_ms, 1),
            "volume": event.volume,
            "ended": event.ended,
            "src": stream.src,
            "dst": stream.dst,
            "ssrc": f"0x{stream.ssrc:08X}",
        }
        for stream in (match.stream for match in call.media)
        for event in stream.telephone_events
    ]
    retransmitted = {id(m) for m in call.retransmissions}
    for message in call.requests("INFO"):
        if id(message) in retransmitted or message.content_type not in DTMF_CONTENT_TYPES:
            continue
        digit, duration = sip_info_digit(message.body)
        if digit is not None:
            events.append({"digit": digit, "source": "sip-info", "frame": message.frame, "time": message.time,
                           "duration_ms": duration, "volume": None, "ended": None, "src": message.src,
                           "dst": message.dst, "ssrc": None})
    events.sort(key=lambda e: (e["time"], e["frame"]))
    return events


def sip_info_digit(body: bytes) -> tuple[str | None, float | None]:
    """(digit, duration ms) of an INFO body.

    application/dtmf-relay is "Signal=5" and "Duration=160" lines (values may
    be spaced: "Signal= 5"); application/dtmf is the digit alone, though some
    senders use the relay form there too. Some write * and # as 10 and 11, the
    RFC 4733 event numbers.
    """
    text = body.decode("ascii", "replace").strip()
    fields = {}
    for line in text.splitlines():
        name, separator, value = line.partition("=")
        if separator:
            fields[name.strip().lower()] = value.strip()
    signal = fields.get("signal") if fields else text
    if not signal:
        return None, None
    if signal.upper() in _DTMF_CHARACTERS:
        digit = signal.upper()
    elif signal.isdigit() and int(signal) in EVENT_NAMES:
        digit = EVENT_NAMES[int(signal)]
    else:
        return None, None
    duration = fields.get("duration", "")
    return digit, (float(duration) if duration.isdigit() else None)


# ---------------------------------------------------------------- RFC 6076 per trunk


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def _leg_open(leg: Leg, capture_end: float) -> bool:
    return leg.final is None and capture_end - _first_invite(leg).time < TRANSACTION_TIMEOUT


def _byes(call: Call) -> list[Transaction]:
    return [t for t in call.transactions.values() if t.request is not None and t.request.method == "BYE"]


def _disconnect(bye: Transaction, capture_end: float) -> str:
    """"ok" (a 2xx came), "failed" (another final, or none within timer F) or "open"."""
    if _successes(bye):
        return "ok"
    if bye.final is not None or capture_end - bye.request.time >= TRANSACTION_TIMEOUT:
        return "failed"
    return "open"


def _successes(transaction: Transaction) -> list[SipMessage]:
    return [r for r in transaction.responses if r.status and 200 <= r.status < 300]


def _completion(call: Call, capture_end: float) -> str:
    """How the answered session ended: "ok" (a BYE got its 2xx), "failed" (a BYE
    got another final, or none within timer F), "open" (no BYE yet, or one
    still in flight at the capture's end)."""
    states = {_disconnect(bye, capture_end) for bye in _byes(call)}
    return next((state for state in ("ok", "failed") if state in states), "open")


def _session_request_delay(leg: Leg) -> tuple[str, float] | None:
    """RFC 6076 4.3: ("successful", INVITE -> first non-100 provisional, else
    the 2xx) or ("failed", INVITE -> the 4xx/5xx that ended the setup).

    Both start at the leg's first INVITE: a challenge answered with
    credentials is part of the setup, as RFC 6076 4.1 counts it for REGISTER.
    """
    invite = _first_invite(leg)
    if leg.answer is not None:
        responses = [r for t in leg.invites for r in t.responses if r.status and 100 < r.status < 300]
        return "successful", _ms(invite, _earliest(responses))
    final = leg.final
    if final is not None and 400 <= final.status < 600:
        return "failed", _ms(invite, final)
    return None


def trunks(calls: list[Call], capture_end: float) -> list[dict]:
    """One row per pair of endpoints carrying INVITEs or BYEs, in order of first
    appearance. A BYE can take another path than its INVITE (a proxy that did
    not Record-Route): its pair is a trunk too, with disconnects only."""
    found: dict[tuple[str, str], dict] = {}

    def trunk(a: str, b: str) -> dict:
        # call_ids: a dict kept in insertion order, so a trunk of 200,000 calls is not searched per call
        return found.setdefault(_pair(a, b), {"endpoints": [a, b], "call_ids": {}, "legs": [], "byes": []})

    for call in calls:
        completion = _completion(call, capture_end)
        for leg in call.legs:
            entry = trunk(leg.caller, leg.callee)
            entry["legs"].append((leg, completion))
            entry["call_ids"][call.call_id] = None
        for bye in _byes(call):
            entry = trunk(bye.request.src, bye.request.dst)
            entry["byes"].append(bye)
            entry["call_ids"][call.call_id] = None
    ordered = sorted(found.values(), key=_first_seen)
    return [_trunk_row(entry, capture_end) for entry in ordered]


def _first_seen(entry: dict) -> tuple[float, int]:
    first = _earliest([_first_invite(leg) for leg, _completion in entry["legs"]]
                      + [bye.request for bye in entry["byes"]])
    return first.time, first.frame


def _trunk_row(entry: dict, capture_end: float) -> dict:
    decided = [(leg, completion) for leg, completion in entry["legs"] if not _leg_open(leg, capture_end)]
    finals = [leg.final.status if leg.final else None for leg, _completion in decided]
    answered = sum(1 for leg, _completion in decided if leg.answer is not None)
    redirected = sum(1 for status in finals if status is not None and 300 <= status < 400)
    effective = answered + sum(1 for status in finals if status in EFFECTIVE_FAILURES)
    ineffective = sum(1 for status in finals if status in INEFFECTIVE_STATUSES)
    # An unanswered request did not complete; an answered one still up when the capture ended is not judged.
    completions = [completion if leg.answer is not None else "failed" for leg, completion in decided]
    delays: dict[str, list[float]] = {"successful": [], "failed": []}
    for leg, _completion in decided:
        measured = _session_request_delay(leg)
        if measured is not None:
            delays[measured[0]].append(measured[1])
    disconnects = [(bye, _disconnect(bye, capture_end)) for bye in entry["byes"]]
    return {
        "endpoints": entry["endpoints"],
        "call_ids": list(entry["call_ids"]),
        "session_requests": len(entry["legs"]),
        "in_progress": len(entry["legs"]) - len(decided),
        "rfc6076": {
            "session_request_delay_ms": {"successful": _stats(delays["successful"]),
                                         "failed": _stats(delays["failed"])},
            "session_disconnect_delay_ms": {
                "successful": _stats([_ms(bye.request, _earliest(_successes(bye)))
                                      for bye, state in disconnects if state == "ok"]),
                "failed": sum(1 for _bye, state in disconnects if state == "failed"),
            },
            "session_establishment_ratio": _ratio(answered, len(decided) - redirected),
            "session_establishment_effectiveness_ratio": _ratio(effective, len(decided) - redirected),
            "ineffective_session_attempts": _ratio(ineffective, len(decided)),
            "session_completion_ratio": _ratio(completions.count("ok"),
                                               len(completions) - completions.count("open")),
        },
    }


# ---------------------------------------------------------------- RFC 6076 per registrar


def _registration_request_delay(attempt: Attempt) -> float | None:
    """RFC 6076 4.1: first REGISTER of the attempt -> its 2xx, challenges included."""
    first = attempt.transactions[0].request
    final = attempt.final
    if first is None or final is None or not 200 <= final.status < 300:
        return None
    return _ms(first, final)


def _ineffective(attempt: Attempt) -> bool:
    """RFC 6076 4.2: a final 4xx (not a challenge), 5xx or 6xx, or timer F ran out."""
    final = attempt.final
    if final is None:
        return attempt.outcome == "no_response"
    return final.status >= 400 and final.status not in REGISTRATION_CHALLENGES


def _registrar_metrics(result: CaptureResult, registrars: list[dict]) -> None:
    sequences, _rows, _capture_end = judged_sequences(result)
    attempts: dict[str, list[Attempt]] = {}
    for sequence in sequences:
        attempts.setdefault(sequence.registrar, []).extend(a for a in sequence.attempts if a.outcome != "pending")
    for summary in registrars:
        judged = attempts.get(summary["registrar"], [])
        delays = [d for d in (_registration_request_delay(a) for a in judged) if d is not None]
        summary["rfc6076"] = {
            "registration_request_delay_ms": _stats(delays),
            "ineffective_registration_attempts": _ratio(sum(1 for a in judged if _ineffective(a)), len(judged)),
        }
