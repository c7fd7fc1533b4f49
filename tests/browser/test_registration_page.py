"""The page shows the CLI's diagnosis: same finding codes, one Registrations row per sequence."""

from collections import Counter

import pytest
from locations import FIXTURES, SHARED_CAPTURES
from pagekit import cli_report, open_capture, select_tab

CAPTURES = [FIXTURES / "registration" / "reg_wrong_password.pcap", SHARED_CAPTURES / "sngrep__aaa.pcap"]



@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_page_matches_cli_for_registrations(page_ready, capture):
    expected = cli_report(capture)
    page = page_ready.page
    open_capture(page, capture)

    select_tab(page, "findings")
    shown = page.locator("#tab-panel .finding").evaluate_all("els => els.map((e) => e.dataset.code)")
    assert Counter(shown) == Counter(f["code"] for f in expected["findings"])
    severities = page.locator("#tab-panel .finding").evaluate_all(
        "els => els.map((e) => e.className.match(/finding-(error|warning|info)/)[1])")
    order = {"error": 0, "warning": 1, "info": 2}
    assert severities == sorted(severities, key=order.get)  # most severe first

    select_tab(page, "registrations")
    rows = page.locator("#tab-panel .reg-row")
    assert rows.count() == len(expected["registrations"]) > 0
    for index, registration in enumerate(expected["registrations"]):
        cells = rows.nth(index).locator("td").all_inner_texts()
        assert cells[0] == registration["client"] and cells[2] == registration["registrar"]
        assert cells[3] == registration["outcome"].replace("_", " ")
        assert cells[4] == (str(registration["final_status"]) if registration["final_status"] is not None else "–")
        assert cells[5] == str(registration["challenges"])

    # A row opens its timeline: one line per message of the sequence, each linking to its frame.
    rows.first.click()
    timeline = page.locator("#tab-panel .reg-detail-row:not([hidden]) .reg-step")
    assert timeline.count() == len(expected["registrations"][0]["frames"])
    first_frame = expected["registrations"][0]["frames"][0]
    link = timeline.first.locator(".finding-frame")
    assert link.inner_text() == f"#{first_frame}"
    link.click()
    page.locator('#tabs [data-tab="messages"][aria-selected="true"]').wait_for()  # after the worker located it
