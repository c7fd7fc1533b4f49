"""The evidence pack's human side: a self-contained HTML report and a ticket summary.

Both are built from a report dict (normally of the redacted capture), so they
carry only what the redacted file carries. The HTML is html_report.py's
document (CSS inline, ladder.py's ladders as inline SVG, no link or resource
outside itself: it opens from an e-mail attachment or a ticket with nothing to
fetch).
"""

from __future__ import annotations

from ..html_report import causes, document, frame_list

TICKET_INSTANCES = 5  # a ticket names this many instances of a cause; the HTML names them all


def evidence_html(report: dict) -> str:
    """The report document (html_report.py, the page's "Download report (HTML)"), titled as evidence."""
    return document(report, "sipdiag evidence")


def _finding_line(lead: str, finding: dict) -> str:
    return f"{lead}[{finding.get('severity')}] {finding.get('code')}: {finding.get('summary')} (frames {frame_list(finding.get('frames', []), 6)})"


def summary_text(report: dict, redaction: dict | None = None) -> str:
    """Plain text for a ticket: what the capture shows, in a few lines."""
    capture = report.get("capture", {})
    lines = [f"sipdiag summary of {capture.get('file')} ({capture.get('packets')} packets, "
             f"{len(report.get('sip_messages', []))} SIP messages)"]
    if redaction is not None:
        lines.append(f"Redacted: {redaction.get('addresses_replaced')} addresses replaced, "
                     f"{sum(redaction.get('replaced', {}).values())} other values replaced, leaks: {redaction.get('leaks')}")
    findings = report.get("findings", [])
    lines.append("Findings:" if findings else "Findings: none")
    for cause, explained in causes(findings):
        lines.append(_finding_line("- ", cause))
        lines += [f"    - {i.get('summary')}" for i in (cause.get("instances") or [])[:TICKET_INSTANCES]
                  if len(cause["instances"]) > 1]
        if len(cause.get("instances") or []) > TICKET_INSTANCES:
            lines.append(f"    - and {len(cause['instances']) - TICKET_INSTANCES} more")
        lines += [_finding_line("  - explained by the above: ", other) for other in explained]
    registrations = report.get("registrations", [])
    if registrations:
        lines.append("Registrations: " + ", ".join(f"{r.get('aor')} {r.get('outcome')}" for r in registrations))
    calls = report.get("calls", [])
    if calls:
        lines.append("Calls: " + ", ".join(f"{c.get('from_uri')} -> {c.get('to_uri')} {c.get('outcome')}"
                                            f"{' ' + str(c['final_status']) if c.get('final_status') else ''}" for c in calls))
    return "\n".join(lines)
