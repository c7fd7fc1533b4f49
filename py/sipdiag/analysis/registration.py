"""Registration sequences and why a phone does (not) register.

A *sequence* is the REGISTERs sharing one Call-ID from one client to one
registrar (a UA keeps its Call-ID across auth retries and refreshes). Inside it
a *transaction* is one REGISTER and its retransmissions (same top Via branch,
else same CSeq), and an *attempt* is a run of transactions chained by
challenges: REGISTER -> 401/407 -> REGISTER with credentials -> final answer.
Judging attempts rather than single responses is what keeps a normal
challenge-then-200 from looking like a failure.

The findings a support engineer reads about these sequences are built in
`registration_findings`; this module only groups, judges and tabulates.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ..model import CaptureResult, SipMessage
from ..protocols import sip
from .derived import once
from .transaction import Transaction, transaction_key

CHALLENGE_CODES = (401, 407)
# RFC 3261 timer F: a non-INVITE client transaction gives up after 64*T1 = 32 s.
# A request sent once and younger than that at the end of the capture may still be answered.
TRANSACTION_TIMEOUT = 32.0


@dataclass
class Attempt:
    transactions: list[Transaction]
    outcome: str = "pending"

    @property
    def final(self) -> SipMessage | None:
        return self.transactions[-1].final

    @property
    def frames(self) -> list[int]:
        return [f for t in self.transactions for f in t.frames]


@dataclass
class Sequence:
    call_id: str
    client: str
    registrar: str
    transactions: list[Transaction] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    outcome: str = "pending"

    @property
    def messages(self) -> list[SipMessage]:
        return sorted((m for t in self.transactions for m in t.requests + t.responses), key=lambda m: (m.time, m.frame))

    @property
    def first_message(self) -> SipMessage:
        return self.transactions[0].first

    @property
    def first_request(self) -> SipMessage | None:
        return next((t.request for t in self.transactions if t.request is not None), None)


# ---------------------------------------------------------------- grouping


def build_sequences(result: CaptureResult) -> list[Sequence]:
    """Group REGISTER requests and their responses into sequences and transactions."""
    sequences: dict[tuple, Sequence] = {}
    # (call_id, transaction key) -> transactions, to match retransmissions and responses
    by_key: dict[tuple, list[tuple[Sequence, Transaction]]] = {}
    for message in result.sip_messages:
        if message.cseq_method != "REGISTER" or message.call_id is None or not message.has_start_line:
            continue
        key = (message.call_id, transaction_key(message))
        if message.is_request:
            client, registrar = message.src, message.dst
            sequence = sequences.setdefault(
                (message.call_id, client, registrar), Sequence(message.call_id, client, registrar)
            )
            known = [t for s, t in by_key.get(key, []) if s is sequence]
            if known:
                known[0].requests.append(message)
            else:
                transaction = Transaction([message])
                sequence.transactions.append(transaction)
                by_key.setdefault(key, []).append((sequence, transaction))
        else:
            candidates = by_key.get(key, [])
            # A proxy in the path may relay the same branch; prefer the hop this response travels.
            own_hop = [(s, t) for s, t in candidates if s.client == message.dst and s.registrar == message.src]
            if candidates:
                (own_hop or candidates)[0][1].responses.append(message)
                continue
            # The capture began after the REGISTER: its answer alone still tells how it went.
            client, registrar = message.dst, message.src
            sequence = sequences.setdefault(
                (message.call_id, client, registrar), Sequence(message.call_id, client, registrar)
            )
            transaction = Transaction([], [message])
            sequence.transactions.append(transaction)
            by_key.setdefault(key, []).append((sequence, transaction))
    for sequence in sequences.values():
        sequence.attempts = _split_attempts(sequence.transactions)
    return list(sequences.values())


def _split_attempts(transactions: list[Transaction]) -> list[Attempt]:
    """A transaction continues the current attempt when it answers a challenge with credentials."""
    attempts: list[Attempt] = []
    for transaction in transactions:
        previous = attempts[-1].transactions[-1] if attempts else None
        answers_challenge = (
            previous is not None
            and previous.final is not None
            and previous.final.status in CHALLENGE_CODES
            and transaction.has_credentials
        )
        if answers_challenge:
            attempts[-1].transactions.append(transaction)
        else:
            attempts.append(Attempt([transaction]))
    return attempts


# ---------------------------------------------------------------- facts per message


def requested_expires(request: SipMessage | None) -> int | None:
    """Contact expires= of the (first) binding, else the Expires header."""
    if request is None:
        return None
    for contact in request.contacts:
        value = contact.params.get("expires")
        if value is not None and value.strip().isdigit():
            return int(value)
    return request.expires


def _uri_key(uri: str | None) -> tuple:
    """(user, host, port) of a URI: registrars echo bindings with other params or case."""
    if not uri:
        return (None, None, None)
    user, host, port = sip.uri_parts(uri)
    return (user, (host or "").lower(), port)


def granted_expires(request: SipMessage | None, ok: SipMessage) -> int | None:
    """The expiry the 200 OK granted to this request's binding."""
    ours = {_uri_key(c.uri) for c in request.contacts} if request is not None else set()
    with_expires = [c for c in ok.contacts if (c.params.get("expires") or "").strip().isdigit()]
    for contact in with_expires:
        if _uri_key(contact.uri) in ours:
            return int(contact.params["expires"])
    if ok.expires is not None:
        return ok.expires
    # A registrar behind NAT handling may rewrite our Contact; a single binding is still ours.
    if len(with_expires) == 1:
        return int(with_expires[0].params["expires"])
    return None


def is_deregistration(request: SipMessage | None) -> bool:
    return requested_expires(request) == 0


def digests(message: SipMessage, header: str) -> list:
    return [sip.parse_digest(value) for value in message.header_values(header)]


def challenge_header(status: int) -> str:
    return "www-authenticate" if status == 401 else "proxy-authenticate"


def credentials(request: SipMessage):
    values = digests(request, "authorization") + digests(request, "proxy-authorization")
    return values[0] if values else None


# ---------------------------------------------------------------- outcomes


def _attempt_outcome(attempt: Attempt, capture_end: float) -> str:
    final = attempt.final
    last = attempt.transactions[-1]
    if final is None:
        # Silence counts once the client itself retransmitted, or timer F has run out.
        gave_up = len(last.requests) > 1 or capture_end - last.first.time >= TRANSACTION_TIMEOUT
        return "no_response" if gave_up and not last.responses else "pending"
    if 200 <= final.status < 300:
        return "unregistered" if is_deregistration(last.request) else "registered"
    if final.status in CHALLENGE_CODES:
        credentials_rejected = any(
            t.has_credentials and t.final is not None and t.final.status in CHALLENGE_CODES for t in attempt.transactions
        )
        return "auth_failed" if credentials_rejected else "challenged"
    return "rejected"


def _sequence_outcome(attempts: list[Attempt]) -> str:
    """The latest concluded attempt decides; a refresh still in flight does not undo it."""
    concluded = [a for a in attempts if a.outcome != "pending"]
    return concluded[-1].outcome if concluded else "pending"


# ---------------------------------------------------------------- rows


def _timeline(sequence: Sequence) -> list[dict]:
    seen_keys: set[tuple] = set()
    entries = []
    for message in sequence.messages:
        key = (message.is_request, transaction_key(message), message.status)
        entries.append(
            {
                "frame": message.frame,
                "time": message.time,
                "direction": "request" if message.is_request else "response",
                "label": message.method if message.is_request else f"{message.status} {message.reason or ''}".strip(),
                "cseq": message.cseq,
                "credentials": bool(message.header("authorization") or message.header("proxy-authorization")),
                "expires": requested_expires(message) if message.is_request else None,
                "retransmission": message.is_request and key in seen_keys,
            }
        )
        seen_keys.add(key)
    return entries


def _row(sequence: Sequence) -> dict:
    first = sequence.first_message
    requests = [m for t in sequence.transactions for m in t.requests]
    finals = [t.final for t in sequence.transactions if t.final is not None]
    last_final = max(finals, key=lambda m: (m.time, m.frame), default=None)
    registered = [(t.request, t.final) for t in sequence.transactions if t.final is not None and 200 <= t.final.status < 300]
    granted = granted_expires(*registered[-1]) if registered else None
    contact = next((c.uri for m in requests for c in m.contacts), None)
    return {
        "call_id": sequence.call_id,
        "aor": first.to_uri,
        "contact": contact,
        "client": sequence.client,
        "registrar": sequence.registrar,
        "outcome": sequence.outcome,
        "final_status": last_final.status if last_final else None,
        "challenges": sum(1 for f in finals if f.status in CHALLENGE_CODES),
        "requests": len(requests),
        "retransmissions": sum(len(t.requests) - 1 for t in sequence.transactions),
        "expires_requested": requested_expires(requests[-1] if requests else None),
        "expires_granted": granted,
        "frames": sorted(m.frame for m in sequence.messages),
        # extras for the page
        "transport": first.transport,
        "user_agent": sequence.first_request.header("user-agent") if sequence.first_request else None,
        "aors": sorted({m.to_uri for m in requests if m.to_uri}),
        "first_time": first.time,
        "attempts": [
            {"outcome": a.outcome, "status": a.final.status if a.final else None, "frames": sorted(a.frames)}
            for a in sequence.attempts
        ],
        "refresh_intervals": [round(b[1].time - a[1].time, 3) for a, b in zip(registered, registered[1:])],
        "timeline": _timeline(sequence),
    }


class Refreshes:
    """When each client's registrations of each AOR were accepted, over all sequences: whether a
    binding was refreshed in time is a look-up, not a pass over every sequence for each binding."""

    def __init__(self, sequences: list[Sequence]) -> None:
        self._accepted: dict[tuple[str, str | None], list[float]] = {}
        for sequence in sequences:
            times = self._accepted.setdefault((sequence.client, sequence.first_message.to_uri), [])
            times += [t.final.time for t in sequence.transactions
                      if t.final is not None and 200 <= t.final.status < 300]
        for times in self._accepted.values():
            times.sort()

    def between(self, sequence: Sequence, after: float, deadline: float) -> bool:
        """Whether the same client re-registered the same AOR successfully in (after, deadline]."""
        times = self._accepted.get((sequence.client, sequence.first_message.to_uri), [])
        index = bisect.bisect_right(times, after)
        return index < len(times) and times[index] <= deadline


def judged_sequences(result: CaptureResult) -> tuple[list[Sequence], list[dict], float]:
    """The registration sequences with their outcomes, their report rows, and
    the capture's end (the time a missing response or refresh is judged at).
    Built once per capture: the findings and timing both read them."""
    return once(result, _judged_sequences)


def _judged_sequences(result: CaptureResult) -> tuple[list[Sequence], list[dict], float]:
    capture_end = result.capture.last_time or max((m.time for m in result.sip_messages), default=0.0)
    sequences = build_sequences(result)
    for sequence in sequences:
        for attempt in sequence.attempts:
            attempt.outcome = _attempt_outcome(attempt, capture_end)
        sequence.outcome = _sequence_outcome(sequence.attempts)
    sequences.sort(key=lambda s: (s.first_message.time, s.first_message.frame))
    return sequences, [_row(s) for s in sequences], capture_end


def registrar_summary(rows: list[dict]) -> list[dict]:
    """Per registrar: how many sequences registered or failed, and whether all or some fail."""
    summaries: dict[str, dict] = {}
    for row in rows:
        summary = summaries.setdefault(
            row["registrar"],
            {"registrar": row["registrar"], "clients": set(), "sequences": 0, "attempts": 0, "registered": 0,
             "failed": 0, "failed_by_status": {}, "outcomes": {}},
        )
        summary["clients"].add(row["client"])
        summary["sequences"] += 1
        summary["attempts"] += len(row["attempts"])
        summary["outcomes"][row["outcome"]] = summary["outcomes"].get(row["outcome"], 0) + 1
        if row["outcome"] in ("registered", "unregistered"):
            summary["registered"] += 1
        elif row["outcome"] != "pending":
            summary["failed"] += 1
            status = str(row["final_status"]) if row["final_status"] is not None else "no_response"
            summary["failed_by_status"][status] = summary["failed_by_status"].get(status, 0) + 1
    documents = []
    for summary in summaries.values():
        summary["clients"] = len(summary["clients"])
        if summary["failed"] and not summary["registered"]:
            summary["pattern"] = "all_fail"
        elif summary["failed"]:
            summary["pattern"] = "some_fail"
        else:
            summary["pattern"] = "all_ok"
        documents.append(summary)
    return documents
