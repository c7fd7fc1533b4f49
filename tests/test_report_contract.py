"""Every report honours ../shared/spec/report.md, whatever the capture."""

import json
import os
import subprocess
import sys

import pytest
from locations import FIXTURES, REPO, SHARED_CAPTURES

CAPTURES = sorted(
    p for p in list(SHARED_CAPTURES.glob("*")) + list(FIXTURES.rglob("*")) if p.suffix in (".pcap", ".pcapng")
)

REQUIRED = {
    "capture": {"file", "format", "packets", "link_types", "first_time", "last_time", "warnings"},
    "sip_messages": {"frame", "time", "src_ip", "src_port", "dst_ip", "dst_port", "transport", "method",
                     "status", "reason", "call_id", "cseq", "cseq_method", "from_uri", "to_uri", "has_sdp"},
    "registrations": {"call_id", "aor", "contact", "client", "registrar", "outcome", "final_status", "challenges",
                      "requests", "retransmissions", "expires_requested", "expires_granted", "frames"},
    "calls": {"call_id", "from_uri", "to_uri", "caller", "callee", "outcome", "final_status", "codecs_offered",
              "codecs_answered", "media", "frames"},
    "dns": {"frame", "time", "qname", "qtype", "rcode", "answers", "response_frame", "response_ms"},
    "findings": {"code", "severity", "summary", "explanation", "next_steps", "frames", "id", "condition", "count", "instances"},
}
REGISTRATION_OUTCOMES = {"registered", "unregistered", "auth_failed", "challenged", "rejected", "no_response", "pending"}
CALL_OUTCOMES = {"answered", "busy", "cancelled", "rejected", "redirected", "no_answer", "no_response"}


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "py"))
    return subprocess.run([sys.executable, "-m", "sipdiag", *args], capture_output=True, text=True, env=env, cwd=REPO)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_report_has_every_required_field(path):
    done = run_cli("analyze", str(path), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["schema"] == "sipdiag.report/1"
    assert REQUIRED["capture"] <= report["capture"].keys()
    assert report["capture"]["file"] == path.name
    assert report["capture"]["format"] == ("pcapng" if path.read_bytes()[:4] == b"\n\r\r\n" else "pcap")
    for section in ("sip_messages", "registrations", "calls", "dns", "findings"):
        for row in report[section]:
            assert REQUIRED[section] <= row.keys(), (section, REQUIRED[section] - row.keys())
    # The contract does not require the messages' text: the default report leaves it out (--with-text has it).
    assert all("text" not in m for m in report["sip_messages"])
    frames = [m["frame"] for m in report["sip_messages"]]
    assert frames == sorted(frames)
    assert {r["outcome"] for r in report["registrations"]} <= REGISTRATION_OUTCOMES
    assert {c["outcome"] for c in report["calls"]} <= CALL_OUTCOMES
    assert {f["severity"] for f in report["findings"]} <= {"error", "warning", "info"}
    assert_findings_read_as_a_diagnosis(report["findings"])


def assert_findings_read_as_a_diagnosis(findings):
    """Each leading cause is followed by the findings it explains; the causes come in order of the most
    severe finding they lead, and each finding's count is its instances'."""
    rank = ("error", "warning", "info").index
    by_id = {f["id"]: f for f in findings}
    leaders = [f for f in findings if "explained_by" not in f]
    assert [f["id"] for f in findings] == [i for leader in leaders for i in [leader["id"]] + leader.get("explains", [])]
    worst = [min(rank(by_id[i]["severity"]) for i in [leader["id"]] + leader.get("explains", [])) for leader in leaders]
    assert worst == sorted(worst)
    for leader in leaders:
        explained = [rank(by_id[i]["severity"]) for i in leader.get("explains", [])]
        assert explained == sorted(explained)
        assert all(by_id[i]["explained_by"] == leader["id"] for i in leader.get("explains", []))
    for finding in findings:
        assert finding["count"] == len(finding["instances"]) >= 1
        assert {frame for i in finding["instances"] for frame in i["frames"]} == set(finding["frames"])


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "JPEG"), (b"just some text\n", "not a pcap")],
)
def test_cli_refuses_non_captures_with_a_clear_message(tmp_path, content, message):
    path = tmp_path / "input.bin"
    path.write_bytes(content)
    done = run_cli("analyze", str(path), "--json")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert path.read_bytes() == content


def test_cli_reports_a_missing_file_without_a_traceback(tmp_path):
    done = run_cli("analyze", str(tmp_path / "absent.pcap"))
    assert done.returncode == 2 and "No such file" in done.stderr and "Traceback" not in done.stderr


def test_truncated_capture_still_reports_what_came_before(tmp_path):
    original = (SHARED_CAPTURES / "sngrep__aaa.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(original[: len(original) // 2 + 7])
    done = run_cli("analyze", str(path), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert any("cut short" in w for w in report["capture"]["warnings"])
    full = json.loads(run_cli("analyze", str(SHARED_CAPTURES / "sngrep__aaa.pcap"), "--json").stdout)
    kept = [m for m in full["sip_messages"] if m["frame"] <= report["capture"]["packets"]]
    assert [(m["frame"], m["call_id"]) for m in report["sip_messages"]] == [(m["frame"], m["call_id"]) for m in kept]
