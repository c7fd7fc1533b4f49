"""The page's state, in both builds: a new capture opens on Findings, a file
that fails clears the previous results, each tab keeps its state across tab
switches. (The URL hash, Back and Forward: test_tables_page.py.)"""

from __future__ import annotations

import pytest
from locations import SHARED_CAPTURES
from pagekit import open_capture, select_tab, wait_for_rows

CALLS = SHARED_CAPTURES / "sngrep__aaa.pcap"
OTHER = SHARED_CAPTURES / "heplify__rtp_rtcp_sip_ipv4_udp.pcap"


@pytest.fixture(scope="module", params=["http", "file"])
def booted(request):
    """The folder site over HTTP, then the single file from file://."""
    return request.getfixturevalue("page_ready" if request.param == "http" else "single_file_page_ready")


def selected_tab(page) -> str:
    return page.locator('#tabs [aria-selected="true"]').get_attribute("data-tab")


def test_a_new_capture_opens_on_findings(booted):
    page = booted.page
    open_capture(page, CALLS)
    select_tab(page, "calls")
    assert page.evaluate("location.hash") == "#calls"
    open_capture(page, OTHER)
    assert selected_tab(page) == "findings" and page.evaluate("location.hash") == "#findings"
    assert page.locator("#tab-panel .finding").count() > 0


def test_a_failed_file_clears_the_previous_results(booted, tmp_path):
    page = booted.page
    open_capture(page, CALLS)
    select_tab(page, "calls")
    bad = tmp_path / "holiday.pcap"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 60)
    page.set_input_files("#file-input", str(bad))
    page.locator("#engine-status", has_text="could not analyze holiday.pcap").wait_for()
    assert page.is_hidden("#result") and page.is_visible("#error")
    assert page.locator("#summary > *, #tabs > *, #tab-panel > *").count() == 0
    # Back to a tab of the capture that is gone changes nothing.
    page.evaluate("location.hash = '#dns'")
    assert page.is_hidden("#result")


def test_each_tab_keeps_its_state(booted):
    page = booted.page
    open_capture(page, CALLS)
    panel = page.locator("#tab-panel")
    select_tab(page, "calls")
    panel.locator("input.call-filter").fill("cybercity")
    wait_for_rows(page)
    panel.locator(".call-row:not([hidden])").nth(1).click()
    call_heading = panel.locator(".call-detail h3").inner_text()
    select_tab(page, "messages")
    panel.locator("input.filter").fill("REGISTER")
    wait_for_rows(page)
    messages = panel.locator("tr.clickable").count()
    select_tab(page, "registrations")
    panel.locator(".reg-row").first.click()
    select_tab(page, "redact")
    panel.locator(".redact-key").fill("our passphrase")
    panel.locator("#redact-users").uncheck()
    select_tab(page, "findings")
    panel.locator("details.finding summary").nth(1).click()

    select_tab(page, "calls")
    assert panel.locator("input.call-filter").input_value() == "cybercity"
    assert panel.locator(".call-row:not([hidden])").count() == 3
    assert panel.locator(".call-detail h3").inner_text() == call_heading
    select_tab(page, "messages")
    assert panel.locator("input.filter").input_value() == "REGISTER"
    assert panel.locator("tr.clickable").count() == messages
    select_tab(page, "registrations")
    assert panel.locator(".reg-detail-row:not([hidden])").count() == 1
    select_tab(page, "redact")
    assert panel.locator(".redact-key").input_value() == "our passphrase"
    assert not panel.locator("#redact-users").is_checked()
    select_tab(page, "findings")
    assert panel.locator("details.finding[open]").count() == 1
