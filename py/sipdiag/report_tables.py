"""The page's tables, served from the report a page at a time.

The page's worker keeps the report of the capture on screen here and answers
each table's request for one page of rows: sorted, filtered and searched in
Python, so the page never sorts or scans the whole report itself (a carrier's
capture holds hundreds of thousands of messages). The same module says where
an evidence frame or a Call-ID is shown (`locate_frame`, `locate_call`).

Each table has typed columns: a number sorts as a number (frame 9 before frame
10), text sorts case-insensitively, and an empty value sorts last whichever the
direction. Sorting is stable: rows that tie keep the report's order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .model import hostport

NUMBER = "number"
TEXT = "text"

# Worst first: a call's findings column sorts by this rank.
SEVERITY_RANK = {"error": 3, "warning": 2, "info": 1}
CALLER_TO_CALLEE = "caller_to_callee"
CALLEE_TO_CALLER = "callee_to_caller"
MAX_LIMIT = 5000


@dataclass(frozen=True)
class Column:
    kind: str  # NUMBER or TEXT
    value: Callable[[dict, dict], object]  # (report row, derived fields) -> the value sorted on


class Table:
    """One table: its rows, the fields derived once per row, its columns,
    filters (name -> test of a row against the filter's value), the text a
    search looks through, and which rows `find` names. `long_texts(indexes)`,
    when given, yields (index, text) of more text a search reads after each
    row's own (a SIP message's text, read back from the capture at every
    search rather than held: it is most of a signalling capture's size)."""

    def __init__(self, rows: list[dict], derived: list[dict], columns: dict[str, Column],
                 filters: dict[str, Callable[[dict, dict, object], bool]],
                 searched: Callable[[dict, dict], str], finds: Callable[[dict, dict, object], bool],
                 long_texts: Callable[[list[int]], Iterable[tuple[int, str]]] | None = None):
        self.rows, self.derived, self.columns, self.filters = rows, derived, columns, filters
        self.searched, self.finds, self.long_texts = searched, finds, long_texts
        self._haystacks: list[str] | None = None
        self._last: tuple | None = None  # (query key, row order) so paging through one query sorts once

    def haystacks(self) -> list[str]:
        # Built on the first search only: most captures are never searched.
        if self._haystacks is None:
            self._haystacks = [self.searched(row, extra).casefold() for row, extra in zip(self.rows, self.derived)]
        return self._haystacks

    def order(self, sort: list[dict], filters: dict, search: str) -> list[int]:
        """Indexes of the rows the query keeps, in its order."""
        key = (repr(sort), repr(sorted(filters.items())), search)
        if self._last and self._last[0] == key:
            return self._last[1]
        for name in filters:
            if name not in self.filters:
                raise ValueError(f"no filter {name!r} on this table")
        indexes = [i for i in range(len(self.rows))
                   if all(self.filters[name](self.rows[i], self.derived[i], value)
                          for name, value in filters.items() if value not in (None, "", []))]
        needle = search.strip().casefold()
        if needle:
            haystacks = self.haystacks()
            if self.long_texts is None:
                indexes = [i for i in indexes if needle in haystacks[i]]
            else:
                hits = {i for i, text in self.long_texts(indexes)
                        if needle in haystacks[i] + "\n" + text.casefold()}
                indexes = [i for i in indexes if i in hits]
        # Least significant key first: each stable sort keeps the previous keys' order among its ties.
        for spec in reversed(sort):
            column = self.columns.get(spec.get("column"))
            if column is None:
                raise ValueError(f"no column {spec.get('column')!r} to sort on")
            indexes = self._sorted(indexes, column, bool(spec.get("descending")))
        self._last = (key, indexes)
        return indexes

    def _sorted(self, indexes: list[int], column: Column, descending: bool) -> list[int]:
        values = {i: column.value(self.rows[i], self.derived[i]) for i in indexes}
        present = [i for i in indexes if values[i] is not None and values[i] != ""]
        empty = [i for i in indexes if values[i] is None or values[i] == ""]
        if column.kind == TEXT:
            keys = {i: str(values[i]).casefold() for i in present}
        else:
            keys = {i: float(values[i]) for i in present}
        # reverse=True keeps ties in their earlier order, as sorted() documents.
        return sorted(present, key=keys.__getitem__, reverse=descending) + empty


def _fields_text(*names: str) -> Callable[[dict, dict], str]:
    """What a search reads in a row: these fields' text."""
    return lambda r, d: " ".join(str(r.get(name) or "") for name in names)


# ---------------------------------------------------------------- SIP messages


def _status_class(row: dict) -> str:
    return "request" if row.get("method") else f"{row['status'] // 100}xx" if row.get("status") else ""


def _message_label(row: dict) -> str:
    if row.get("method"):
        return row["method"]
    return f"{row.get('status') or ''} {row.get('reason') or ''}".strip()


def _messages_table(report: dict, message_texts: Callable[[list[int]], Iterable[tuple[int, str]]] | None) -> Table:
    rows = report["sip_messages"]
    start = report["capture"].get("first_time")
    derived, previous = [], None
    for row in rows:
        time = row["time"]
        derived.append({
            # Relative to the capture's first packet, as Wireshark's frame.time_relative.
            "relative": time - start if start is not None else None,
            # To the previous SIP message in capture order (the first has none).
            "delta": time - previous if previous is not None else None,
            "source": hostport(row["src_ip"], row["src_port"]),
            "destination": hostport(row["dst_ip"], row["dst_port"]),
            "status_class": _status_class(row),
        })
        previous = time
    columns = {
        "frame": Column(NUMBER, lambda r, d: r["frame"]),
        "time": Column(NUMBER, lambda r, d: r["time"]),
        "relative": Column(NUMBER, lambda r, d: d["relative"]),
        "delta": Column(NUMBER, lambda r, d: d["delta"]),
        "source": Column(TEXT, lambda r, d: d["source"]),
        "destination": Column(TEXT, lambda r, d: d["destination"]),
        "transport": Column(TEXT, lambda r, d: r["transport"]),
        "message": Column(TEXT, lambda r, d: _message_label(r)),
        "request_uri": Column(TEXT, lambda r, d: r.get("request_uri")),
        "from": Column(TEXT, lambda r, d: r.get("from") or r.get("from_uri")),
        "to": Column(TEXT, lambda r, d: r.get("to") or r.get("to_uri")),
        "cseq": Column(NUMBER, lambda r, d: r.get("cseq")),
        "call_id": Column(TEXT, lambda r, d: r.get("call_id")),
    }
    filters = {
        # A method names its requests and the responses to them (CSeq method):
        # with the status class filter that gives "4xx to INVITE".
        "method": lambda r, d, v: v in (r.get("method"), r.get("cseq_method")),
        "status_class": lambda r, d, v: d["status_class"] == v,
        "address": lambda r, d, v: v in d["source"] or v in d["destination"],
        "call_id": lambda r, d, v: v in (r.get("call_id") or ""),
        "frames": lambda r, d, v: r["frame"] in v,
    }
    if message_texts is None:  # a report with the text in its rows (analyze --with-text)
        def message_texts(indexes: list[int]) -> Iterable[tuple[int, str]]:
            return ((i, rows[i].get("text") or "") for i in indexes)
    return Table(rows, derived, columns, filters,
                 searched=lambda r, d: "\n".join((d["source"], d["destination"])),
                 finds=lambda r, d, v: r["frame"] == v,
                 # The message's whole text is its headers and body.
                 long_texts=message_texts)


# ---------------------------------------------------------------- calls


def _direction_summary(streams: list[dict]) -> dict | None:
    """One direction's media: packets and loss summed, the worst jitter and MOS.
    None when no RTP flowed that way."""
    if not streams:
        return None
    moses = [s["mos_estimate"] for s in streams if s.get("mos_estimate") is not None]
    return {
        "streams": len(streams),
        "packets": sum(s["packets"] for s in streams),
        "expected": sum(s.get("expected", s["packets"]) for s in streams),
        "lost": sum(max(s["lost"], 0) for s in streams),
        "jitter_ms": max(s["jitter_ms"] for s in streams),
        "mos": min(moses) if moses else None,
    }


def _calls_table(report: dict) -> Table:
    rows = report["calls"]
    worst: dict[str, str] = {}
    counts: dict[str, int] = {}
    for finding in report["findings"]:
        call_id = finding.get("call_id")
        if call_id is None:
            continue
        counts[call_id] = counts.get(call_id, 0) + 1
        if SEVERITY_RANK[finding["severity"]] > SEVERITY_RANK.get(worst.get(call_id), 0):
            worst[call_id] = finding["severity"]
    derived = []
    for row in rows:
        media = row.get("media", [])
        derived.append({
            "worst_severity": worst.get(row["call_id"]),
            "findings": counts.get(row["call_id"], 0),
            "forward": _direction_summary([m for m in media if m.get("direction") == CALLER_TO_CALLEE]),
            "back": _direction_summary([m for m in media if m.get("direction") == CALLEE_TO_CALLER]),
        })

    def media(direction: str, field: str) -> Callable[[dict, dict], object]:
        return lambda r, d: d[direction][field] if d[direction] else None

    def timing(field: str) -> Callable[[dict, dict], object]:
        return lambda r, d: (r.get("timing") or {}).get(field)

    columns = {
        "time": Column(NUMBER, lambda r, d: r["start_time"]),
        "from": Column(TEXT, lambda r, d: r.get("from_uri")),
        "to": Column(TEXT, lambda r, d: r.get("to_uri")),
        "outcome": Column(TEXT, lambda r, d: r["outcome"]),
        "final_status": Column(NUMBER, lambda r, d: r.get("final_status")),
        "findings": Column(NUMBER, lambda r, d: SEVERITY_RANK.get(d["worst_severity"])),
        "media_forward": Column(NUMBER, media("forward", "packets")),
        "media_back": Column(NUMBER, media("back", "packets")),
        "mos_forward": Column(NUMBER, media("forward", "mos")),
        "mos_back": Column(NUMBER, media("back", "mos")),
        "post_dial_delay": Column(NUMBER, timing("post_dial_delay_ms")),
        "setup_time": Column(NUMBER, timing("setup_time_ms")),
        "duration": Column(NUMBER, timing("duration_s")),
        "codecs": Column(TEXT, lambda r, d: ", ".join(r.get("codecs_answered") or r.get("codecs_offered") or [])),
    }
    filters = {
        "outcome": lambda r, d, v: r["outcome"] == v,
        "severity": lambda r, d, v: d["worst_severity"] == v,
        "call_id": lambda r, d, v: r["call_id"] == v,
    }
    return Table(rows, derived, columns, filters, searched=_fields_text("from_uri", "to_uri", "call_id", "caller", "callee"),
                 finds=lambda r, d, v: r["call_id"] == v)


# ---------------------------------------------------------------- registrations, DNS, network events


def _registrations_table(report: dict) -> Table:
    rows = report["registrations"]
    columns = {
        "client": Column(TEXT, lambda r, d: r["client"]),
        "aor": Column(TEXT, lambda r, d: r.get("aor")),
        "registrar": Column(TEXT, lambda r, d: r["registrar"]),
        "outcome": Column(TEXT, lambda r, d: r["outcome"]),
        "final_status": Column(NUMBER, lambda r, d: r.get("final_status")),
        "challenges": Column(NUMBER, lambda r, d: r["challenges"]),
        "requests": Column(NUMBER, lambda r, d: r["requests"]),
        "expires": Column(NUMBER, lambda r, d: r.get("expires_granted")),
        "time": Column(NUMBER, lambda r, d: r.get("first_time")),
    }
    filters = {"outcome": lambda r, d, v: r["outcome"] == v}
    # A registration row is named by its place in the report (`index`), as the URL hash names it.
    return Table(rows, [{"index": i} for i in range(len(rows))], columns, filters,
                 searched=_fields_text("client", "aor", "registrar", "call_id", "contact", "user_agent"),
                 finds=lambda r, d, v: d["index"] == v)


def _dns_problem(row: dict) -> bool:
    """Failed, empty or unanswered: the queries an engineer needs to see."""
    return row.get("rcode") != "NOERROR" or row.get("answers") == 0


def _dns_result(row: dict) -> str:
    if row.get("rcode") is None:
        return "no response"
    return "NOERROR (empty)" if row["rcode"] == "NOERROR" and row.get("answers") == 0 else row["rcode"]


def _dns_table(report: dict) -> Table:
    rows = report["dns"]
    columns = {
        "frame": Column(NUMBER, lambda r, d: r["frame"]),
        "time": Column(NUMBER, lambda r, d: r["time"]),
        "name": Column(TEXT, lambda r, d: r.get("qname")),
        "type": Column(TEXT, lambda r, d: r.get("qtype")),
        "result": Column(TEXT, lambda r, d: _dns_result(r)),
        "answers": Column(NUMBER, lambda r, d: r.get("answers")),
        "response_ms": Column(NUMBER, lambda r, d: r.get("response_ms")),
        "server": Column(TEXT, lambda r, d: r.get("server")),
    }
    filters = {"problems": lambda r, d, v: _dns_problem(r) == bool(v)}
    fields = _fields_text("qname", "qtype", "server", "client")
    # The query row shows its response too: either frame finds it.
    return Table(rows, [{} for _ in rows], columns, filters,
                 searched=lambda r, d: " ".join([fields(r, d), *(r.get("answer_data") or [])]),
                 finds=lambda r, d, v: v in (r["frame"], r.get("response_frame")))


def _network_table(report: dict) -> Table:
    rows = report.get("network_events", [])
    columns = {
        "frame": Column(NUMBER, lambda r, d: r["frame"]),
        "time": Column(NUMBER, lambda r, d: r.get("time")),
        "kind": Column(TEXT, lambda r, d: r["kind"]),
        "source": Column(TEXT, lambda r, d: r["src"]),
        "destination": Column(TEXT, lambda r, d: r["dst"]),
        "what": Column(TEXT, lambda r, d: r["text"]),
    }
    filters = {"kind": lambda r, d, v: r["kind"] == v}
    return Table(rows, [{} for _ in rows], columns, filters, searched=_fields_text("kind", "src", "dst", "text"),
                 finds=lambda r, d, v: v in r["frames"])


TABLES = {
    "messages": _messages_table,
    "calls": _calls_table,
    "registrations": _registrations_table,
    "dns": _dns_table,
    "network": _network_table,
}


class ReportTables:
    """The tables of one report, built as they are first asked for.
    `message_texts(indexes)` yields (index, text) of the report's
    `sip_messages` at these indexes, for a report whose rows carry no text
    (the page's: engine.MessageTexts.texts over the File)."""

    def __init__(self, report: dict,
                 message_texts: Callable[[list[int]], Iterable[tuple[int, str]]] | None = None):
        self.report = report
        self._message_texts = message_texts
        self._tables: dict[str, Table] = {}

    def table(self, name: str) -> Table:
        if name not in self._tables:
            if name not in TABLES:
                raise ValueError(f"no table {name!r}")
            build = TABLES[name]
            self._tables[name] = (build(self.report, self._message_texts) if name == "messages"
                                  else build(self.report))
        return self._tables[name]

    def rows(self, table: str, sort: list[dict] | None = None, filters: dict | None = None, search: str = "",
             offset: int = 0, limit: int = 500, find=None) -> dict:
        """One page of a table: {rows: [{index, row, derived}], total, offset, found}.

        `find` names a row (a frame, a Call-ID, a registration's index: the
        table's own key): the page returned is the one holding it, and `found`
        is its position in the query's order (null when the query leaves it out).
        """
        chosen = self.table(table)
        order = chosen.order(list(sort or []), dict(filters or {}), search or "")
        limit = max(1, min(int(limit), MAX_LIMIT))
        found = None
        if find is not None:
            found = next((position for position, i in enumerate(order)
                          if chosen.finds(chosen.rows[i], chosen.derived[i], find)), None)
            if found is not None:
                offset = found - found % limit
        offset = max(0, min(int(offset), max(len(order) - 1, 0)))
        page = order[offset:offset + limit]
        return {
            "rows": [{"index": i, "row": chosen.rows[i], "derived": chosen.derived[i]} for i in page],
            "total": len(order),
            "offset": offset,
            "found": found,
        }

    def locate_frame(self, frame: int) -> dict | None:
        """Where an evidence frame is shown: {tab, kind, value}. A SIP message
        first, then a DNS query (its own frame or its response's), then a
        network event (ICMP error, TCP or TLS connection, an answer without its
        query), then an RTP stream: the calls' media (the RTP tab resolves it
        to its stream). None for a frame no table shows."""
        frame = int(frame)
        for table, tab, kind in (("messages", "messages", "frame"), ("dns", "dns", "frame"),
                                 ("network", "messages", "packet")):
            chosen = self.table(table)
            if any(chosen.finds(row, extra, frame) for row, extra in zip(chosen.rows, chosen.derived)):
                return {"tab": tab, "kind": kind, "value": frame}
        if self.rtp_call(frame) is not None:
            return {"tab": "rtp", "kind": "frame", "value": frame}
        return None

    def rtp_call(self, frame: int) -> dict | None:
        """The call and stream an RTP frame belongs to: {call_id, stream}
        (the stream's index in the call's media). A stream's first or last
        frame names it exactly; otherwise the stream whose frames span it."""
        spanning = None
        for call in self.report["calls"]:
            for index, stream in enumerate(call.get("media", [])):
                first, last = stream.get("first_frame"), stream.get("last_frame")
                if frame in (first, last):
                    return {"call_id": call["call_id"], "stream": index}
                if spanning is None and first is not None and last is not None and first <= frame <= last:
                    spanning = {"call_id": call["call_id"], "stream": index}
        return spanning

    def locate_call(self, call_id: str) -> dict | None:
        """Where a finding's Call-ID is shown: its call's ladder, else its registration row."""
        if any(call["call_id"] == call_id for call in self.report["calls"]):
            return {"tab": "calls", "kind": "call", "value": call_id}
        for index, row in enumerate(self.report["registrations"]):
            if row["call_id"] == call_id:
                return {"tab": "registrations", "kind": "registration", "value": index}
        return None
