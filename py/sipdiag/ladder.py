"""Ladder (sequence) diagrams as SVG text: the one layout for the page, the
HTML report and the redaction evidence pack.

`layout` turns a report's calls (one, the legs of one call, or all SIP) into
columns and rows; `render` writes them as SVG. The page asks its worker for
this markup and adds only the interaction (selection, the message panel, the
diff), so every ladder sipdiag draws shows the same facts.

Columns are per host by default: a B2BUA or SBC that sends from one port and
listens on another is one column, as in Wireshark's Flow Graph; `per_port`
gives a column per IP:port instead. Colours are SVG attributes, never CSS, so
an exported SVG or PNG looks the same outside the page; the classes let the
page's dark theme recolour it on screen. Text is monospace so that its width,
and so where an ellipsis must cut it, is known without a browser.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape as escape_markup

from .model import hostport
from .protocols import sip
from .protocols.sdp import codec_names

# Rows drawn at most: a carrier's capture can hold 100,000 messages, and an
# SVG of them all would stall the tab. The rest is counted under the diagram.
MAX_ROWS = 600

FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"
LABEL_SIZE = 12
DETAIL_SIZE = 11
# Advance of one monospace glyph in ems (DejaVu Sans Mono and Menlo 0.602,
# Consolas 0.55): text cut to this width never runs past its space.
GLYPH_EM = 0.61
# Columns are as wide as the text between neighbours needs, within these bounds
# (past the widest, text ends in an ellipsis; the <title> has it whole).
COLUMN_WIDTH = 230
MAX_COLUMN_WIDTH = 420
GUTTER = 84  # the relative times, left of the first column
HEADER = 64  # host address, name and SIP ports
ROW_HEIGHT = 40
SDP_LINE = 14  # an offer or answer gets a line more, for its SDP summary
FOOTER = 24
SELF_LOOP = 36  # width of an arrow from a column to itself (two ports of one host)

# Characters XML 1.0 does not allow, even escaped: a capture's text (a
# User-Agent, a reason phrase) can hold them, and the page parses the SVG as XML.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def escape(text: str) -> str:
    """Text for SVG markup: escaped, and what XML cannot hold shown as U+FFFD."""
    return NOT_XML.sub("\ufffd", escape_markup(text))


# An identifier XML needs, never fetched.
SVG_NAMESPACE = ' xmlns="http://www.w3.org/2000/svg"'
SIDE_CODECS = frozenset({"telephone-event", "cn"})

COLOURS = {
    "request": "#1f4e8c", "success": "#1d7a35", "provisional": "#5f6368", "failure": "#b42318",
    "rtp": "#dbe6f5", "rtp_text": "#1f2937", "host": "#1b1f24", "muted": "#555b63", "lifeline": "#9aa0a6",
    "background": "#ffffff",
}


@dataclass
class Column:
    key: str  # the IP (per host) or "ip:port" (per port)
    name: str | None  # User-Agent/Server the report gives the host
    sip_ports: list[int] = field(default_factory=list)  # per host: the ports SIP used, in order of appearance
    x: float = 0.0


@dataclass
class Arrow:
    message: dict
    source: int  # column indices
    target: int
    delta: float  # seconds since the previous message drawn (0 for the first)
    retransmission: bool
    sdp: str | None  # codec, c= address:port and direction per m= line

    @property
    def time(self) -> float:
        return self.message["time"]


@dataclass
class Band:
    """The RTP between two endpoints, both directions: drawn at its first packet."""

    time: float
    left: int  # column indices, left < right unless both ends share a column
    right: int
    codec: str
    rightward: list[dict]  # streams from the left column to the right one
    leftward: list[dict]


@dataclass
class Ladder:
    columns: list[Column]
    rows: list[Arrow | Band]
    left_out: int  # rows beyond MAX_ROWS
    start: float  # time of the first row
    column_width: float = COLUMN_WIDTH


def message_label(message: dict) -> str:
    if message.get("method"):
        text = message["method"]
    else:
        text = f"{message.get('status')} {message.get('reason') or ''}".strip()
    return text + (" (SDP)" if message.get("has_sdp") else "")


def message_kind(message: dict) -> str:
    if message.get("method"):
        return "request"
    status = message.get("status") or 0
    if status < 200:
        return "provisional"
    return "success" if status < 300 else "failure"


def sdp_summary(message: dict, codecs_shown: int | None = 2) -> str | None:
    """"PCMA/telephone-event 10.77.0.3:20000 sendrecv" per m= line, from the message's own text."""
    if not message.get("has_sdp") or not message.get("text"):
        return None
    session = sip.parse_message(message["text"].encode("utf-8", "surrogateescape")).sdp
    if session is None or not session.media:
        return None
    parts = []
    for media in session.media:
        address = media.connection or session.connection or "?"
        # DTMF and comfort noise ride along with almost every offer: the tooltip has the full SDP line.
        codecs = codec_names(media)
        if codecs_shown is not None:  # on the arrow; the tooltip lists them all
            codecs = [name for name in codecs if name.lower() not in SIDE_CODECS]
        limit = len(codecs) if codecs_shown is None else codecs_shown
        shown = "/".join(codecs[:limit]) + (f" +{len(codecs) - limit}" if len(codecs) > limit else "")
        words = [shown or media.media, hostport(address, media.port)]
        direction = media.direction or session.direction
        if direction:
            words.append(direction)
        parts.append(" ".join(words))
    return "; ".join(parts)


def split_endpoint(text: str) -> tuple[str, int]:
    """"ip:port" or "[v6]:port" back into its parts."""
    address, _, port = text.rpartition(":")
    return address.strip("[]"), int(port)


def chosen_calls(report: dict, call_ids: list[str] | None) -> list[dict]:
    if call_ids is None:
        return report.get("calls", [])
    wanted = set(call_ids)
    return [call for call in report.get("calls", []) if call["call_id"] in wanted]


def layout(report: dict, call_ids: list[str] | None = None, *, per_port: bool = False,
           collapse_retransmissions: bool = False, max_rows: int = MAX_ROWS,
           message_text: Callable[[dict], str | None] | None = None) -> Ladder:
    """The ladder of these calls (their messages and RTP in one diagram), or of
    every SIP message and every call's RTP when `call_ids` is None.
    `message_text(row)` gives a message's text when the report's rows carry
    none (the default report): only the drawn SDP messages' are asked for."""
    calls = chosen_calls(report, call_ids)
    retransmitted = {frame for call in calls for frame in call.get("retransmission_frames") or []}
    if call_ids is None:
        messages = list(report.get("sip_messages", []))
    else:
        frames = {frame for call in calls for frame in call.get("frames", [])}
        messages = [m for m in report.get("sip_messages", []) if m["frame"] in frames]
    if collapse_retransmissions:
        messages = [m for m in messages if m["frame"] not in retransmitted]
    messages.sort(key=lambda m: (m["time"], m["frame"]))

    def key(ip: str, port: int) -> str:
        return hostport(ip, port) if per_port else ip

    names: dict[str, str] = {}
    for call in calls:
        for host in call.get("hosts") or []:
            ip, port = split_endpoint(host["address"])
            if host.get("name"):
                names.setdefault(key(ip, port), host["name"])
    # The rows first, cut to max_rows, and only then columns and SDP summaries:
    # all SIP of a large capture must not cost a column per host it ever saw.
    candidates = sorted([(m["time"], 0, m) for m in messages] + [(pair[0]["first_time"], 1, pair)
                                                                 for pair in rtp_pairs(calls)],
                        key=lambda candidate: candidate[:2])  # a band at a message's time comes after it
    kept = candidates[:max_rows]
    columns: dict[str, Column] = {}
    index: dict[str, int] = {}

    def column(ip: str, port: int, sip_port: bool) -> int:
        name = key(ip, port)
        if name not in columns:
            columns[name] = Column(name, names.get(name))
            index[name] = len(index)
        if sip_port and not per_port and port not in columns[name].sip_ports:
            columns[name].sip_ports.append(port)
        return index[name]

    rows: list[Arrow | Band] = []
    previous = None
    for _, kind, message in kept:
        if kind == 0:
            if message_text is not None and message.get("has_sdp") and "text" not in message:
                message = {**message, "text": message_text(message)}
            source = column(message["src_ip"], message["src_port"], True)
            target = column(message["dst_ip"], message["dst_port"], True)
            delta = 0.0 if previous is None else message["time"] - previous
            previous = message["time"]
            rows.append(Arrow(message, source, target, delta, message["frame"] in retransmitted,
                              sdp_summary(message)))
    # RTP endpoints no message used get their columns after the signalling's
    bands = [band(pair, lambda text: column(*split_endpoint(text), False)) for _, kind, pair in kept if kind == 1]
    rows = sorted(rows + bands, key=lambda row: row.time)  # stable, as above
    ordered = list(columns.values())
    width = column_width(ordered, rows)
    for position, item in enumerate(ordered):
        item.x = GUTTER + width * position + width / 2
    return Ladder(ordered, rows, len(candidates) - len(kept), rows[0].time if rows else 0.0, width)


def rtp_pairs(calls: list[dict]) -> list[list[dict]]:
    """The streams of these calls by pair of endpoints, a stream and its reverse
    together, in order of their first packet. Legs of one call share streams:
    each is counted once."""
    streams: dict[tuple, dict] = {}
    for call in calls:
        for media in call.get("media") or []:
            streams.setdefault((media["src"], media["dst"], media.get("ssrc"), media.get("first_frame")), media)
    pairs: dict[frozenset, list[dict]] = {}
    for media in sorted(streams.values(), key=lambda media: media["first_time"]):
        pairs.setdefault(frozenset((media["src"], media["dst"])), []).append(media)
    return list(pairs.values())


def band(group: list[dict], column) -> Band:
    """One pair's band between its columns; "→" is left to right."""
    first = group[0]
    ends = sorted({column(first["src"]), column(first["dst"])})
    left, right = ends[0], ends[-1]
    if left == right:  # both ends on one host: the first stream's direction reads as "→"
        rightward = [m for m in group if m["src"] == first["src"]]
    else:
        rightward = [m for m in group if column(m["src"]) == left]
    leftward = [m for m in group if m not in rightward]
    codecs = sorted({m.get("codec") or "/".join(map(str, m.get("payload_types", []))) for m in group})
    return Band(first["first_time"], left, right, ", ".join(codecs), rightward, leftward)


def text_width(text: str, size: int) -> float:
    return len(text) * size * GLYPH_EM


def column_width(columns: list[Column], rows: list[Arrow | Band]) -> float:
    """Room for the host names and for the labels of arrows between neighbouring
    columns (an arrow across several columns has their sum)."""
    needed = [text_width(text, LABEL_SIZE) + 12 for c in columns for text in (c.key, c.name or "")]
    for row in rows:
        if isinstance(row, Arrow) and abs(row.source - row.target) == 1:
            needed.append(text_width(message_label(row.message) + " ⟳", LABEL_SIZE) + 16)
            if row.sdp:
                needed.append(text_width(row.sdp, DETAIL_SIZE) + 16)
    return float(min(max([COLUMN_WIDTH, *needed]), MAX_COLUMN_WIDTH))


def delta_text(seconds: float) -> str:
    """Time since the previous message: ms below a second (0.1 ms steps), seconds above."""
    if seconds < 1:
        return f"+{seconds * 1000:.1f} ms"
    return f"+{seconds:.3f} s"


def fit(text: str, width: float, size: int) -> str:
    """The text if it fits in `width` pixels at this font size, else cut with an ellipsis."""
    room = max(int(width / (size * GLYPH_EM)), 1)
    return text if len(text) <= room else text[: room - 1] + "…"


def _number(value) -> str:
    """A coordinate to 0.01 px, without float noise ("237.55999999999995") or trailing zeros."""
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _attributes(values: dict) -> str:
    return "".join(f' {name}="{escape(_number(value))}"' for name, value in values.items())


def _node(tag: str, values: dict, text: str | None = None) -> str:
    if text is None:
        return f"<{tag}{_attributes(values)}/>"
    return f"<{tag}{_attributes(values)}>{escape(text)}</{tag}>"


def _direction_text(streams: list[dict]) -> str:
    if not streams:
        return "none"
    packets = sum(m["packets"] for m in streams)
    lost = sum(m.get("lost") or 0 for m in streams)
    return f"{packets} pkts" + (f" ({lost} lost)" if lost else "")


def render(ladder: Ladder, title: str = "Ladder diagram", inline: bool = False) -> str:
    """The ladder as SVG markup, referring to nothing outside itself. For the
    page (parsed as XML there, and exported as an .svg file) it declares the SVG
    namespace and its arrows are controls the page wires up; `inline` in a
    static HTML document (the readable report) the parser knows <svg> without a
    namespace name, and an arrow is no button, as nothing there answers a click."""
    width = round(GUTTER + ladder.column_width * max(len(ladder.columns), 1))
    heights = [row_height(row) for row in ladder.rows]
    height = HEADER + sum(heights) + FOOTER
    parts = [
        (f'<svg{"" if inline else SVG_NAMESPACE} class="ladder-svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="{escape(FONT)}" font-size="{LABEL_SIZE}" '
         f'role="group" aria-label="{escape(title)}">'),
        _node("rect", {"class": "ladder-bg", "x": 0, "y": 0, "width": width, "height": height,
                       "fill": COLOURS["background"]}),
    ]
    for column in ladder.columns:
        parts.append(_column(column, height, ladder.column_width))
    top = HEADER
    for row, height_of_row in zip(ladder.rows, heights):
        y = top + ROW_HEIGHT / 2  # the arrow's line; its label above, frame and delta (and SDP) below
        parts.append(_node("text", {"class": "ladder-time", "x": 6, "y": y + 4, "fill": COLOURS["muted"],
                                    "font-size": DETAIL_SIZE}, f"+{row.time - ladder.start:.3f} s"))
        if isinstance(row, Arrow):
            parts.append(_arrow(row, ladder.columns, y, ladder.column_width, not inline))
        else:
            parts.append(_band(row, ladder.columns, y, ladder.column_width))
        top += height_of_row
    if ladder.left_out:
        parts.append(_node("text", {"class": "ladder-left-out", "x": 6, "y": height - 8, "fill": COLOURS["muted"]},
                           f"{ladder.left_out} more rows not drawn (the first {len(ladder.rows)} are shown)"))
    parts.append("</svg>")
    return "".join(parts)


def row_height(row: Arrow | Band) -> int:
    return ROW_HEIGHT + (SDP_LINE if isinstance(row, Arrow) and row.sdp else 0)


def _column(column: Column, height: float, width: float) -> str:
    room = width - 12
    lines = [("ladder-host", column.key, COLOURS["host"], "bold")]
    if column.name:
        lines.append(("ladder-host-name", column.name, COLOURS["muted"], None))
    if len(column.sip_ports) > 1:  # one host, several SIP ports: say which, as per-port columns would
        lines.append(("ladder-host-ports", "SIP ports " + ", ".join(map(str, column.sip_ports)), COLOURS["muted"], None))
    parts = ['<g class="ladder-column">', _node("title", {}, "\n".join(text for _, text, _, _ in lines))]
    for index, (kind, text, colour, weight) in enumerate(lines):
        values = {"class": kind, "x": column.x, "y": 16 + 15 * index, "text-anchor": "middle", "fill": colour}
        if weight:
            values["font-weight"] = weight
        parts.append(_node("text", values, fit(text, room, LABEL_SIZE)))
    parts.append(_node("line", {"class": "ladder-lifeline", "x1": column.x, "y1": HEADER - 8, "x2": column.x,
                                "y2": height - FOOTER + 4, "stroke": COLOURS["lifeline"], "stroke-width": 1}))
    parts.append("</g>")
    return "".join(parts)


def _arrow(arrow: Arrow, columns: list[Column], y: float, width: float, control: bool) -> str:
    message = arrow.message
    kind = message_kind(message)
    colour = COLOURS[kind]
    x1, x2 = columns[arrow.source].x, columns[arrow.target].x
    label = message_label(message) + (" ⟳" if arrow.retransmission else "")
    detail = f"#{message['frame']} {delta_text(arrow.delta)}"
    full_label = (message_label(message) if message.get("method") is None
                  else f"{message['method']} {message.get('request_uri') or ''}".strip() + (" (SDP)" if message.get("has_sdp") else ""))
    tooltip = [f"{full_label}{' (retransmission)' if arrow.retransmission else ''}",
               f"frame {message['frame']}, {delta_text(arrow.delta)} after the previous message",
               (f"{hostport(message['src_ip'], message['src_port'])} → "
                f"{hostport(message['dst_ip'], message['dst_port'])} ({message.get('transport', 'udp')})")]
    if arrow.sdp:
        tooltip.append(f"SDP: {sdp_summary(message, None)}")
    classes = f"ladder-arrow ladder-{kind}" + (" ladder-retransmission" if arrow.retransmission else "")
    parts = []  # the group's opening tag goes first, once its visible text is known
    dash = {"stroke-dasharray": "5 4"} if arrow.retransmission else {}
    if arrow.source == arrow.target:  # a host to itself (two ports of one host, per-host columns)
        room = width - SELF_LOOP - 16
        left = x1 + SELF_LOOP + 6
        parts.append(_node("rect", {"class": "ladder-hit", "x": x1 - 4, "y": y - ROW_HEIGHT / 2 + 2,
                                    "width": width - 8, "height": row_height(arrow) - 4, "fill": colour,
                                    "fill-opacity": 0}))
        parts.append(_node("path", {"class": "ladder-shaft", "d": f"M {x1} {y - 6} h {SELF_LOOP} v 12 h {-SELF_LOOP + 8}",
                                    "fill": "none", "stroke": colour, "stroke-width": 2, **dash}))
        parts.append(_node("path", {"class": "ladder-head", "d": f"M {x1} {y + 6} l 8 -5 v 10 z", "fill": colour}))
        anchor, text_x = "start", left
    else:
        direction = 1 if x2 > x1 else -1
        room = abs(x2 - x1) - 16
        parts.append(_node("rect", {"class": "ladder-hit", "x": min(x1, x2), "y": y - ROW_HEIGHT / 2 + 2,
                                    "width": abs(x2 - x1), "height": row_height(arrow) - 4, "fill": colour,
                                    "fill-opacity": 0}))
        parts.append(_node("line", {"class": "ladder-shaft", "x1": x1, "y1": y, "x2": x2 - direction * 6, "y2": y,
                                    "stroke": colour, "stroke-width": 2, **dash}))
        parts.append(_node("path", {"class": "ladder-head", "d": f"M {x2} {y} l {-direction * 9} -5 v 10 z",
                                    "fill": colour}))
        anchor, text_x = "middle", (x1 + x2) / 2
    shown = [fit(label, room, LABEL_SIZE), detail]
    parts.append(_node("text", {"class": "ladder-label", "x": text_x, "y": y - 5, "text-anchor": anchor,
                                "fill": colour}, shown[0]) + " ")
    # (a space between the texts: read together, as assistive technology reads
    # them, they must not run into one another, "s" + "PCMA" into "sPCMA")
    frame, delta = detail.split(" ", 1)
    parts.append(f'<text class="ladder-detail" x="{_number(text_x)}" y="{_number(y + 14)}" text-anchor="{anchor}" '
                 f'font-size="{DETAIL_SIZE}" fill="{COLOURS["muted"]}">'
                 f'<tspan class="ladder-frame">{escape(frame)}</tspan> <tspan class="ladder-delta">{escape(delta)}</tspan>'
                 "</text> ")
    if arrow.sdp:
        shown.append(fit(arrow.sdp, room, DETAIL_SIZE))
        parts.append(_node("text", {"class": "ladder-sdp", "x": text_x, "y": y + 14 + SDP_LINE, "text-anchor": anchor,
                                    "font-size": DETAIL_SIZE, "fill": COLOURS["muted"]}, shown[-1]))
    # The name a screen reader gives the arrow is the text it shows (WCAG 2.5.3), the title says the rest.
    group = {"class": classes, "data-frame": message["frame"],
             **({"tabindex": 0, "role": "button", "cursor": "pointer"} if control else {"role": "group"}),
             "aria-label": " ".join(shown) + (", retransmission" if arrow.retransmission else "")}
    parts.insert(0, f"<g{_attributes(group)}>" + _node("title", {}, "\n".join(tooltip)))
    parts.append("</g>")
    return "".join(parts)


def _band(band: Band, columns: list[Column], y: float, width: float) -> str:
    x1, x2 = columns[band.left].x, columns[band.right].x
    if band.left == band.right:
        x1, x2 = x1 - width / 2 + 8, x1 + width / 2 - 8  # both ends on one host: the column's width
    text = f"RTP {band.codec} → {_direction_text(band.rightward)} · ← {_direction_text(band.leftward)}"
    tooltip = [f"{m['src']} → {m['dst']} {m.get('codec') or ''}: {m['packets']} packets, {m.get('lost') or 0} lost, "
               f"jitter {m.get('jitter_ms')} ms, frames {m.get('first_frame')}–{m.get('last_frame')}"
               for m in band.rightward + band.leftward]
    first_frame = min(m["first_frame"] for m in band.rightward + band.leftward)
    return (f'<g class="ladder-rtp" data-frame="{first_frame}">' + _node("title", {}, "\n".join(tooltip))
            + _node("rect", {"class": "ladder-band", "x": x1, "y": y - 10, "width": max(x2 - x1, 4), "height": 20, "rx": 4,
                             "fill": COLOURS["rtp"]})
            + _node("text", {"class": "ladder-band-text", "x": (x1 + x2) / 2, "y": y + 4, "text-anchor": "middle",
                             "fill": COLOURS["rtp_text"],
                             "font-size": DETAIL_SIZE}, fit(text, max(x2 - x1, width - 16) - 8, DETAIL_SIZE))
            + "</g>")


def ladder_svg(report: dict, call_ids: list[str] | None = None, *, per_port: bool = False,
               collapse_retransmissions: bool = False, max_rows: int = MAX_ROWS, inline: bool = False,
               message_text: Callable[[dict], str | None] | None = None) -> str:
    """layout + render: what the page, the HTML report and the evidence pack show."""
    ladder = layout(report, call_ids, per_port=per_port, collapse_retransmissions=collapse_retransmissions,
                    max_rows=max_rows, message_text=message_text)
    what = "every SIP message" if call_ids is None else ", ".join(call_ids)
    return render(ladder, f"Ladder diagram of {what}", inline)
