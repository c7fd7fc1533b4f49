"""SIP_MALFORMED_MESSAGE: messages without the headers every SIP message carries.

RFC 3261 section 8.1.1 puts Via, From, To, Call-ID and CSeq in every request,
and section 8.2.6.2 has every response copy them from its request. An
element that drops or mangles one of them is often the very bug the user is
hunting, so each such message is named with what it lacks, in one finding
per Call-ID (the report makes the Call-IDs whose messages lack the same
headers from the same senders one cause). The analyses
still use what is left: a response without a usable Via joins its request by
Call-ID, CSeq and direction (transaction.TransactionTable).
"""

from __future__ import annotations

from ..model import CaptureResult, SipMessage
from .findings import Finding, counted

# (header, how RFC 3261 spells it)
_REQUIRED = (("via", "Via"), ("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq"))
# An explanation names this many messages; details list every one.
_NAMED_IN_TEXT = 10


def _lacks(message: SipMessage) -> tuple[list[str], list[str]]:
    """The required headers the message lacks, and those present but unreadable."""
    present = set(message.headers.names)
    missing = [name for key, name in _REQUIRED if key not in present]
    unusable = []
    if "Via" not in missing and not message.vias:
        unusable.append("Via")
    if "Call-ID" not in missing and not message.call_id:
        unusable.append("Call-ID")
    if "CSeq" not in missing and message.cseq is None:
        unusable.append("CSeq")
    return missing, unusable


def _label(message: SipMessage) -> str:
    if message.is_request:
        return message.method
    about = f" to {message.cseq_method}" if message.cseq_method else ""
    return f"{message.status} {message.reason or ''}".rstrip() + about


def analyze(result: CaptureResult) -> list[Finding]:
    """One finding per Call-ID (the call or registration its messages belong to)."""
    by_call: dict[str | None, list] = {}
    for message in result.sip_messages:
        if not message.has_start_line:
            continue  # nothing to match it by; its parse errors are in sip_messages
        missing, unusable = _lacks(message)
        if missing or unusable:
            by_call.setdefault(message.call_id, []).append((message, missing, unusable))
    return [_finding(call_id, instances) for call_id, instances in by_call.items()]


def _finding(call_id: str | None, instances: list) -> Finding:
    lines = []
    for message, missing, unusable in instances[:_NAMED_IN_TEXT]:
        lacks = [f"no {name}" for name in missing] + [f"an unreadable {name}" for name in unusable]
        lines.append(f"frame {message.frame} ({_label(message)} from {message.src} to {message.dst}) has "
                     + " and ".join(lacks))
    if len(instances) > _NAMED_IN_TEXT:
        lines.append(f"and {counted(len(instances) - _NAMED_IN_TEXT, 'more message')}")
    headers = sorted({name for _, missing, unusable in instances for name in missing + unusable},
                     key=[name for _, name in _REQUIRED].index)
    senders = sorted({message.src for message, _, _ in instances})
    explanation = ("Every SIP request and response must carry Via, From, To, Call-ID and CSeq (RFC 3261 8.1.1; a "
                   "response copies them from its request, 8.2.6.2). Here " + "; ".join(lines) + ".")
    if any(not message.is_request and "Via" in missing + unusable for message, missing, unusable in instances):
        explanation += (" Without a Via a response cannot find its way back through the proxies the request "
                        "passed, and a strict peer discards it; sipdiag matched such responses to their requests "
                        "by Call-ID, CSeq and direction instead.")
    explanation += " Sent by " + ", ".join(senders) + "."
    return Finding(
        "SIP_MALFORMED_MESSAGE", "missing_header",
        f"{counted(len(instances), 'SIP message')} without a usable {', '.join(headers)}",
        explanation,
        ["Find the element that sends these messages (the source address above) and check its software or "
         "configuration: a proxy, SBC or SIP ALG that removes or fails to copy these headers is broken.",
         "Compare each message with the request it answers: the response must repeat its Via, From, To, "
         "Call-ID and CSeq."],
        [message.frame for message, _, _ in instances],
        call_id=call_id,
        # Calls (or registrations) whose messages lack the same headers are one cause: the element that sent them.
        cause=f"SIP messages without a usable {', '.join(headers)} from {', '.join(senders)}",
        subject={"kind": "call_id", "name": f"Messages of Call-ID {call_id}" if call_id else "Messages without a Call-ID"},
        details={"messages": [
            {"frame": message.frame, "message": _label(message), "src": message.src, "dst": message.dst,
             "call_id": message.call_id, "missing": missing, "unusable": unusable}
            for message, missing, unusable in instances]},
    )
