"""DNS queries as report rows, RFC 3263 resolution chains, and DNS findings.

A phone that cannot resolve its registrar never sends a REGISTER, so when a
capture has no REGISTER the DNS traffic is the first place to look. Not every
failed lookup matters: RFC 3263 clients try NAPTR, then SRV, then A/AAAA, so a
NXDOMAIN on NAPTR is harmless when a later step yields an address. Findings
are therefore graded by whether the SIP domain resolved in the end.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..model import CaptureResult, DnsMessage, hostport
from ..protocols import sip
from .findings import Finding, counted

RCODE_NAMES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE",
}
SIP_SERVICE_PREFIXES = ("_sip._", "_sips._")
RESOLVING_TYPES = {"A", "AAAA", "SRV", "NAPTR"}
ADDRESS_TYPES = ("A", "AAAA")
SLOW_MS = 1000.0
# A query sent this close to the end of the capture may be answered just after it.
UNANSWERED_GRACE = 1.0


def _name(text: str | None) -> str:
    return (text or "").rstrip(".").lower()


@dataclass
class Lookup:
    """A query, the response paired with it in the report, and the one that answered it.

    Like Wireshark, a response pairs with the earliest unpaired query with its
    id, so a retransmitted query shows no response of its own; `answer` still
    records that the question was answered, which is what the findings judge.
    """

    query: DnsMessage
    response: DnsMessage | None = None
    answer: DnsMessage | None = None

    @property
    def rcode(self) -> str | None:
        return _rcode_name(self.answer)

    @property
    def qname(self) -> str:
        return _name(self.query.qname)

    def answer_data(self, rtype: str) -> list[str]:
        if self.answer is None:
            return []
        return [record.data for record in self.answer.answers if record.rtype == rtype]

    @property
    def state(self) -> str:
        """"ok" | "failed" | "empty" | "no_response"."""
        if self.answer is None:
            return "no_response"
        if self.rcode != "NOERROR":
            return "failed"
        return "ok" if self.answer_data(self.query.qtype or "") else "empty"


def _rcode_name(message: DnsMessage | None) -> str | None:
    if message is None:
        return None
    return RCODE_NAMES.get(message.rcode, f"RCODE{message.rcode}")


def match_lookups(result: CaptureResult) -> list[Lookup]:
    """Pair queries with later responses carrying their id, addresses and ports."""
    pending: dict[tuple, list[Lookup]] = {}
    lookups = []
    for message in sorted(result.dns_messages, key=lambda m: (m.time, m.frame)):
        if not message.is_response:
            lookup = Lookup(message)
            lookups.append(lookup)
            key = (message.id, message.src_ip, message.src_port, message.dst_ip, message.dst_port)
            pending.setdefault(key, []).append(lookup)
            continue
        key = (message.id, message.dst_ip, message.dst_port, message.src_ip, message.src_port)
        waiting = [
            l for l in pending.get(key, [])
            if l.answer is None and (message.qname is None or _name(message.qname) == l.qname)
        ]
        if waiting:
            waiting[0].response = message
        for lookup in waiting:
            lookup.answer = message
    return lookups


def _row(lookup: Lookup) -> dict:
    query, response = lookup.query, lookup.response
    return {
        "frame": query.frame,
        "time": query.time,
        "qname": query.qname,
        "qtype": query.qtype,
        "rcode": _rcode_name(response),
        "answers": len(response.answers) if response else 0,
        "response_frame": response.frame if response else None,
        "response_ms": round((response.time - query.time) * 1000, 3) if response else None,
        # extras for the page
        "client": hostport(query.src_ip, query.src_port),
        "server": hostport(query.dst_ip, query.dst_port),
        "answer_data": [f"{r.rtype} {r.data}" for r in response.answers] if response else [],
        "answered_by": lookup.answer.frame if lookup.answer else None,
    }


# ---------------------------------------------------------------- which names are SIP's


def _uri_host(uri: str | None) -> str | None:
    """Host name of a sip:/sips: URI; None for IP literals and other schemes (nothing to look up)."""
    if not uri or not uri.strip().strip("<>").lower().startswith(("sip:", "sips:")):
        return None
    host = sip.uri_parts(uri)[1]
    if not host or _is_ip_literal(host):
        return None
    return _name(host)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _sip_domain_of_service(qname: str) -> str | None:
    """'_sip._udp.example.com' -> 'example.com'."""
    if qname.startswith(SIP_SERVICE_PREFIXES):
        parts = qname.split(".", 2)
        return parts[2] if len(parts) == 3 else None
    return None


def _srv_target(data: str) -> str | None:
    parts = data.split()
    return _name(parts[3]) if len(parts) == 4 else None


def _naptr_replacement(data: str) -> str | None:
    parts = data.split()
    return _name(parts[-1]) if parts and parts[-1] != "." else None


def sip_names(result: CaptureResult, lookups: list[Lookup]) -> set[str]:
    """Host names the SIP traffic uses or the SIP DNS records point at."""
    names: set[str] = set()
    # Each distinct URI is read once: a busy capture repeats a few thousand
    # URIs over hundreds of thousands of messages.
    seen: set[str | None] = set()
    for message in result.sip_messages:
        for uri in (message.request_uri, message.from_uri, message.to_uri, *(c.uri for c in message.contacts)):
            if uri not in seen:
                seen.add(uri)
                host = _uri_host(uri)
                if host:
                    names.add(host)
    for lookup in lookups:
        domain = _sip_domain_of_service(lookup.qname)
        if domain:
            names.add(domain)
            names.update(t for t in map(_srv_target, lookup.answer_data("SRV")) if t)
        if lookup.query.qtype == "NAPTR":
            names.add(lookup.qname)
    return names


def _is_sip_related(lookup: Lookup, names: set[str], any_sip: bool) -> bool:
    qtype = lookup.query.qtype
    if not any_sip:
        return qtype in RESOLVING_TYPES
    if qtype == "NAPTR":
        return True
    if qtype == "SRV":
        return lookup.qname.startswith(SIP_SERVICE_PREFIXES)
    return qtype in ADDRESS_TYPES and lookup.qname in names


# ---------------------------------------------------------------- RFC 3263 chains


def _step(kind: str, lookups: list[Lookup]) -> dict:
    """One chain step: the lookups of one kind and how the best of them went."""
    states = [l.state for l in lookups]
    state = next((s for s in ("ok", "empty", "failed", "no_response") if s in states), "not_queried")
    return {
        "step": kind,
        "names": sorted({l.qname for l in lookups}),
        "state": state,
        "rcodes": sorted({l.rcode for l in lookups if l.rcode}),
        "answers": sorted({d for l in lookups for d in l.answer_data(l.query.qtype or "")}),
        "frames": sorted({f for l in lookups for f in (l.query.frame, l.answer.frame if l.answer else None) if f}),
    }


def _chain_domains(lookups: list[Lookup], names: set[str]) -> list[str]:
    """Domains a client tried to resolve for SIP, in order of the first lookup."""
    targets = {t for l in lookups for t in map(_srv_target, l.answer_data("SRV")) if t}
    domains: list[str] = []
    for lookup in lookups:
        qtype = lookup.query.qtype
        if qtype == "NAPTR":
            domain = lookup.qname
        elif qtype == "SRV":
            domain = _sip_domain_of_service(lookup.qname)
        elif qtype in ADDRESS_TYPES and lookup.qname in names and lookup.qname not in targets:
            domain = lookup.qname
        else:
            domain = None
        if domain and domain not in domains:
            domains.append(domain)
    return domains


def _chain(domain: str, lookups: list[Lookup]) -> dict:
    naptr = [l for l in lookups if l.query.qtype == "NAPTR" and l.qname == domain]
    services = {r for l in naptr for r in map(_naptr_replacement, l.answer_data("NAPTR")) if r}
    srv = [
        l for l in lookups
        if l.query.qtype == "SRV" and (l.qname in services or _sip_domain_of_service(l.qname) == domain)
    ]
    targets = {t for l in srv for t in map(_srv_target, l.answer_data("SRV")) if t}
    # Without SRV answers RFC 3263 falls back to the domain's own A/AAAA records.
    hosts = targets or {domain}
    addresses = [l for l in lookups if l.query.qtype in ADDRESS_TYPES and l.qname in hosts]
    steps = [_step("NAPTR", naptr), _step("SRV", srv), _step("A/AAAA", addresses)]
    resolved = sorted({d for l in addresses for t in ADDRESS_TYPES for d in l.answer_data(t)})
    tried = [s for s in steps if s["state"] != "not_queried"]
    last = tried[-1] if tried else None
    failed = None if resolved or (last and last["state"] == "ok") else last
    if resolved:
        outcome = "resolved"
    elif failed is None and last is not None:
        # The last step answered but the capture holds no lookup for the next:
        # the client had it cached, or the capture stopped. Not a failure.
        outcome = "incomplete"
    else:
        outcome = "failed"
    return {
        "domain": domain,
        "steps": steps,
        "addresses": resolved,
        "outcome": outcome,
        "failed_step": failed["step"] if failed else None,
        "failure": failed["state"] if failed else None,
        "answered_up_to": last["step"] if outcome == "incomplete" else None,
    }


def resolution_chains(result: CaptureResult) -> list[dict]:
    lookups = match_lookups(result)
    names = sip_names(result, lookups)
    return [_chain(domain, lookups) for domain in _chain_domains(lookups, names)]


# ---------------------------------------------------------------- findings


_STATE_FINDINGS = {
    "failed": ("DNS_FAILURE", "answered {rcode}"),
    "empty": ("DNS_EMPTY_ANSWER", "answered with no records"),
    "no_response": ("DNS_NO_RESPONSE", "never answered"),
}


def analyze(result: CaptureResult) -> tuple[list[dict], list[Finding]]:
    lookups = match_lookups(result)
    names = sip_names(result, lookups)
    any_sip = bool(result.sip_messages)
    chains = [_chain(domain, lookups) for domain in _chain_domains(lookups, names)]
    resolved = {n for c in chains if c["outcome"] == "resolved" for s in c["steps"] for n in s["names"]}
    # The SIP domain each name was looked up for: the lookups of one domain share their cause.
    domain_of = {n: c["domain"] for c in reversed(chains) for s in c["steps"] for n in s["names"]}
    capture_end = result.capture.last_time or max((l.query.time for l in lookups), default=0.0)

    groups: dict[tuple, list[Lookup]] = {}
    for lookup in lookups:
        state = lookup.state
        if state == "no_response" and capture_end - lookup.query.time < UNANSWERED_GRACE:
            continue
        sip_related = _is_sip_related(lookup, names, any_sip)
        if state in ("failed", "no_response") or (state == "empty" and sip_related):
            groups.setdefault((state, lookup.qname, lookup.query.qtype, lookup.rcode, sip_related), []).append(lookup)

    findings = [
        _lookup_finding(state, qname, qtype, rcode, sip_related, members, qname in resolved, domain_of.get(qname))
        for (state, qname, qtype, rcode, sip_related), members in groups.items()
    ]
    findings += _slow_findings(lookups)
    findings += _unasked_failures(result, lookups, names, resolved, domain_of)
    has_register = any(m.method == "REGISTER" for m in result.sip_messages)
    # A failure the RFC 3263 fallback got past cannot be why no REGISTER was sent.
    suspects = [l for key, members in groups.items() if key[-1] and key[1] not in resolved for l in members]
    if not has_register and suspects:
        findings.append(_no_register_suspect(suspects, chains))
    return [_row(l) for l in lookups], findings


def _condition_and_cause(state: str, qname: str, rcode: str | None, sip_related: bool, fell_back: bool,
                         domain: str | None) -> tuple[str, str]:
    """The condition that sets a lookup finding's severity, and the cause its lookups share:
    every lookup for one SIP domain that failed the same way is one cause."""
    verb = _STATE_FINDINGS[state][1].format(rcode=rcode)
    if not sip_related:
        return "not_sip", f"DNS {qname} {verb}"
    if fell_back:
        return "fallback", f"SIP domain {domain or qname}: lookups {verb}, resolved through another RFC 3263 step"
    return "sip_unresolved", f"SIP domain {domain or qname} does not resolve: lookups {verb}"


def _lookup_links(qname: str, qtype: str | None) -> set[tuple]:
    return {("lookup", (qname, qtype))}


def _lookup_finding(state, qname, qtype, rcode, sip_related, members: list[Lookup], fell_back: bool,
                    domain: str | None) -> Finding:
    code, verb = _STATE_FINDINGS[state]
    condition, cause = _condition_and_cause(state, qname, rcode, sip_related, fell_back, domain)
    server = hostport(members[0].query.dst_ip, members[0].query.dst_port)
    meaning = {
        "NXDOMAIN": "the name does not exist (typo, or the record was never published)",
        "SERVFAIL": "the resolver could not get an answer (broken delegation, DNSSEC failure, unreachable authoritative servers)",
        "REFUSED": "the server will not answer this client (wrong resolver, or recursion not allowed)",
    }.get(rcode or "", "")
    explanation = {
        "failed": f"{server} answered {rcode} for {qname} {qtype}" + (f": {meaning}." if meaning else "."),
        "empty": f"{server} says {qname} exists but has no {qtype} records.",
        "no_response": f"{counted(len(members), 'query', 'queries')} to {server} for {qname} {qtype} got no answer: the resolver is "
        "unreachable, a firewall drops DNS, or the capture misses the replies.",
    }[state]
    if fell_back:
        explanation += " The SIP domain still resolved through another RFC 3263 step, so this is the normal fallback."
    elif sip_related:
        explanation += " The name is part of the SIP setup, so a phone depending on it cannot find its server."
    return Finding(
        code=code,
        condition=condition,
        cause=cause,
        subject={"kind": "lookup", "lookup": f"{qtype} {qname}"},
        links=_lookup_links(qname, qtype),
        summary=f"DNS {qtype} {qname} {verb.format(rcode=rcode)}" + (f" ({len(members)}x)" if len(members) > 1 else ""),
        explanation=explanation,
        next_steps=[
            f"Query it yourself from the phone's network: dig {qtype} {qname} @{members[0].query.dst_ip}",
            "Check the spelling of the SIP domain/registrar host and that its SRV/A records are published",
            "Check that the phone uses the intended DNS resolver",
        ],
        frames=[f for l in members for f in (l.query.frame, l.answer.frame if l.answer else None) if f],
        details={"qname": qname, "qtype": qtype, "rcode": rcode, "server": server, "sip_related": sip_related, "count": len(members)},
    )


def _unasked_failures(result: CaptureResult, lookups: list[Lookup], names: set[str], resolved: set[str],
                      domain_of: dict[str, str]) -> list[Finding]:
    """Failure answers whose query the capture missed (it started a moment too late): still worth saying,
    and judged as if their query were there."""
    answered = {l.answer.frame for l in lookups if l.answer}
    findings = []
    for message in result.dns_messages:
        rcode = _rcode_name(message)
        if not message.is_response or message.frame in answered or rcode in (None, "NOERROR"):
            continue
        qname, server = _name(message.qname), hostport(message.src_ip, message.src_port)
        sip_related = _is_sip_related(Lookup(message), names, bool(result.sip_messages))
        condition, cause = _condition_and_cause("failed", qname, rcode, sip_related, qname in resolved,
                                                domain_of.get(qname))
        findings.append(Finding(
            code="DNS_FAILURE",
            condition=condition,
            cause=cause,
            subject={"kind": "lookup", "lookup": f"{message.qtype} {qname}"},
            links=_lookup_links(qname, message.qtype),
            summary=f"DNS {message.qtype} {qname} answered {rcode} (its query is not in the capture)",
            explanation=f"{server} answered {rcode} for {qname} {message.qtype} to "
            f"{hostport(message.dst_ip, message.dst_port)}. The query itself came before the capture started.",
            next_steps=[f"Query it yourself from the client's network: dig {message.qtype} {qname} @{message.src_ip}",
                        "Start the capture before the device resolves its servers (e.g. before rebooting the phone)"],
            frames=[message.frame],
            details={"qname": qname, "qtype": message.qtype, "rcode": rcode, "server": server, "sip_related": sip_related},
        ))
    return findings


def _slow_findings(lookups: list[Lookup]) -> list[Finding]:
    slow = [l for l in lookups if l.response is not None and (l.response.time - l.query.time) * 1000 > SLOW_MS]
    if not slow:
        return []
    worst = max(slow, key=lambda l: l.response.time - l.query.time)
    worst_ms = round((worst.response.time - worst.query.time) * 1000)
    return [
        Finding(
            code="DNS_SLOW",
            condition="slow",
            summary=f"{counted(len(slow), 'DNS answer')} took over {int(SLOW_MS)} ms (worst {worst_ms} ms for {worst.qname})",
            explanation=(
                "Slow name resolution delays every registration and call that needs it; several slow steps in an "
                "RFC 3263 chain add up and can push a phone past its timeouts."
            ),
            next_steps=["Check the resolver's load and upstream reachability", "Consider a closer or caching resolver"],
            frames=[f for l in slow for f in (l.query.frame, l.response.frame)],
            details={"worst_ms": worst_ms, "count": len(slow)},
        )
    ]


def _no_register_suspect(suspects: list[Lookup], chains: list[dict]) -> Finding:
    failed_chains = [c for c in chains if c["outcome"] == "failed"]
    lookups = dict.fromkeys(f"{l.qname} {l.query.qtype} ({l.rcode or 'no answer'})" for l in suspects)
    described = ", ".join(list(lookups)[:5])
    return Finding(
        code="NO_REGISTER_DNS_SUSPECT",
        condition="no_register",
        summary=f"No REGISTER in the capture and SIP-related DNS lookups failed: {described}",
        explanation=(
            "The capture contains no REGISTER at all, and lookups the phone needs to find its registrar failed. "
            "A phone that cannot resolve its registrar (or the SRV/NAPTR records pointing at it) never sends a "
            "REGISTER, so name resolution is the first thing to fix."
            + (
                " Resolution stopped at: "
                + "; ".join(f"{c['domain']} at {c['failed_step']} ({c['failure']})" for c in failed_chains)
                + "."
                if failed_chains
                else ""
            )
        ),
        next_steps=[
            "Check the SIP domain/registrar name configured on the phone for typos",
            "Check the resolver the phone uses, and the domain's NAPTR/SRV/A records",
            "If DNS is fine, capture closer to the phone: it may not be trying to register at all",
        ],
        frames=[f for l in suspects for f in (l.query.frame, l.answer.frame if l.answer else None) if f],
        details={"failed_chains": [c["domain"] for c in failed_chains]},
        links={link for l in suspects for link in _lookup_links(l.qname, l.query.qtype)},
    )
