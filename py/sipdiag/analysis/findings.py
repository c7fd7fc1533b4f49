"""The diagnosis vocabulary, and how findings become a diagnosis.

The analyses emit one `Finding` per thing they judge: a call, a registration,
a lookup, a destination. `diagnose` turns those instances into what a reader
needs: one finding per cause with its instances counted and named, the
severity its condition sets (`SEVERITIES`, the one table docs/DESIGN.md
repeats), and a cause that explains other findings leading them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

# Each code's severity is a function of the condition that raised it, and of
# nothing else (not of the capture it came from). code -> condition ->
# (severity, when the condition holds). docs/DESIGN.md lists the same table;
# tests/test_diagnosis.py holds the two equal.
SEVERITIES: dict[str, dict[str, tuple[str, str]]] = {
    "CALL_FAILED": {
        "busy_or_declined": ("warning", "final 486, 600 or 603 to the INVITE: the callee was busy or declined"),
        "refused": ("error", "any other final 4xx-6xx to the INVITE"),
    },
    "CALL_CODEC_MISMATCH": {"no_common_codec": ("error", "488/606, or offer and answer share no voice codec")},
    "CALL_NO_RESPONSE": {"no_response": ("error", "the INVITE got no response at all")},
    "CALL_NO_ACK": {
        "late_ack": ("warning", "the 2xx was repeated, then the ACK came"),
        "no_ack": ("error", "no ACK for the 2xx while the capture went on long enough to show it"),
    },
    "CALL_CANCEL_RACE": {"answered_anyway": ("warning", "a CANCEL crossed the 200 OK")},
    "CALL_CANCEL_UNANSWERED": {"not_confirmed": ("warning", "a CANCEL got no 200 OK")},
    "SDP_PRIVATE_ADDRESS": {"private_behind_nat": ("warning", "an SDP c= or Contact address is unroutable while the message came from elsewhere")},
    "RTP_MISSING": {
        "signalling_only_capture": ("warning", "an answered call without RTP in a capture holding no RTP of any call"),
        "no_rtp_for_call": ("error", "an answered call without RTP while other RTP is in the capture"),
    },
    "RTP_ONE_WAY": {"one_direction": ("error", "an answered call with RTP in one direction only while its SDP expected both")},
    "RTP_PORT_MISMATCH": {"unannounced_port": ("warning", "RTP sent to an announced host on a port no SDP announced")},
    "REG_CHALLENGE_OK": {"healthy": ("info", "a 401/407, credentials, then 200 OK")},
    "REG_AUTH_FAILED": {
        "recovered": ("warning", "credentials were challenged again, and a later attempt of the sequence succeeded"),
        "not_recovered": ("error", "credentials were challenged again and no later attempt succeeded"),
    },
    "REG_REJECTED": {"rejected": ("error", "a final 3xx-6xx other than 401/407 to a REGISTER")},
    "REG_NO_RESPONSE": {"no_response": ("error", "a REGISTER got no response at all")},
    "REG_EXPIRES_REDUCED": {"reduced": ("info", "the registrar granted a shorter expiry than requested")},
    "REG_LAPSED": {"lapsed": ("error", "a granted binding ran out inside the capture without a refresh")},
    "REG_DEREGISTERED": {"deregistered": ("info", "a REGISTER with Expires 0 was accepted")},
    "REG_NAT_SUSPECT": {"private_contact": ("warning", "a REGISTER's Contact or Via is unroutable while it came from elsewhere")},
    "REG_RATE_LIMIT_SUSPECT": {"successes_then_failures": ("warning", "the first registrations to a registrar succeed, all later ones fail with 403/408/503 or silence")},
    "REG_BURST": {"burst": ("info", "at least 10 new REGISTER transactions to one registrar within a second")},
    "DNS_FAILURE": {
        "sip_unresolved": ("error", "NXDOMAIN/SERVFAIL/REFUSED/... for a SIP-related name that did not resolve otherwise"),
        "fallback": ("info", "the same, but the SIP domain resolved through another RFC 3263 step"),
        "not_sip": ("info", "the same for a name the SIP traffic does not use"),
    },
    "DNS_EMPTY_ANSWER": {
        "sip_unresolved": ("warning", "NOERROR without records for a SIP-related name that did not resolve otherwise"),
        "fallback": ("info", "the same, but the SIP domain resolved through another RFC 3263 step"),
    },
    "DNS_NO_RESPONSE": {
        "sip_unresolved": ("warning", "no answer for a SIP-related name that did not resolve otherwise"),
        "fallback": ("info", "the same, but the SIP domain resolved through another RFC 3263 step"),
        "not_sip": ("info", "no answer for a name the SIP traffic does not use"),
    },
    "DNS_SLOW": {"slow": ("warning", "a DNS answer took over 1000 ms")},
    "NO_REGISTER_DNS_SUSPECT": {"no_register": ("error", "no REGISTER in the capture and a SIP-related lookup failed")},
    "ICMP_UNREACHABLE": {"unreachable": ("error", "an ICMP error quotes a packet sent where SIP was sent")},
    "TCP_CONNECT_FAILED": {"not_established": ("error", "a TCP connect toward a SIP server was refused or never answered")},
    "TLS_SIGNALING": {
        "tls_only": ("warning", "SIP over TLS and no plain-text SIP in the capture"),
        "tls_beside_plain": ("info", "SIP over TLS beside plain-text SIP"),
    },
    "SIP_MALFORMED_MESSAGE": {"missing_header": ("warning", "a message lacks (or has unreadable) Via, From, To, Call-ID or CSeq")},
}

# Causes that explain other findings: leader code -> explained code -> the
# kind of link (Finding.links) both must share. A leader is never explained
# itself, so the diagnosis is at most two levels deep.
EXPLAINS: dict[str, dict[str, str]] = {
    # No name, no server: a phone that cannot resolve its registrar never registers.
    "DNS_FAILURE": {"NO_REGISTER_DNS_SUSPECT": "lookup"},
    "DNS_EMPTY_ANSWER": {"NO_REGISTER_DNS_SUSPECT": "lookup"},
    "DNS_NO_RESPONSE": {"NO_REGISTER_DNS_SUSPECT": "lookup"},
    # The request never reached a SIP application, so no response could come.
    "ICMP_UNREACHABLE": {"REG_NO_RESPONSE": "destination", "CALL_NO_RESPONSE": "destination"},
    # A 488/606 for want of a common codec is the call's failure.
    "CALL_CODEC_MISMATCH": {"CALL_FAILED": "final_response"},
    # Media or the ACK sent to an address nobody outside can reach goes nowhere.
    "SDP_PRIVATE_ADDRESS": {"RTP_ONE_WAY": "media", "RTP_MISSING": "media", "CALL_NO_ACK": "contact"},
    # Refused credentials, again and again, then 403: the account got locked.
    "REG_AUTH_FAILED": {"REG_REJECTED": "lockout"},
    # The registrar's limiter is why the later registrations fail (403/408/503 or silence).
    "REG_RATE_LIMIT_SUSPECT": {"REG_REJECTED": "rate_limit", "REG_NO_RESPONSE": "rate_limit"},
}

# How a count of instances reads when their kind does not say it.
_NOUNS = {"call_id": "Call-ID", None: "occurrence"}


@dataclass
class Finding:
    """One instance: one thing the engineer should know about one call,
    registration, lookup or destination."""

    code: str  # e.g. "REG_AUTH_FAILED" (see ../shared/spec/report.md)
    condition: str  # the condition that raised it: a key of SEVERITIES[code]
    summary: str  # one line
    explanation: str  # plain words: what it means and why it is likely
    next_steps: list[str]
    frames: list[int]  # evidence, frame numbers as Wireshark counts them
    call_id: str | None = None
    status: int | None = None
    details: dict = field(default_factory=dict)  # extra facts, JSON-able
    # Instances of one code and condition with the same cause (one line, fit
    # to head several of them) are one finding; None: the summary is the cause.
    cause: str | None = None
    # What the instance is about: {"kind": "call" | "registration" | "lookup" |
    # "destination" | "call_id", "name": how a reader knows it when the summary
    # does not say, and its identity fields}.
    subject: dict = field(default_factory=dict)
    links: set[tuple] = field(default_factory=set)  # (kind, value) shared with the findings it explains or is explained by

    @property
    def severity(self) -> str:
        return SEVERITIES[self.code][self.condition][0]

    def instance(self) -> dict:
        """The instance as the report lists it: what it is about, named, and its evidence."""
        name = self.subject.get("name")
        document = {key: value for key, value in self.subject.items() if key not in ("kind", "name")}
        if self.call_id is not None:
            document["call_id"] = self.call_id
        document["summary"] = f"{name}: {self.summary}" if name else self.summary
        document["frames"] = sorted(set(self.frames))
        if self.status is not None:
            document["status"] = self.status
        return document


def call_subject(call_id: str, from_uri: str | None, to_uri: str | None) -> dict:
    """A call named as a reader tells it from others: the same two parties may call twice."""
    return {"kind": "call", "name": f"Call from {from_uri or '?'} to {to_uri or '?'} (Call-ID {call_id})"}


def registration_subject(aor: str | None, client: str, registrar: str) -> dict:
    """A registration row's identity; its findings' summaries name the AOR they are about
    (a UA may register several under one Call-ID)."""
    return {"kind": "registration", "registration": {"aor": aor, "client": client, "registrar": registrar}}


def ordered(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; within a severity by first evidence."""
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], min(f.frames, default=0), f.code))


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """'1 time', '3 times', '2 queries': findings are read by people."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


@dataclass
class _Cause:
    """The instances of one cause, and the causes it explains."""

    instances: list[Finding]
    explains: list[_Cause] = field(default_factory=list)
    leader: _Cause | None = None

    @property
    def first(self) -> Finding:
        return self.instances[0]

    @cached_property
    def links(self) -> set[tuple]:  # asked once the instances are all in
        return {link for finding in self.instances for link in finding.links}

    def sort_key(self) -> tuple:
        return (SEVERITY_ORDER[self.first.severity], min(f for i in self.instances for f in i.frames or [0]), self.first.code)


def diagnose(findings: list[Finding]) -> list[dict]:
    """The report's findings: one per cause, each cause that explains others
    directly followed by them, the causes in order of the most severe finding
    they lead, then of their own severity and first evidence."""
    causes: dict[tuple, _Cause] = {}
    for finding in ordered(findings):
        key = (finding.code, finding.condition, finding.cause or finding.summary)
        if key not in causes:
            causes[key] = _Cause([])
        causes[key].instances.append(finding)
    groups = sorted(causes.values(), key=_Cause.sort_key)
    position = {id(group): index for index, group in enumerate(groups)}
    # Leaders by (code, link), in order: a capture of thousands of calls has thousands of causes,
    # so each explained one looks only at the leaders its first instance links to.
    leaders: dict[tuple, list[_Cause]] = {}
    for group in groups:
        if group.first.code in EXPLAINS:
            for link in group.links:
                leaders.setdefault((group.first.code, link), []).append(group)
    for explained in groups:
        candidates = [leader for code, targets in EXPLAINS.items() if explained.first.code in targets
                      for link in explained.first.links if link[0] == targets[explained.first.code]
                      for leader in leaders.get((code, link), [])]
        leader = min((c for c in candidates if _explains(c, explained)), key=lambda c: position[id(c)], default=None)
        if leader is not None:
            explained.leader = leader
            leader.explains.append(explained)

    def tree_key(cause: _Cause) -> tuple:
        worst = min(SEVERITY_ORDER[c.first.severity] for c in [cause] + cause.explains)
        return (worst,) + cause.sort_key()

    order = []
    for leader in sorted((g for g in groups if g.leader is None), key=tree_key):
        order += [leader] + leader.explains
    ids = {id(cause): f"F{number}" for number, cause in enumerate(order, 1)}
    return [_document(cause, ids) for cause in order]


def _explains(leader: _Cause, explained: _Cause) -> bool:
    """Whether every instance of `explained` shares a link of the rule's kind with `leader`."""
    kind = EXPLAINS.get(leader.first.code, {}).get(explained.first.code)
    if kind is None:
        return False
    return all(any(link[0] == kind and link in leader.links for link in finding.links) for finding in explained.instances)


def _common(values: list):
    return values[0] if len(set(values)) == 1 else None


def _document(cause: _Cause, ids: dict[int, str]) -> dict:
    instances = cause.instances
    first = cause.first
    count = len(instances)
    if count == 1:
        summary = first.instance()["summary"]
    else:
        kind = first.subject.get("kind")
        noun = _NOUNS.get(kind, kind)
        summary = f"{first.cause or first.summary} ({counted(count, noun)})"
    explanations = [f.explanation for f in instances]
    document = {
        "id": ids[id(cause)],
        "code": first.code,
        "severity": first.severity,
        "condition": first.condition,
        "summary": summary,
        "explanation": first.explanation,
        "next_steps": list(dict.fromkeys(step for f in instances for step in f.next_steps)),
        "frames": sorted({frame for f in instances for frame in f.frames}),
        "count": count,
        "instances": [],
    }
    differ = _common(explanations) is None
    for finding in instances:
        instance = finding.instance()
        if differ:
            instance["explanation"] = finding.explanation  # each instance says its own
        if count > 1 and finding.details:
            instance["details"] = finding.details
        document["instances"].append(instance)
    call_id = _common([f.call_id for f in instances])
    if call_id is not None:
        document["call_id"] = call_id
    status = _common([f.status for f in instances])
    if status is not None:
        document["status"] = status
    if count == 1 and first.details:
        document["details"] = first.details
    if cause.explains:
        document["explains"] = [ids[id(c)] for c in cause.explains]
    if cause.leader is not None:
        document["explained_by"] = ids[id(cause.leader)]
    return document
