"""One call, several dialogs: the legs a B2BUA, PBX or SBC joins into one call.

A proxy keeps the Call-ID, so its hops are one dialog already (the legs of
calls.Call). A back-to-back user agent answers one dialog and starts another,
with a Call-ID of its own, toward the next hop. What ties such dialogs
together, most trusted first:

- ``session_id``: RFC 7989 Session-ID, the UUIDs of the two end points,
  which B2BUAs pass on unchanged;
- ``icid``: the P-Charging-Vector icid-value (RFC 7315) an IMS core or SBC
  gives every leg of one call;
- ``header``: a header naming the other dialog's Call-ID (X-Orig-Call-ID,
  X-Call-ID..., what Asterisk and FreeSWITCH dial plans usually add), or a
  vendor's correlation id carried by both legs (Cisco-Guid,
  Av-Global-Session-ID, X-BroadWorks-Correlation-Info, X-Correlation-ID);
- ``media``: both dialogs' SDP in force at the same time name the same
  media address (direct media: both legs point at the two phones);
- ``time_numbers``: the second dialog's INVITE leaves the host that received
  an INVITE of the first while that one was still unanswered, for the same
  dialled or calling number.

Every call ends up in exactly one group (alone when nothing links it).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from ..model import hostport
from ..protocols.sip import parse_params, uri_parts
from .calls import Call

BY_TRUST = ("session_id", "icid", "header", "media", "time_numbers")
# RFC 7989 section 7: 32 hex digits; all zeros stands for "not known yet".
_UUID = re.compile(r"[0-9a-f]{32}")
_NULL_UUID = "0" * 32
_SHARED_ID_HEADERS = frozenset({"cisco-guid", "av-global-session-id", "x-broadworks-correlation-info",
                                "x-correlation-id"})
# Numbers that differ only by a prefix (+1, 0, a trunk code) are one number
# when the common tail is at least this long.
_MIN_NUMBER_TAIL = 6


@dataclass(frozen=True)
class Link:
    calls: tuple[str, str]  # Call-IDs, earlier call first
    by: str                 # one of BY_TRUST
    evidence: str


@dataclass
class CallGroup:
    id: str
    calls: list[Call]
    links: list[Link] = field(default_factory=list)


# Keys are kept in the order they appear (dicts, not sets), so the evidence a
# report names does not depend on string hashing: the CLI and the page agree.


def _session_uuids(call: Call) -> dict[str, None]:
    uuids: dict[str, None] = {}
    for message in call.messages:
        for value in message.header_values("session-id"):
            local, _, params = value.partition(";")
            for candidate in (local, parse_params(";" + params).get("remote", "")):
                uuid = candidate.strip().lower()
                if _UUID.fullmatch(uuid) and uuid != _NULL_UUID:
                    uuids[uuid] = None
    return uuids


def _icids(call: Call) -> dict[str, None]:
    icids: dict[str, None] = {}
    for message in call.messages:
        for value in message.header_values("p-charging-vector"):
            icid = parse_params(";" + value).get("icid-value")
            if icid:
                icids[icid] = None
    return icids


def _shared_ids(call: Call) -> dict[tuple[str, str], None]:
    return {(name, value.strip()): None for message in call.messages for name, value in message.headers
            if name in _SHARED_ID_HEADERS and value.strip()}


def _numbers(call: Call) -> tuple[dict[str, None], dict[str, None]]:
    """(dialled, calling) user parts of the dialog's initial INVITEs."""
    dialled: dict[str, None] = {}
    calling: dict[str, None] = {}
    for leg in call.legs:
        for transaction in leg.invites:
            invite = transaction.request
            for uri, into in ((invite.request_uri, dialled), (invite.to_uri, dialled), (invite.from_uri, calling)):
                user = uri_parts(uri)[0] if uri else None
                if user:
                    into[user.lower()] = None
    return dialled, calling


def _same_number(ours: dict[str, None], theirs: dict[str, None]) -> str | None:
    for a in ours:
        for b in theirs:
            if a == b:
                return a
            digits_a, digits_b = re.sub(r"\D", "", a), re.sub(r"\D", "", b)
            shorter = min(digits_a, digits_b, key=len)
            if len(shorter) >= _MIN_NUMBER_TAIL and (digits_a.endswith(shorter) and digits_b.endswith(shorter)):
                return shorter
    return None


class _Links:
    """The best link found for each pair of calls (by index), most trusted kept."""

    def __init__(self, calls: list[Call]):
        self.calls = calls
        self.best: dict[tuple[int, int], Link] = {}

    def add(self, a: int, b: int, by: str, evidence: str) -> None:
        if a == b:
            return
        a, b = min(a, b), max(a, b)
        known = self.best.get((a, b))
        if known is None or BY_TRUST.index(by) < BY_TRUST.index(known.by):
            self.best[(a, b)] = Link((self.calls[a].call_id, self.calls[b].call_id), by, evidence)

    def shared(self, keys: list[dict], by: str, describe) -> None:
        """Link every two calls that share a key."""
        holders: dict = {}
        for number, call_keys in enumerate(keys):
            for key in call_keys:
                holders.setdefault(key, []).append(number)
        for key, numbers in holders.items():
            for other in numbers[1:]:
                self.add(numbers[0], other, by, describe(key))


def _link_by_headers(links: _Links) -> None:
    by_call_id = {call.call_id: number for number, call in enumerate(links.calls)}
    for number, call in enumerate(links.calls):
        for message in call.messages:
            for name, value in message.headers:
                other = by_call_id.get(value.strip()) if name.startswith("x-") else None
                if other is not None:
                    links.add(number, other, "header", f"{name}: {value.strip()}")
    links.shared([_shared_ids(call) for call in links.calls], "header", lambda key: f"{key[0]}: {key[1]}")


def _link_by_media(links: _Links) -> None:
    """Dialogs whose announcements name one address while both are in force."""
    holders: dict[tuple[str, int], list] = {}
    for number, call in enumerate(links.calls):
        for announcement in call.timeline.announcements:
            for endpoint in announcement.endpoints:
                holders.setdefault(endpoint, []).append((announcement.time, announcement.until, number))
    for (ip, port), entries in holders.items():
        entries.sort()
        for index, (start, until, number) in enumerate(entries):
            for other_start, _, other in entries[index + 1:]:
                if other_start > until:
                    break
                links.add(number, other, "media", f"both SDPs name {hostport(ip, port)}")


def _link_by_time_and_numbers(links: _Links) -> None:
    calls = links.calls
    # The dialogs each host started, by the time of their first INVITE: a
    # flood of unanswered INVITEs stays cheap (no pair of calls is tried
    # unless one started from a host the other's INVITE reached).
    started: dict[str, list[tuple[float, int]]] = {}
    for number, call in enumerate(calls):
        started.setdefault(call.first_invite.src_ip, []).append((call.first_invite.time, number))
    for entries in started.values():
        entries.sort()
    numbers = [_numbers(call) for call in calls]
    for first, call in enumerate(calls):
        final = call.caller_leg.final
        pending_until = final.time if final is not None else call.timeline.end
        dialled, calling = numbers[first]
        received: dict[str, float] = {}  # host -> when it received one of this dialog's INVITEs
        for leg in call.legs:
            for transaction in leg.invites:
                received.setdefault(transaction.request.dst_ip, transaction.request.time)
        for host, since in received.items():
            entries = started.get(host, [])
            for time, second in entries[bisect.bisect_left(entries, (since, -1)):]:
                if time > pending_until:
                    break
                other_dialled, other_calling = numbers[second]
                number = _same_number(dialled, other_dialled) or _same_number(calling, other_calling)
                if second != first and number is not None:
                    links.add(first, second, "time_numbers",
                              f"{host} sent the second INVITE {time - since:.3f} s after receiving the first, "
                              f"before its final response; both for {number}")


def correlate(calls: list[Call]) -> list[CallGroup]:
    """The calls (in report order, with their media attached) grouped."""
    links = _Links(calls)
    links.shared([_session_uuids(call) for call in calls], "session_id", lambda uuid: f"Session-ID UUID {uuid}")
    links.shared([_icids(call) for call in calls], "icid", lambda icid: f"P-Charging-Vector icid-value {icid}")
    _link_by_headers(links)
    _link_by_media(links)
    _link_by_time_and_numbers(links)
    parent = list(range(len(calls)))

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in sorted(links.best):
        parent[max(root(a), root(b))] = min(root(a), root(b))
    groups: dict[int, CallGroup] = {}
    for number, call in enumerate(calls):
        group = groups.setdefault(root(number), CallGroup(f"G{len(groups) + 1}", []))
        group.calls.append(call)
    for (a, _), link in sorted(links.best.items()):
        groups[root(a)].links.append(link)
    return list(groups.values())


def label_rows(calls_rows: list[tuple[Call, dict]]) -> None:
    """Give each call row its group and the links that put it there."""
    rows = {id(call): row for call, row in calls_rows}
    for group in correlate([call for call, _ in calls_rows]):
        for call in group.calls:
            row = rows[id(call)]
            row["group"] = group.id
            row["group_links"] = [
                {"call_id": link.calls[1] if link.calls[0] == call.call_id else link.calls[0],
                 "by": link.by, "evidence": link.evidence}
                for link in group.links if call.call_id in link.calls]


def summary(rows: list[dict]) -> list[dict]:
    """The report's call_groups: each group's calls and how they were tied."""
    groups: dict[str, dict] = {}
    for row in rows:
        group = groups.setdefault(row["group"], {"id": row["group"], "calls": [], "kinds": set()})
        group["calls"].append(row["call_id"])
        group["kinds"].update(link["by"] for link in row["group_links"])
    return [{"id": g["id"], "calls": g["calls"],
             "correlated_by": ", ".join(k for k in BY_TRUST if k in g["kinds"]) or None}
            for g in groups.values()]
