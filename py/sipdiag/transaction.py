"""A SIP transaction as the analyses see it: a request with its retransmissions and responses."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import SipMessage


@dataclass
class Transaction:
    requests: list[SipMessage] = field(default_factory=list)  # first send + retransmissions
    responses: list[SipMessage] = field(default_factory=list)

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
        return next((r for r in self.responses if r.status and r.status >= 200), None)

    @property
    def provisional(self) -> list[SipMessage]:
        return [r for r in self.responses if r.status and 100 < r.status < 200]

    @property
    def has_credentials(self) -> bool:
        request = self.request
        return request is not None and bool(request.header("authorization") or request.header("proxy-authorization"))
