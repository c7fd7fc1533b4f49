"""The HTML evidence report and ticket summary, from real reports."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from packet_builders import INVITE, OK_200, ethernet, ipv4, pcapng, udp
from sipdiag import engine
from sipdiag.html_report import document
from sipdiag.ladder import ladder_svg
from sipdiag.redaction.evidence import evidence_html, summary_text


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> Collector:
    collector = Collector()
    collector.feed(html)
    return collector


@pytest.fixture(scope="module")
def report(shared_captures):
    return engine.analyze_path(str(shared_captures / "sngrep__aaa.pcap"))


def test_html_is_self_contained(report):
    html = evidence_html(report)
    page = parse(html)
    assert not re.search(r"(?i)(https?:|//[a-z])", html)  # nothing to fetch, no link out
    assert all(tag not in ("script", "link", "img", "iframe") for tag, _ in page.tags)
    assert ("style", {}) in page.tags


def test_html_has_every_finding_registration_call_and_query(report):
    page = parse(evidence_html(report))
    text = " ".join(page.text)
    for finding in report["findings"]:
        assert finding["code"] in text and finding["summary"] in text
    tables = [attrs for tag, attrs in page.tags if tag == "table"]
    rows = sum(1 for tag, _ in page.tags if tag == "tr")
    headers = 1 if report["registrations"] else 0
    headers += 1 if report["calls"] else 0
    headers += 1 if report["dns"] else 0
    assert len(tables) == headers
    assert rows == headers + len(report["registrations"]) + len(report["calls"]) + len(report["dns"])


def test_one_ladder_per_call_drawn_by_the_pages_renderer(report):
    html = evidence_html(report)
    page = parse(html)
    svgs = sum(1 for tag, _ in page.tags if tag == "svg")
    assert svgs == len(report["call_groups"]) == len(report["calls"]) > 0  # no call here has several legs
    arrows = sum(1 for tag, attrs in page.tags if tag == "g" and "ladder-arrow" in attrs.get("class", ""))
    assert arrows == sum(len(c["frames"]) for c in report["calls"])
    for call in report["calls"]:  # exactly what ladder.py gives the page
        assert ladder_svg(report, [call["call_id"]], inline=True) in html


def test_text_is_escaped():
    report = {"capture": {"file": "<script>x</script>.pcap", "packets": 1, "format": "pcap"},
              "sip_messages": [], "registrations": [], "calls": [], "dns": [],
              "findings": [{"code": "X", "severity": "error", "summary": "<b>bold</b>", "explanation": "", "next_steps": [], "frames": [1]}]}
    html = evidence_html(report)
    assert "<script>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def test_summary_text_lists_findings_and_outcomes(report):
    text = summary_text(report, {"addresses_replaced": 17, "replaced": {"users": 3}, "leaks": 0})
    assert "17 addresses replaced" in text and "leaks: 0" in text
    for finding in report["findings"]:
        assert f"{finding['code']}: {finding['summary']}" in text
    assert all(call["outcome"] in text for call in report["calls"])


def test_a_cause_holds_its_instances_and_the_findings_it_explains(fixtures_dir):
    report = engine.analyze_path(str(fixtures_dir / "dns" / "dns_nxdomain_no_register.pcap"))
    html = evidence_html(report)
    cause, explained = report["findings"]
    # The explained finding sits inside its cause's box, after the cause's instances.
    box = html.split('<div class="finding error" data-code="DNS_FAILURE">')[1]
    assert box.index("DNS NAPTR exmaple.test answered NXDOMAIN (frames 1, 2)") < box.index("Explained by this cause")
    assert html.count('<div class="finding error"') == 2
    assert html.index(cause["summary"]) < html.index("Explained by this cause") < html.index(explained["summary"])
    lines = summary_text(report).splitlines()
    assert lines[lines.index("Findings:") + 1:] == [
        f"- [error] DNS_FAILURE: {cause['summary']} (frames 1, 2, 3, 4, 5, 6)",
        "    - DNS NAPTR exmaple.test answered NXDOMAIN",
        "    - DNS SRV _sip._udp.exmaple.test answered NXDOMAIN",
        "    - DNS A exmaple.test answered NXDOMAIN",
        f"  - explained by the above: [error] NO_REGISTER_DNS_SUSPECT: {explained['summary']} (frames 1, 2, 3, 4, 5, 6)",
    ]


def test_times_beyond_any_date_read_as_out_of_range(tmp_path):
    path = tmp_path / "far-future.pcapng"
    call = [ethernet(ipv4(udp(INVITE))), ethernet(ipv4(udp(OK_200), src="10.0.0.2", dst="10.0.0.1"))]
    # 2^62 s after 1970: far past any date (as in tests/browser/test_time_range_page.py)
    path.write_bytes(pcapng([(n * 1_000_000, packet) for n, packet in enumerate(call)], tsoffset=1 << 62))
    report = engine.analyze_path(str(path))
    assert report["capture"]["first_time"] > 8.64e12 and len(report["calls"]) == 1
    text = " ".join(parse(document(report)).text)
    assert "from time out of range to time out of range" in text
    assert f"time out of range {report['calls'][0]['call_id']}" in text  # the calls table's start column
