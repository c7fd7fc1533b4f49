"""Registration findings: what a support engineer reads about each registration.

Each finding carries the summary, explanation and next steps for one problem
(or one healthy pattern worth confirming), built from the sequences and
attempts that `registration` groups and judges. It is kept apart so that the
wording and the rules that pick a finding can change without touching how
REGISTERs are grouped, which also feeds the report's rows. `analyze` runs
both.
"""

from __future__ import annotations

from ..model import CaptureResult, SipMessage, hostport
from ..protocols import sip
from . import network_path
from .findings import Finding, counted, registration_subject
from .registration import (
    CHALLENGE_CODES,
    Attempt,
    Refreshes,
    Sequence,
    challenge_header,
    credentials,
    digests,
    granted_expires,
    is_deregistration,
    judged_sequences,
    requested_expires,
)

_STANDARD_CHALLENGE_REASONS = {"unauthorized", "proxy authentication required"}
# Several failed credential attempts before a 403 suggest the account got locked.
LOCKOUT_AFTER_FAILURES = 2
# The rate-limit pattern needs a few successes before the failures start.
RATE_LIMIT_MIN_SUCCESSES = 2
RATE_LIMIT_MIN_FAILURES = 2
RATE_LIMIT_STATUSES = {403, 408, 503}
# New REGISTER transactions per second toward one registrar worth mentioning.
BURST_PER_SECOND = 10


def analyze(result: CaptureResult) -> tuple[list[dict], list[Finding]]:
    """The registrations' report rows and every finding about them."""
    sequences, rows, capture_end = judged_sequences(result)
    refreshes = Refreshes(sequences)
    findings: list[Finding] = []
    for sequence, row in zip(sequences, rows):
        about_sequence = sequence_findings(result, sequence, row, refreshes, capture_end)
        subject = registration_subject(row["aor"], row["client"], row["registrar"])
        for finding in about_sequence:
            finding.subject = subject
        findings += about_sequence
    findings += registrar_pattern_findings(sequences)
    return rows, findings


def _where(sequence: Sequence, attempt: Attempt | None = None) -> str:
    """'AOR from client to registrar'; a UA may register several AORs under one Call-ID."""
    message = attempt.transactions[0].first if attempt else sequence.first_message
    return f"{message.to_uri or '?'} from {sequence.client} to {sequence.registrar}"


def sequence_findings(result, sequence: Sequence, row: dict, refreshes: Refreshes, capture_end: float) -> list[Finding]:
    where = _where(sequence)
    findings: list[Finding] = []
    attempts = sequence.attempts
    healthy = [a for a in attempts if a.outcome in ("registered", "unregistered") and len(a.transactions) > 1]
    if healthy:
        findings.append(_challenge_ok(sequence, _where(sequence, healthy[0]), healthy))
    failed_auth = [a for a in attempts if a.outcome == "auth_failed"]
    if failed_auth:
        findings.append(_auth_failed(sequence, _where(sequence, failed_auth[-1]), failed_auth))
    for status, rejected in _group_by_status(a for a in attempts if a.outcome == "rejected").items():
        findings.append(_rejected(sequence, _where(sequence, rejected[0]), status, rejected))
    silent = [a for a in attempts if a.outcome == "no_response"]
    if silent:
        findings.append(_no_response(result, sequence, _where(sequence, silent[0]), silent))
    findings += _expiry_findings(sequence, row, where, refreshes, capture_end)
    nat = _nat_hint(sequence, where)
    if nat:
        findings.append(nat)
    return findings


def _group_by_status(attempts) -> dict[int, list[Attempt]]:
    groups: dict[int, list[Attempt]] = {}
    for attempt in attempts:
        groups.setdefault(attempt.final.status, []).append(attempt)
    return groups


def _challenge_ok(sequence: Sequence, where: str, healthy: list[Attempt]) -> Finding:
    first = healthy[0]
    kinds = sorted({t.final.status for t in first.transactions[:-1]})
    return Finding(
        code="REG_CHALLENGE_OK",
        condition="healthy",
        cause=f"Registrations to {sequence.registrar}: challenged ({'/'.join(map(str, kinds))}) then accepted",
        summary=f"Registration of {where}: challenged ({'/'.join(map(str, kinds))}) then accepted",
        explanation=(
            "The registrar asked for credentials, the phone answered the challenge and the registrar "
            "accepted it with 200 OK. This challenge-response exchange is the normal way SIP "
            "authenticates; the challenge itself is not an error."
            + (f" It happened {len(healthy)} times in this sequence (refreshes)." if len(healthy) > 1 else "")
        ),
        next_steps=["Nothing to fix here; check the granted expiry matches how often the phone refreshes"],
        frames=first.frames,
        call_id=sequence.call_id,
        status=first.final.status,
    )


def _auth_hints(attempt: Attempt) -> list[str]:
    """What the headers show about why credentials were refused."""
    hints: list[str] = []
    stale = 0
    for previous, current in zip(attempt.transactions, attempt.transactions[1:]):
        challenge_status = previous.final.status
        challenges = digests(previous.final, challenge_header(challenge_status))
        answer = credentials(current.request)
        if not challenges or answer is None:
            continue
        offered = challenges[0].params
        used = answer.params
        if used.get("realm") is not None and offered.get("realm") is not None and used["realm"] != offered["realm"]:
            hints.append(f"realm mismatch: challenge realm \"{offered['realm']}\", credentials realm \"{used['realm']}\"")
        offered_algorithms = {(c.params.get("algorithm") or "MD5").upper() for c in challenges}
        used_algorithm = (used.get("algorithm") or "MD5").upper()
        if used_algorithm not in offered_algorithms:
            hints.append(f"algorithm mismatch: offered {', '.join(sorted(offered_algorithms))}, used {used_algorithm}")
        if used.get("nonce") is not None and offered.get("nonce") is not None and used["nonce"] != offered["nonce"]:
            hints.append("the credentials answer an older nonce than the latest challenge")
        username = used.get("username")
        if username is not None:
            if username != username.strip() or any(ch.isspace() for ch in username):
                hints.append(f"username {username!r} contains whitespace")
            if "@" in username or username.lower().startswith("sip"):
                hints.append(f"username {username!r} looks like a full SIP URI; registrars usually expect only the user part")
        if challenge_status == 407 and current.request.header("proxy-authorization") is None:
            hints.append("407 (proxy) challenge answered with Authorization instead of Proxy-Authorization")
        if challenge_status == 401 and current.request.header("authorization") is None:
            hints.append("401 challenge answered with Proxy-Authorization instead of Authorization")
    for transaction in attempt.transactions:
        final = transaction.final
        if final is not None and final.status in CHALLENGE_CODES and transaction.has_credentials:
            # Registrars often put the real reason in the phrase ("nonce has changed", "wrong password").
            if final.reason and final.reason.lower() not in _STANDARD_CHALLENGE_REASONS:
                hints.append(f"the registrar's reason phrase says \"{final.reason}\"")
            if any((c.params.get("stale") or "").lower() == "true" for c in digests(final, challenge_header(final.status))):
                stale += 1
    if stale >= 2:
        hints.append(f"stale=true repeated {stale} times: the phone keeps reusing expired nonces (nonce loop)")
    if any(t.final.status == 407 for t in attempt.transactions if t.final is not None):
        hints.append("challenges are 407 Proxy Authentication Required: a proxy, not the registrar, asks for credentials")
    return list(dict.fromkeys(hints))


def _auth_failed(sequence: Sequence, where: str, failed: list[Attempt]) -> Finding:
    hints: list[str] = []
    for attempt in failed:
        hints += _auth_hints(attempt)
    hints = list(dict.fromkeys(hints))
    recovered = sequence.outcome in ("registered", "unregistered")
    frames = [f for a in failed for f in a.frames]
    # Each REGISTER that carried credentials and was challenged again is one refusal.
    refusals = [t for a in failed for t in a.transactions
                if t.has_credentials and t.final is not None and t.final.status in CHALLENGE_CODES]
    return Finding(
        code="REG_AUTH_FAILED",
        condition="recovered" if recovered else "not_recovered",
        cause=f"Credentials refused by {sequence.registrar}" + (" (a later attempt succeeded)" if recovered else ""),
        summary=f"Credentials for {where} refused {counted(len(refusals), 'time')}"
        + (" (a later attempt succeeded)" if recovered else ""),
        explanation=(
            "The phone answered the registrar's challenge with credentials and was challenged again "
            "instead of getting 200 OK: the registrar did not accept the digest response. Most often the "
            "password or the authentication user name is wrong; realm, algorithm or nonce handling can "
            "also break it."
            + (" What the headers show: " + "; ".join(hints) + "." if hints else "")
        ),
        next_steps=[
            "Re-enter the password and the authentication user name (user part only, no spaces)",
            "Compare the realm and algorithm in the challenge with what the phone sends",
            "Check the registrar's log for the reason and whether the account got locked after repeated failures",
        ],
        frames=frames,
        call_id=sequence.call_id,
        status=failed[-1].final.status,
        details={"hints": hints, "failed_attempts": len(failed)},
        links={("lockout", sequence.call_id)},
    )


_REJECTION_ADVICE = {
    403: ("The registrar refuses this registration outright; new credentials will not change that. Typical "
          "reasons: the source IP is not on its allow list, the account is disabled or expired, too many "
          "registrations, a User-Agent restriction, or rate limiting.",
          ["Check the account status on the registrar", "Check the registrar's IP allow list for the phone's public address",
           "Look for rate limiting or flood protection on the registrar or SBC"]),
    404: ("The registrar does not know this user or domain: the address is well formed but no account matches it.",
          ["Check the domain in the AOR matches a domain the registrar serves", "Check the user name for typos and that the account exists"]),
    408: ("The request reached a server that gave up waiting (often an overloaded registrar or a slow hop behind a proxy).",
          ["Check the registrar's load and the proxies between phone and registrar", "Spread registrations over time"]),
    423: ("The requested expiry is shorter than the registrar allows (Interval Too Brief).",
          ["Raise the phone's registration expiry to at least the Min-Expires value"]),
    480: ("The registrar or a proxy is temporarily unable to handle this user.",
          ["Check the user's state on the registrar and retry later"]),
    500: ("The registrar hit an internal error: a server-side problem, not phone configuration.",
          ["Check the registrar's logs, database and resources"]),
    503: ("The registrar is temporarily unavailable: overload or maintenance. Under load this marks the capacity limit.",
          ["Check whether the registrar is in maintenance or overloaded", "Respect Retry-After before retrying"]),
}


def _rejected(sequence: Sequence, where: str, status: int, rejected: list[Attempt]) -> Finding:
    final = rejected[0].final
    explanation, steps = _REJECTION_ADVICE.get(
        status,
        ("The registrar sent a final error to the REGISTER.", ["Look up the status code and check the registrar's logs"]),
    )
    details: dict = {"reason": final.reason}
    extra = []
    if 300 <= status < 400:
        targets = [c.uri for c in final.contacts]
        details["contacts"] = targets
        explanation = "The registrar redirects the phone elsewhere" + (f": {', '.join(targets)}." if targets else " but gives no Contact.")
        steps = ["Point the phone at the address in the redirect's Contact, or fix the redirect on the server"]
    if status == 423 and final.header("min-expires"):
        details["min_expires"] = final.header("min-expires")
        extra.append(f"Min-Expires is {final.header('min-expires')} s.")
    if status == 503 and final.header("retry-after"):
        details["retry_after"] = final.header("retry-after")
        extra.append(f"Retry-After asks to wait {final.header('retry-after')} s.")
    if status == 403:
        earlier_failures = sum(
            1 for a in sequence.attempts if a.outcome == "auth_failed" and a.transactions[0].first.time < final.time
        )
        if earlier_failures >= LOCKOUT_AFTER_FAILURES:
            details["possible_lockout"] = True
            extra.append(f"It follows {earlier_failures} refused credential attempts: the account may have been locked.")
        elif any(t.has_credentials for t in rejected[0].transactions):
            extra.append("It answered a REGISTER carrying credentials: some registrars say 403 for a wrong password too.")
    links = set()
    if details.get("possible_lockout"):
        links.add(("lockout", sequence.call_id))
    if status in RATE_LIMIT_STATUSES:
        links.add(("rate_limit", sequence.registrar))
    return Finding(
        code="REG_REJECTED",
        condition="rejected",
        cause=f"Registrations to {sequence.registrar} rejected: {status} {final.reason or ''}".rstrip(),
        summary=f"Registration of {where} rejected: {status} {final.reason or ''}".rstrip(),
        explanation=" ".join([explanation] + extra),
        next_steps=steps,
        frames=[f for a in rejected for f in a.frames],
        call_id=sequence.call_id,
        status=status,
        details=details,
        links=links,
    )


def _no_response(result: CaptureResult, sequence: Sequence, where: str, silent: list[Attempt]) -> Finding:
    requests = [m for a in silent for t in a.transactions for m in t.requests]
    first = silent[0].transactions[0]
    schedule = [round(m.time - first.request.time, 3) for m in first.requests]
    server_ip, server_port = first.request.dst_ip, first.request.dst_port
    clues = network_path.path_clues(result, server_ip, server_port)
    heard_from_server = network_path.sent_sip(result, server_ip)
    observations = [c.text for c in clues]
    if not clues and not heard_from_server:
        observations.append(f"no SIP packet from {server_ip} appears anywhere in the capture")
    return Finding(
        code="REG_NO_RESPONSE",
        condition="no_response",
        cause=f"REGISTERs to {hostport(server_ip, server_port)} got no response",
        summary=f"REGISTER for {where} got no response ({len(requests)} sent)",
        explanation=(
            f"The phone sent the REGISTER {counted(len(first.requests), 'time')} at +{', +'.join(map(str, schedule))} s "
            "(the retransmission timer doubling each time) and nothing answered. The request is lost on the "
            "way, dropped by a firewall, sent to the wrong address/port/transport, or the registrar is down. "
            "A capture taken far from the phone can also miss the answer."
            + (" The capture shows: " + "; ".join(observations) + "." if observations else "")
        ),
        next_steps=[
            f"Check that {sequence.registrar} is the right registrar address, port and transport",
            "Check firewalls and NAT between phone and registrar; check the registrar is running",
            "Capture on the registrar side to see whether the REGISTER arrives",
        ],
        frames=[m.frame for m in requests] + [f for c in clues for f in c.frames],
        call_id=sequence.call_id,
        details={"retransmission_schedule": schedule, "path": observations},
        links={("destination", hostport(server_ip, server_port)), ("rate_limit", sequence.registrar)},
    )


def _expiry_findings(sequence: Sequence, row: dict, where: str, refreshes: Refreshes, capture_end: float) -> list[Finding]:
    findings = []
    accepted = [t for t in sequence.transactions if t.final is not None and 200 <= t.final.status < 300]
    reduced = []
    for transaction in accepted:
        requested = requested_expires(transaction.request)
        granted = granted_expires(transaction.request, transaction.final)
        if requested and granted is not None and 0 < granted < requested:
            reduced.append((transaction, requested, granted))
    if reduced:
        transaction, requested, granted = reduced[0]
        findings.append(
            Finding(
                code="REG_EXPIRES_REDUCED",
                condition="reduced",
                cause=f"{sequence.registrar} granted {granted} s instead of the requested {requested} s",
                summary=f"Registrar granted {granted} s instead of the requested {requested} s for {where}",
                explanation=(
                    "Registrars may shorten the expiry a phone asks for. The binding is valid only for the granted "
                    "time, so the phone must refresh before it runs out"
                    + (f"; observed refresh intervals: {', '.join(map(str, row['refresh_intervals']))} s." if row["refresh_intervals"] else ".")
                ),
                next_steps=["Check that the phone refreshes well before the granted expiry (typically at about half of it)"],
                frames=transaction.frames,
                call_id=sequence.call_id,
                details={"requested": requested, "granted": granted},
            )
        )
    for transaction in accepted:
        if is_deregistration(transaction.request):
            continue
        granted = granted_expires(transaction.request, transaction.final)
        if not granted:
            continue
        deadline = transaction.final.time + granted
        if deadline < capture_end and not refreshes.between(sequence, transaction.final.time, deadline):
            findings.append(
                Finding(
                    code="REG_LAPSED",
                    condition="lapsed",
                    cause="Bindings expired inside the capture without a refresh",
                    summary=f"Binding for {where} expired inside the capture without a refresh",
                    explanation=(
                        f"The registrar granted {granted} s at frame {transaction.final.frame}; the capture goes on "
                        f"{round(capture_end - deadline, 1)} s past that with no successful refresh. From then on the "
                        "registrar has no valid contact for this user, so incoming calls fail even though the phone "
                        "may still show itself as registered."
                    ),
                    next_steps=[
                        "Check the phone's re-registration timer against the granted expiry",
                        "Check whether refresh REGISTERs leave the phone (NAT binding or network change may drop them)",
                    ],
                    frames=transaction.frames,
                    call_id=sequence.call_id,
                    details={"granted": granted, "expired_at": deadline},
                )
            )
            break
    deregistered = [t for t in accepted if is_deregistration(t.request)]
    if deregistered:
        findings.append(
            Finding(
                code="REG_DEREGISTERED",
                condition="deregistered",
                cause="Registrations removed on purpose (Expires 0)",
                summary=f"{where} de-registered (Expires 0)",
                explanation="The phone removed its binding on purpose (shutdown, account change or re-provisioning).",
                next_steps=["If the phone should stay reachable, find out why it de-registered"],
                frames=deregistered[0].frames,
                call_id=sequence.call_id,
            )
        )
    return findings


def _nat_hint(sequence: Sequence, where: str) -> Finding | None:
    request = sequence.first_request
    if request is None:
        return None
    private = []
    for contact in request.contacts:
        host = sip.uri_parts(contact.uri)[1]
        if host and network_path.unroutable_kind(host) and host != request.src_ip:
            private.append(f"Contact {host}")
    if request.vias and network_path.unroutable_kind(request.vias[0].host) and request.vias[0].host != request.src_ip:
        private.append(f"Via {request.vias[0].host}")
    if not private:
        return None
    return Finding(
        code="REG_NAT_SUSPECT",
        condition="private_contact",
        cause=f"REGISTERs advertising a private address behind NAT (seen from {request.src_ip})",
        summary=f"{where}: private address in {' and '.join(private)} while packets come from {request.src_ip}",
        explanation=(
            "The phone advertises a private address but its packets arrive from another address, so a NAT sits "
            "in between. The registrar may show the phone as registered and still be unable to reach it: "
            "calls are sent to an address that is not reachable, or to a NAT mapping that has expired."
        ),
        next_steps=[
            "Enable NAT handling on the registrar (use the received address/rport) or STUN/outbound keep-alives on the phone",
            "Keep the registration expiry or keep-alive interval shorter than the NAT's UDP timeout",
            "Disable SIP ALG on the router if it rewrites addresses inconsistently",
        ],
        frames=[request.frame],
        call_id=sequence.call_id,
        details={"advertised": private, "source": request.src_ip},
    )


def registrar_pattern_findings(sequences: list[Sequence]) -> list[Finding]:
    findings = []
    by_registrar: dict[str, list[Attempt]] = {}
    for sequence in sequences:
        by_registrar.setdefault(sequence.registrar, []).extend(sequence.attempts)
    for registrar, attempts in by_registrar.items():
        attempts.sort(key=lambda a: a.transactions[0].first.time)
        pattern = _rate_limit_pattern(attempts)
        if pattern:
            successes, failures = pattern
            findings.append(
                Finding(
                    code="REG_RATE_LIMIT_SUSPECT",
                    condition="successes_then_failures",
                    summary=f"{registrar}: first {len(successes)} registrations succeed, then {len(failures)} fail",
                    explanation=(
                        "Registrations toward this registrar work at first and then fail with "
                        + ", ".join(sorted({str(a.final.status) if a.final else 'no response' for a in failures}))
                        + ". A fixed number of successes followed by 403/503/408 or silence is the mark of rate "
                        "limiting or flood protection on the registrar or an SBC in front of it."
                    ),
                    next_steps=[
                        "Spread registrations over a longer time",
                        "Check the registrar/SBC rate limit and flood protection (blacklisted source IP)",
                    ],
                    frames=[successes[-1].final.frame] + [f for a in failures[:5] for f in a.frames],
                    details={"successes": len(successes), "failures": len(failures)},
                    links={("rate_limit", registrar)},
                )
            )
        burst = _busiest_second(attempts)
        if burst and len(burst) >= BURST_PER_SECOND:
            findings.append(
                Finding(
                    code="REG_BURST",
                    condition="burst",
                    summary=f"{len(burst)} REGISTERs within one second to {registrar}",
                    explanation=(
                        "Many phones registering at once (after a power or network outage, or a load test) can "
                        "trigger overload or flood protection on the registrar."
                    ),
                    next_steps=["If failures follow the burst, stagger registrations or raise the registrar's limits"],
                    frames=[m.frame for m in burst],
                    details={"per_second": len(burst)},
                )
            )
    return findings


def _rate_limit_pattern(attempts: list[Attempt]):
    """(successes, failures) when the first N attempts succeed and the rest fail like a limiter would."""
    successes = []
    for attempt in attempts:
        if attempt.outcome != "registered":
            break
        successes.append(attempt)
    rest = [a for a in attempts[len(successes):] if a.outcome != "pending"]
    limited = [
        a for a in rest if a.outcome == "no_response" or (a.outcome == "rejected" and a.final.status in RATE_LIMIT_STATUSES)
    ]
    if len(successes) >= RATE_LIMIT_MIN_SUCCESSES and len(limited) >= RATE_LIMIT_MIN_FAILURES and limited == rest:
        return successes, limited
    return None


def _busiest_second(attempts: list[Attempt]) -> list[SipMessage]:
    """The largest set of new REGISTER transactions starting within one second."""
    starts = sorted((t.request for a in attempts for t in a.transactions if t.request), key=lambda m: m.time)
    best: list[SipMessage] = []
    low = 0
    for high, message in enumerate(starts):
        while message.time - starts[low].time >= 1.0:
            low += 1
        if high - low + 1 > len(best):
            best = starts[low : high + 1]
    return best
