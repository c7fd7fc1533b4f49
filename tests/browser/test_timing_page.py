"""The Calls and Registrations tabs show the timing, DTMF and RFC 6076 figures
of the byte-built timing fixture (tests/fixtures/timing), whose values are
known by construction."""

from locations import FIXTURES
from pagekit import open_capture, select_tab

CAPTURE = FIXTURES / "timing" / "timing_dtmf.pcap"


def test_calls_tab_shows_timing_trunks_and_dtmf(page_ready):
    page = page_ready.page
    open_capture(page, CAPTURE)
    select_tab(page, "calls")

    trunks = page.locator("#tab-panel .trunk-row")
    assert trunks.count() == 2
    assert trunks.first.locator("td").all_inner_texts() == [
        "10.77.0.1:5060 ↔ 10.77.0.2:5060", "3", "50 % (1/2)", "100 % (2/2)", "0 % (0/3)", "33.3 % (1/3)",
        "1250 ms", "2000 ms", "50 ms"]

    header = page.locator("#tab-panel .call-table th").all_inner_texts()
    rows = page.locator("#tab-panel .call-row")
    answered, busy = (rows.nth(i).locator("td").all_inner_texts() for i in (0, 1))
    columns = [header.index(name) for name in ("Post-dial delay", "Setup time", "Duration")]
    assert [answered[i] for i in columns] == ["1250 ms", "4500 ms", "30 s"]
    assert [busy[i] for i in columns] == ["500 ms", "–", "–"]

    rows.first.click()
    terms = page.locator("#tab-panel .call-facts dt").all_inner_texts()
    values = page.locator("#tab-panel .call-facts dd").all_inner_texts()
    facts = dict(zip(terms, values))
    assert facts["Post-dial delay (INVITE → 180/183)"] == "1250 ms"
    assert facts["Setup time (INVITE → 200)"] == "4500 ms"
    assert facts["200 → ACK"] == "100 ms"
    assert facts["Duration"] == "30 s (ACK → BYE)"
    digits = page.locator("#tab-panel .call-dtmf-row")
    assert [digits.nth(i).locator("td").all_inner_texts() for i in range(digits.count())] == [
        ["1", "RFC 4733", "#51", "+5.000 s", "200 ms", "−10 dBm0", "10.77.0.1:16384 → 10.77.0.2:20000"],
        ["2", "RFC 4733", "#147", "+6.000 s", "300 ms", "−12 dBm0", "10.77.0.1:16384 → 10.77.0.2:20000"],
        ["5", "SIP INFO", "#201", "+14.000 s", "160 ms", "–", "10.77.0.1:5060 → 10.77.0.2:5060"],
    ]
    # The INFO's frame opens it among the SIP messages.
    digits.nth(2).locator(".finding-frame").click()
    page.locator('#tabs [data-tab="messages"][aria-selected="true"]').wait_for()  # after the worker located it


def test_registrations_tab_shows_rfc6076_per_registrar(page_ready):
    page = page_ready.page
    open_capture(page, CAPTURE)
    select_tab(page, "registrations")
    summary = page.locator("#tab-panel .reg-summary tbody tr")
    assert summary.count() == 1
    assert summary.first.locator(".reg-rrd").inner_text() == "180 ms"
    assert summary.first.locator(".reg-ira").inner_text() == "50 % (1/2)"
