"""Calls tab: the ladder of a call has one arrow per SIP message and exports SVG and PNG."""

from locations import SHARED_CAPTURES
from pagekit import cli_report, open_capture, select_tab

CAPTURE = SHARED_CAPTURES / "sngrep__aaa.pcap"



def test_ladder_renders_and_exports(page_ready, tmp_path):
    expected = cli_report(CAPTURE)
    page = page_ready.page
    open_capture(page, CAPTURE)
    select_tab(page, "calls")
    rows = page.locator("#tab-panel .call-row")
    assert rows.count() == len(expected["calls"]) == 4
    call = expected["calls"][0]  # INVITE retransmitted, CANCELs retransmitted, 408
    rows.first.click()
    svg = page.locator("#tab-panel svg.ladder-svg")
    svg.locator(".ladder-arrow").first.wait_for()
    assert svg.locator(".ladder-arrow").count() == len(call["frames"])
    assert svg.locator(".ladder-retransmission").count() == len(call["retransmission_frames"]) > 0
    # one column per host: the phone and the proxy each use one SIP port here
    assert svg.locator(".ladder-host").all_text_contents() == [h["address"].rsplit(":", 1)[0] for h in call["hosts"]]

    page.locator("#tab-panel .ladder-collapse").check()
    collapsed = len(call["frames"]) - len(call["retransmission_frames"])
    page.locator("#tab-panel svg.ladder-svg .ladder-retransmission").first.wait_for(state="detached")
    assert page.locator("#tab-panel svg.ladder-svg .ladder-arrow").count() == collapsed

    page.locator("#tab-panel svg.ladder-svg .ladder-arrow").first.click()
    assert page.locator("#tab-panel .ladder-message").inner_text().startswith("INVITE sip:")

    with page.expect_download() as svg_download:
        page.locator("#tab-panel .ladder-export-svg").click()
    saved = tmp_path / "ladder.svg"
    svg_download.value.save_as(saved)
    text = saved.read_text()
    assert text.startswith("<svg") and text.count('class="ladder-arrow') == collapsed

    with page.expect_download() as png_download:
        page.locator("#tab-panel .ladder-export-png").click()
    png = tmp_path / "ladder.png"
    png_download.value.save_as(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
