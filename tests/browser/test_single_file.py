"""dist/sipdiag.html opened straight from disk (file://): same engine, same report, no requests out."""

from __future__ import annotations

import re

import pytest
from pagekit import analyze_in_page, cli_report

CAPTURES = ["heplify__sip_tcp_websocket.pcap", "isa__sip.pcap.pcapng", "redrabbit__sip-rtp-g711.pcap"]


@pytest.mark.parametrize("name", CAPTURES)
def test_single_file_report_equals_cli(single_file_page_ready, shared_captures, name):
    assert analyze_in_page(single_file_page_ready, shared_captures / name) == cli_report(shared_captures / name)


def test_single_file_file_input_and_sample(single_file_page_ready, sample_capture):
    page = single_file_page_ready.page
    page.set_input_files("#file-input", str(sample_capture))
    page.wait_for_selector("#capture-summary")
    assert page.inner_text("#engine-status") == f"analyzed {sample_capture.name}"
    assert sample_capture.name in page.inner_text("#capture-summary")


def test_single_file_sample_button(single_file_page_ready):
    page = single_file_page_ready.page
    page.click("#sample-button")
    page.locator("#engine-status", has_text="analyzed sample.pcap").wait_for()
    assert "sample.pcap" in page.inner_text("#capture-summary")


def test_single_file_is_self_contained(single_file_page_ready, site, sample_capture):
    analyze_in_page(single_file_page_ready, sample_capture)
    assert single_file_page_ready.requests[0] == site.single_file_url
    assert single_file_page_ready.foreign_requests() == []
    assert [text for text in single_file_page_ready.console_errors if "Content Security Policy" in text] == []
    html = (site.directory / "sipdiag.html").read_text()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1)
    assert "connect-src 'none'" in csp
