"""The evidence pack's human side: a self-contained HTML report and a ticket summary.

Both are built from a report dict (normally of the redacted capture), so they
carry only what the redacted file carries. The HTML has its CSS inline, its
ladder diagrams as inline SVG and no link or resource outside itself: it opens
from an e-mail attachment or a ticket with nothing to fetch.
"""

from __future__ import annotations

from html import escape

MAX_LADDER_MESSAGES = 80  # a longer dialog is summarised by its tables, not drawn
TICKET_INSTANCES = 5  # a ticket names this many instances of a cause; the HTML names them all

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#1b1f24;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccd}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #ccd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#eef}.error{color:#a4001d}.warning{color:#8a5a00}.info{color:#1d4f91}
.finding{border-left:4px solid #ccd;padding:.25em .75em;margin:.75em 0}.finding.error{border-color:#a4001d}
.finding.warning{border-color:#d39e00}.finding p,.finding ul{color:#1b1f24;margin:.25em 0}
.explained{margin-left:1.5em}
code{font-family:ui-monospace,monospace}svg text{font:11px ui-monospace,monospace}
"""


def _e(value) -> str:
    return escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list]) -> str:
    if not rows:
        return "<p>None in this capture.</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _frames(frames: list[int], limit: int = 12) -> str:
    shown = ", ".join(str(f) for f in frames[:limit])
    return shown + (f" … (+{len(frames) - limit})" if len(frames) > limit else "")


def _finding(finding: dict, explained: list[dict] = ()) -> str:
    """One cause: its instances when there are several, then the findings it explains, inside it."""
    severity = finding.get("severity", "info")
    steps = "".join(f"<li>{_e(step)}</li>" for step in finding.get("next_steps", []))
    instances = finding.get("instances") or []
    listed = ""
    if len(instances) > 1:
        listed = (f"<p>{len(instances)} instances:</p><ul>"
                  + "".join(f"<li>{_e(i.get('summary'))} (frames {_e(_frames(i.get('frames', []), 6))})</li>"
                            for i in instances) + "</ul>")
    under = ""
    if explained:
        under = ('<div class="explained"><p>Explained by this cause:</p>'
                 + "".join(_finding(other) for other in explained) + "</div>")
    return (f'<div class="finding {_e(severity)}"><strong class="{_e(severity)}">{_e(severity.upper())}</strong> '
            f"<code>{_e(finding.get('code'))}</code> {_e(finding.get('summary'))}"
            f"<p>{_e(finding.get('explanation'))}</p>"
            + (f"<ul>{steps}</ul>" if steps else "")
            + listed
            + f"<p>Frames: {_e(_frames(finding.get('frames', [])))}</p>{under}</div>")


def _causes(findings: list[dict]) -> list[tuple[dict, list[dict]]]:
    """Each leading finding with the findings it explains (the report lists them right after it)."""
    by_id = {f.get("id"): f for f in findings}
    return [(f, [by_id[i] for i in f.get("explains", []) if i in by_id]) for f in findings if "explained_by" not in f]


def _label(message: dict) -> str:
    if message.get("method"):
        return message["method"]
    return f"{message.get('status')} {message.get('reason') or ''}".strip()


def _endpoint(ip: str, port) -> str:
    return f"[{ip}]:{port}" if ":" in (ip or "") else f"{ip}:{port}"


def ladder_svg(call: dict, by_frame: dict[int, dict], name: str = "ladder") -> str:
    """A ladder (sequence) diagram of a call, laid out like the page's: one column
    per host of the report (named by User-Agent/Server), one arrow per message,
    retransmissions dashed."""
    messages = [by_frame[f] for f in call.get("frames", []) if f in by_frame][:MAX_LADDER_MESSAGES]
    retransmitted = set(call.get("retransmission_frames") or [])
    columns = [host["address"] for host in call.get("hosts", [])]
    names = {host["address"]: host.get("name") for host in call.get("hosts", [])}
    for message in messages:  # a message between hosts the row does not list still gets its columns
        for end in (_endpoint(message["src_ip"], message["src_port"]), _endpoint(message["dst_ip"], message["dst_port"])):
            if end not in columns:
                columns.append(end)
    spacing, top, row = 240, 52, 26
    width = spacing * max(len(columns), 2)
    height = top + row * (len(messages) + 1)
    x = {end: spacing // 2 + spacing * index for index, end in enumerate(columns)}
    # Inline SVG in HTML needs no namespace; marker ids must be unique per page.
    parts = [f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             f'<defs><marker id="{name}-arrow" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto">'
             '<path d="M0,0 L8,4 L0,8 z" fill="#1b1f24"/></marker></defs>']
    for end, position in x.items():
        parts.append(f'<text x="{position}" y="16" text-anchor="middle">{_e(end)}</text>'
                     + (f'<text x="{position}" y="30" text-anchor="middle" fill="#555">{_e(names[end][:32])}</text>'
                        if names.get(end) else "")
                     + f'<line x1="{position}" y1="36" x2="{position}" y2="{height}" stroke="#99a" stroke-dasharray="4 3"/>')
    for index, message in enumerate(messages):
        y = top + row * index + 10
        x1 = x[_endpoint(message["src_ip"], message["src_port"])]
        x2 = x[_endpoint(message["dst_ip"], message["dst_port"])]
        colour = "#a4001d" if (message.get("status") or 0) >= 400 else "#1b1f24"
        dash = ' stroke-dasharray="6 4"' if message["frame"] in retransmitted else ""
        label = _label(message) + (" (retransmission)" if dash else "")
        parts.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}"{dash} marker-end="url(#{name}-arrow)"/>'
                     f'<text x="{(x1 + x2) // 2}" y="{y - 4}" text-anchor="middle" fill="{colour}">'
                     f'{_e(message["frame"])}: {_e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def evidence_html(report: dict) -> str:
    capture = report.get("capture", {})
    by_frame = {m["frame"]: m for m in report.get("sip_messages", [])}
    sections = [f"<h1>sipdiag evidence: {_e(capture.get('file'))}</h1>",
                f"<p>{_e(capture.get('format'))}, {_e(capture.get('packets'))} packets, "
                f"{len(report.get('sip_messages', []))} SIP messages. Generated locally by sipdiag "
                f"from the capture named above.</p>"]
    findings = report.get("findings", [])
    sections.append("<h2>Findings</h2>" + ("".join(_finding(cause, explained) for cause, explained in _causes(findings))
                                           if findings else "<p>No problem found.</p>"))
    sections.append("<h2>Registrations</h2>" + _table(
        ["AOR", "client", "registrar", "outcome", "final status", "challenges", "requests", "expires (asked/granted)"],
        [[r.get("aor"), r.get("client"), r.get("registrar"), r.get("outcome"), r.get("final_status"),
          r.get("challenges"), r.get("requests"), f"{r.get('expires_requested')}/{r.get('expires_granted')}"]
         for r in report.get("registrations", [])]))
    calls = report.get("calls", [])
    sections.append("<h2>Calls</h2>" + _table(
        ["Call-ID", "from", "to", "caller", "callee", "outcome", "final status", "codecs offered/answered", "RTP streams"],
        [[c.get("call_id"), c.get("from_uri"), c.get("to_uri"), c.get("caller"), c.get("callee"), c.get("outcome"),
          c.get("final_status"), f"{', '.join(c.get('codecs_offered') or [])} / {', '.join(c.get('codecs_answered') or [])}",
          len(c.get("media") or [])] for c in calls]))
    for index, call in enumerate(calls):
        if any(f in by_frame for f in call.get("frames", [])):
            sections.append(f"<h3>Ladder: <code>{_e(call.get('call_id'))}</code></h3>{ladder_svg(call, by_frame, f'call{index}')}")
    sections.append("<h2>DNS</h2>" + _table(
        ["frame", "query", "type", "rcode", "answers", "response (ms)"],
        [[d.get("frame"), d.get("qname"), d.get("qtype"), d.get("rcode") or "no response", d.get("answers"),
          d.get("response_ms")] for d in report.get("dns", [])]))
    warnings = capture.get("warnings") or []
    if warnings:
        sections.append("<h2>Capture warnings</h2><ul>" + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>")
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>sipdiag evidence: {_e(capture.get('file'))}</title><style>{CSS}</style></head><body>"
            + "".join(sections) + "</body></html>")


def _finding_line(lead: str, finding: dict) -> str:
    return f"{lead}[{finding.get('severity')}] {finding.get('code')}: {finding.get('summary')} (frames {_frames(finding.get('frames', []), 6)})"


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
    for cause, explained in _causes(findings):
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
