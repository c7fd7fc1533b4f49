"""The report document (`sipdiag.report/1`, ../shared/spec/report.md).

The CLI prints it and the page renders it: both call `build_report`, so the
two cannot drift apart.
"""

from __future__ import annotations

from .analysis import (
    call_findings,
    call_groups,
    dns_lookups,
    malformed,
    network_path,
    registration,
    registration_findings,
    timing,
)
from .analysis.findings import diagnose
from .model import CaptureResult, SipMessage

SCHEMA = "sipdiag.report/1"
# The page shows each message's text on demand; a pathological multi-megabyte
# message must not bloat the report, so the text is cut at this size.
MAX_MESSAGE_TEXT = 64 * 1024


def build_report(result: CaptureResult, with_text: bool = True, streamed_messages: bool = False) -> dict:
    """The document; `with_text=False` leaves each message's text out (the
    engine then keeps no text, and gives it back by frame on demand).
    `streamed_messages=True` gives `sip_messages` as a one-pass iterator of
    rows, made as `report_json.write_json` writes them: the rows of a large
    capture are then never all held at once (the CLI's --json)."""
    registrations, about_registrations = registration_findings.analyze(result)
    call_rows, about_calls = call_findings.analyze(result)
    dns_rows, about_dns = dns_lookups.analyze(result)
    registrars = registration.registrar_summary(registrations)
    trunks = timing.analyze(result, call_rows, registrars)  # adds timing and DTMF to the rows, RFC 6076 metrics
    findings = (about_registrations + about_calls + about_dns + network_path.analyze(result)
                + malformed.analyze(result))
    info = result.capture
    rows = (sip_message_row(message, with_text) for message in result.sip_messages)
    return {
        "schema": SCHEMA,
        "capture": {
            "file": info.file,
            "format": info.format,
            "packets": info.packets,
            "link_types": sorted(info.link_types),
            "first_time": info.first_time,
            "last_time": info.last_time,
            "warnings": list(info.warnings),
        },
        "sip_messages": (rows if streamed_messages else list(rows)),
        "registrations": registrations,
        "registrars": registrars,
        "calls": call_rows,
        "trunks": trunks,
        "call_groups": call_groups.summary(call_rows),
        "dns": dns_rows,
        "network_events": network_path.events(result, dns_rows),
        "dns_chains": dns_lookups.resolution_chains(result),
        "findings": diagnose(findings),
    }


def message_text(raw: bytes) -> str:
    """A message's text as the report carries it."""
    return raw[:MAX_MESSAGE_TEXT].decode("utf-8", "replace")


def sip_message_row(message: SipMessage, with_text: bool = True) -> dict:
    row = {
        "frame": message.frame,
        "time": message.time,
        "src_ip": message.src_ip,
        "src_port": message.src_port,
        "dst_ip": message.dst_ip,
        "dst_port": message.dst_port,
        "transport": message.transport,
        "method": message.method,
        "request_uri": message.request_uri,
        "status": message.status,
        "reason": message.reason,
        "call_id": message.call_id,
        "cseq": message.cseq,
        "cseq_method": message.cseq_method,
        "from_uri": message.from_uri,
        "to_uri": message.to_uri,
        # The headers as written (display name and tag too): the message list shows them.
        "from": message.header("from"),
        "to": message.header("to"),
        "has_sdp": message.sdp is not None,
        "errors": list(message.errors),
    }
    if with_text:
        row["text"] = message_text(message.raw)
    return row
