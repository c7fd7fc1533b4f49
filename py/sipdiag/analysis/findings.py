"""The diagnosis vocabulary: a finding is one thing the engineer should know."""

from __future__ import annotations

from dataclasses import dataclass, field

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass
class Finding:
    code: str  # e.g. "REG_AUTH_FAILED" (see ../shared/spec/report.md)
    severity: str  # "error" | "warning" | "info"
    summary: str  # one line
    explanation: str  # plain words: what it means and why it is likely
    next_steps: list[str]
    frames: list[int]  # evidence, frame numbers as Wireshark counts them
    call_id: str | None = None
    status: int | None = None
    details: dict = field(default_factory=dict)  # extra facts, JSON-able

    def to_dict(self) -> dict:
        document = {
            "code": self.code,
            "severity": self.severity,
            "summary": self.summary,
            "explanation": self.explanation,
            "next_steps": list(self.next_steps),
            "frames": sorted(set(self.frames)),
        }
        if self.call_id is not None:
            document["call_id"] = self.call_id
        if self.status is not None:
            document["status"] = self.status
        if self.details:
            document["details"] = self.details
        return document


def ordered(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; within a severity by first evidence."""
    return sorted(
        findings,
        key=lambda f: (SEVERITY_ORDER[f.severity], min(f.frames, default=0), f.code),
    )


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """'1 time', '3 times', '2 queries': findings are read by people."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
