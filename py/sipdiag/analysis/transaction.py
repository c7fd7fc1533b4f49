"""A SIP transaction as the analyses see it: a request with its retransmissions and responses."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import SipMessage


@dataclass
class Transaction:
    requests: list[SipMessage] = field(default_factory=list)  # first send + retransmissions
    responses: list[SipMessage] = field(default_factory=list)
    # The analyses ask for the final response many times per transaction; as
    # responses only ever grow, `final` looks at each one once.
    _final: SipMessage | None = field(default=None, init=False, repr=False, compare=False)
    _responses_seen: int = field(default=0, init=False, repr=False, compare=False)

    @property
    def request(self) -> SipMessage | None:
        """None when the capture starts after the request and holds only its answer."""
        return self.requests[0] if self.requests else None

    @property
    def first(self) -> SipMessage:
        return (self.requests or self.responses)[0]

    @property
    def frames(self) -> list[int]:
        return [m.frame for m in self.requests + self.responses]

    @property
    def final(self) -> SipMessage | None:
        """The first response >= 200."""
        while self._final is None and self._responses_seen < len(self.responses):
            response = self.responses[self._responses_seen]
            self._responses_seen += 1
            if response.status and response.status >= 200:
                self._final = response
        return self._final

    @property
    def provisional(self) -> list[SipMessage]:
        return [r for r in self.responses if r.status and 100 < r.status < 200]

    @property
    def has_credentials(self) -> bool:
        request = self.request
        return request is not None and bool(request.header("authorization") or request.header("proxy-authorization"))


def transaction_key(message: SipMessage) -> tuple:
    """Same key for a request, its retransmissions and its responses on one hop.

    RFC 3261 17.2.3 matches on the Via branch and the method; the CSeq number
    is in the key too because real UAs (Zoiper, for one) reuse a branch for
    their next request, which must not pass for a retransmission.
    """
    branch = message.vias[0].branch if message.vias else None
    method = message.method or message.cseq_method
    if branch:
        return (branch, method, message.cseq)
    # RFC 2543 peers have no branch: fall back to CSeq and the address pair.
    ends = tuple(sorted((message.src, message.dst)))
    return (message.cseq, method, ends)


class TransactionTable:
    """The transactions of one Call-ID, messages added in capture order.

    A response joins its request's transaction by the top Via branch
    (`transaction_key`). When its Via is missing, or names no transaction
    that holds a request (an element on the way dropped or rewrote it), the
    response falls back to the request with the same CSeq number and method
    that travelled the opposite way between the same two addresses: Call-ID,
    CSeq and direction are what identifies a transaction once the branch
    is gone.
    """

    def __init__(self) -> None:
        self.transactions: dict[tuple, Transaction] = {}
        # (CSeq, method, request source, request destination) -> its transaction
        self._by_direction: dict[tuple, Transaction] = {}

    def add(self, message: SipMessage) -> Transaction:
        """The transaction the message belongs to (new if it starts one);
        the caller appends the message to it."""
        key = transaction_key(message)
        transaction = self.transactions.get(key)
        if not message.is_request and (transaction is None or not transaction.requests):
            transaction = self._by_direction.get(
                (message.cseq, message.cseq_method, message.dst, message.src), transaction)
        if transaction is None:
            transaction = self.transactions[key] = Transaction()
        if message.is_request:
            self._by_direction.setdefault((message.cseq, message.method, message.src, message.dst), transaction)
        return transaction
