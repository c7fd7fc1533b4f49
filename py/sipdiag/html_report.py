"""The report as one readable, self-contained HTML document.

The page's "Download report (HTML)", `analyze --html OUT` and the redaction
evidence pack (redaction/evidence.py, from the redacted capture's report) all
write it with this code: CSS inline, ladders as inline SVG from ladder.py (the
page's renderer), no script, no link and no resource outside itself, so it
opens from an e-mail attachment or a ticket with nothing to fetch. A print
stylesheet makes the browser's "Save as PDF" a clean document.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from html import escape

from .ladder import MAX_ROWS, ladder_svg

# Calls (or groups of legs) drawn as ladders at most; the calls table lists every call.
MAX_LADDERS = 50
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#1b1f24;background:#fff;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccd}h3{font-size:1.05em;margin-top:1.5em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #ccd;padding:.25em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#eef}.error{color:#a4001d}.warning{color:#7a4f00}.info{color:#1d4f91}
.finding{border-left:4px solid #ccd;padding:.25em .75em;margin:.75em 0}.finding.error{border-color:#a4001d}
.finding.warning{border-color:#d39e00}.finding p,.finding ul{color:#1b1f24;margin:.25em 0}
.explained{margin-left:1.5em}
code{font-family:ui-monospace,monospace;overflow-wrap:anywhere}.muted{color:#555b63}
.ladder{overflow-x:auto;border:1px solid #ccd;margin:.5em 0}.ladder svg{display:block}
@page{margin:14mm}
@media print{
 body{margin:0;max-width:none;font-size:10pt;padding:0}
 h2,h3{break-after:avoid}
 .finding,tr{break-inside:avoid}
 .ladder{overflow:visible;border:none}
 .ladder svg{max-width:100%;height:auto}
}
"""


def _e(value) -> str:
    return escape("" if value is None else str(value))


def when(seconds) -> str:
    """UTC date and time of epoch seconds; a damaged time (beyond what a date holds) says so."""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
    except (OverflowError, OSError, ValueError, TypeError):
        return "time out of range"


def table(headers: list[str], rows: list[list]) -> str:
    if not rows:
        return "<p>None in this capture.</p>"
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def frame_list(frames: list[int], limit: int = 12) -> str:
    shown = ", ".join(str(f) for f in frames[:limit])
    return shown + (f" … (+{len(frames) - limit})" if len(frames) > limit else "")


def causes(findings: list[dict]) -> list[tuple[dict, list[dict]]]:
    """Each leading finding with the findings it explains, in report order
    (the report lists each cause, then what it explains: the page's order)."""
    by_id = {f.get("id"): f for f in findings}
    return [(f, [by_id[i] for i in f.get("explains", []) if i in by_id]) for f in findings if "explained_by" not in f]


def finding_html(finding: dict, explained: list[dict] = ()) -> str:
    """One cause: its instances when there are several, then the findings it explains, inside it."""
    severity = finding.get("severity", "info")
    steps = "".join(f"<li>{_e(step)}</li>" for step in finding.get("next_steps", []))
    facts = [f"status {finding['status']}" if "status" in finding else "",
             f"Call-ID {finding['call_id']}" if "call_id" in finding else ""]
    facts_text = " · ".join(fact for fact in facts if fact)
    instances = finding.get("instances") or []
    listed = ""
    if len(instances) > 1:
        listed = (f"<p>{len(instances)} instances:</p><ul>"
                  + "".join(f"<li>{_e(i.get('summary'))} (frames {_e(frame_list(i.get('frames', []), 6))})</li>"
                            for i in instances) + "</ul>")
    under = ""
    if explained:
        under = ('<div class="explained"><p>Explained by this cause:</p>'
                 + "".join(finding_html(other) for other in explained) + "</div>")
    return (f'<div class="finding {_e(severity)}" data-code="{_e(finding.get("code"))}">'
            f'<strong class="{_e(severity)}">{_e(severity.upper())}</strong> '
            f"<code>{_e(finding.get('code'))}</code> <span class=\"summary\">{_e(finding.get('summary'))}</span>"
            f"<p>{_e(finding.get('explanation'))}</p>"
            + (f"<ul>{steps}</ul>" if steps else "")
            + (f'<p class="muted">{_e(facts_text)}</p>' if facts_text else "")
            + listed
            + f"<p>Frames: {_e(frame_list(finding.get('frames', [])))}</p>{under}</div>")


def ladder_groups(report: dict) -> list[list[dict]]:
    """The calls to draw, a call's legs (report call_groups) together in one ladder."""
    calls = {call["call_id"]: call for call in report.get("calls", [])}
    groups, seen = [], set()
    for group in report.get("call_groups") or []:
        members = [calls[call_id] for call_id in group["calls"] if call_id in calls]
        if members:
            groups.append(members)
            seen.update(call["call_id"] for call in members)
    groups += [[call] for call_id, call in calls.items() if call_id not in seen]
    return groups


def ladders_html(report: dict, message_text: Callable[[dict], str | None] | None = None) -> str:
    by_frame = {m["frame"] for m in report.get("sip_messages", [])}
    parts = []
    groups = [group for group in ladder_groups(report)
              if any(frame in by_frame for call in group for frame in call.get("frames", []))]
    for group in groups[:MAX_LADDERS]:
        ids = [call["call_id"] for call in group]
        if len(group) == 1:
            heading = f"Ladder: <code>{_e(ids[0])}</code>"
        else:
            heading = f"Ladder of one call, {len(group)} legs: " + ", ".join(f"<code>{_e(i)}</code>" for i in ids)
        legs = "".join(f"<li>{_e(call.get('caller'))} → {_e(call.get('callee'))}: {_e(call.get('outcome'))} "
                       f"({_e(call.get('from_uri'))} → {_e(call.get('to_uri'))})</li>" for call in group)
        parts.append(f"<h3>{heading}</h3>" + (f"<ul>{legs}</ul>" if len(group) > 1 else "")
                     + f'<div class="ladder">{ladder_svg(report, ids, inline=True, message_text=message_text)}</div>')
    if len(groups) > MAX_LADDERS:
        parts.append(f"<p>{len(groups) - MAX_LADDERS} more calls are in the table above; their ladders are not "
                     f"drawn here (the first {MAX_LADDERS} are).</p>")
    return "".join(parts)


def document(report: dict, title: str = "sipdiag report",
             message_text: Callable[[dict], str | None] | None = None) -> str:
    """The whole document; `title` names it (the evidence pack says "sipdiag evidence").
    `message_text(row)`: a message's text, for a report whose rows carry none (ladder.layout)."""
    capture = report.get("capture", {})
    messages = report.get("sip_messages", [])
    sections = [
        f"<h1>{_e(title)}: {_e(capture.get('file'))}</h1>",
        (f"<p>{_e(capture.get('format'))}, {_e(capture.get('packets'))} packets, {len(messages)} SIP messages, "
         f"{len(report.get('registrations', []))} registrations, {len(report.get('calls', []))} calls, "
         f"{len(report.get('dns', []))} DNS queries; from {_e(when(capture.get('first_time')))} "
         f"to {_e(when(capture.get('last_time')))}. Generated on this computer by sipdiag from the capture named "
         f"above; nothing in this file loads anything from elsewhere.</p>"),
    ]
    findings = report.get("findings", [])
    sections.append(f"<h2>Findings ({len(findings)})</h2>"
                    + ("".join(finding_html(cause, explained) for cause, explained in causes(findings))
                       if findings else "<p>No problem found.</p>"))
    sections.append("<h2>Registrations</h2>" + table(
        ["AOR", "client", "registrar", "outcome", "final status", "challenges", "requests", "expires (asked/granted)"],
        [[r.get("aor"), r.get("client"), r.get("registrar"), r.get("outcome"), r.get("final_status"),
          r.get("challenges"), r.get("requests"), f"{r.get('expires_requested')}/{r.get('expires_granted')}"]
         for r in report.get("registrations", [])]))
    calls = report.get("calls", [])
    sections.append("<h2>Calls</h2>" + table(
        ["start", "Call-ID", "call", "from", "to", "caller", "callee", "outcome", "final status",
         "codecs offered/answered", "RTP streams"],
        [[when(c.get("start_time")), c.get("call_id"), c.get("group"), c.get("from_uri"), c.get("to_uri"),
          c.get("caller"), c.get("callee"), c.get("outcome"), c.get("final_status"),
          f"{', '.join(c.get('codecs_offered') or [])} / {', '.join(c.get('codecs_answered') or [])}",
          len(c.get("media") or [])] for c in calls]))
    if calls:
        sections.append(
            f'<p class="muted">Ladders: one column per host; each arrow is a SIP message, with its frame number, '
            f"the time since the previous message and, on offers and answers, the SDP's codecs, c= address:port "
            f"and direction; dashed arrows are retransmissions; shaded bands count RTP packets each way. At most "
            f"{MAX_ROWS} rows are drawn per ladder.</p>" + ladders_html(report, message_text))
    sections.append("<h2>DNS</h2>" + table(
        ["frame", "query", "type", "rcode", "answers", "response (ms)"],
        [[d.get("frame"), d.get("qname"), d.get("qtype"), d.get("rcode") or "no response", d.get("answers"),
          d.get("response_ms")] for d in report.get("dns", [])]))
    warnings = capture.get("warnings") or []
    if warnings:
        sections.append("<h2>Capture warnings</h2><ul>" + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>")
    # The policy makes "nothing to fetch" a rule the browser enforces, not only a habit of this code.
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}: {_e(capture.get('file'))}</title><style>{CSS}</style></head><body><main>"
            + "".join(sections) + "</main></body></html>\n")
