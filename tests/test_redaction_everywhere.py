"""Every capture we have redacts, in the default policy, to a copy that an
independent scan finds clean, whose checksums are as good as the original's,
with every dropped frame named, and whose diagnosis is the original's.

The scan is tests/leakscan.py: it learns the originals through tshark and the
raw bytes, never through the product, so a blind spot shared by the rewriter
and its own verification still shows here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from leakscan import broken_checksums, find_leaks, original_identifiers
from locations import FIXTURES, REPO, SHARED_CAPTURES
from sipdiag.engine import analyze_path
from sipdiag.redaction.redactor import redact_command

CAPTURES = sorted(p for folder in (SHARED_CAPTURES, FIXTURES) for p in folder.rglob("*")
                  if p.suffix in (".pcap", ".pcapng")) + [REPO / "static" / "sample.pcap"]


def label(path: Path) -> str:
    return path.name if path.is_relative_to(SHARED_CAPTURES) else str(path.relative_to(REPO))


def diagnosis(report: dict) -> dict:
    """What a support engineer reads, without the values redaction replaces."""
    return {
        "findings": Counter((f["code"], f["severity"]) for f in report["findings"]),
        "sip": [(m["method"], m["status"], m["cseq"], m["cseq_method"]) for m in report["sip_messages"]],
        "registrations": [(r["outcome"], r["final_status"], r["challenges"]) for r in report["registrations"]],
        "calls": [(c["outcome"], c["final_status"], len(c["media"])) for c in report["calls"]],
        "dns": [(d["qtype"], d["rcode"], d["answers"]) for d in report["dns"]],
    }


@pytest.mark.parametrize("path", CAPTURES, ids=label)
def test_default_policy_yields_a_verified_clean_copy(path, tmp_path):
    out = tmp_path / f"redacted{path.suffix}"
    code, summary = redact_command(str(path), str(out), key="everywhere")
    assert code == 0, (summary["leak_locations"], summary["refused"])
    dropped = [entry["frame"] for entry in summary["frames_dropped"]]
    assert summary["packets_out"] == summary["packets_in"] - len(dropped)
    assert sum(summary["handled"].values()) == summary["packets_in"]
    assert find_leaks(original_identifiers(path), out) == []
    assert broken_checksums(path, out, dropped) == []
    assert diagnosis(analyze_path(str(out))) == diagnosis(analyze_path(str(path)))


def test_a_link_type_nobody_reads_is_scrubbed_frame_by_frame(tmp_path):
    """USER0 (147) could be anything: every record stays, zeroed, and is named."""
    path = FIXTURES / "encap" / "encap_user0.pcap"
    code, summary = redact_command(str(path), str(tmp_path / "out.pcap"), key="everywhere")
    assert code == 0 and summary["handled"] == {"rewritten": 0, "scrubbed": summary["packets_in"], "dropped": 0}
    assert {entry["why"] for entry in summary["frames_scrubbed"]} == {"link type 147 is not one the redactor decodes"}
    assert summary["packets_in"] == 47
