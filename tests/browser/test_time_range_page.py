"""A pcapng whose if_tsoffset puts every time beyond what a date can hold: the
page opens it like the CLI does, and says the times are out of range instead
of failing with "Invalid time value"."""

from __future__ import annotations

from packet_builders import INVITE, OK_200, ethernet, ipv4, pcapng, udp
from pagekit import analyze_in_page, cli_report, open_capture, select_tab

OUT_OF_RANGE = "time out of range"


def numbers_as_floats(value):
    """JavaScript writes an integral double such as 2**62 as 4611686018427388000, which
    Python then reads as an int that is not the CLI's float: compare both as doubles."""
    if isinstance(value, dict):
        return {key: numbers_as_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [numbers_as_floats(item) for item in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def test_times_beyond_any_date_open_and_show_as_out_of_range(page_ready, tmp_path):
    path = tmp_path / "far-future.pcapng"
    call = [ethernet(ipv4(udp(INVITE))), ethernet(ipv4(udp(OK_200), src="10.0.0.2", dst="10.0.0.1"))]
    # 2^62 s after 1970: far past the 8.64e12 s a Date holds.
    path.write_bytes(pcapng([(n * 1_000_000, packet) for n, packet in enumerate(call)], tsoffset=1 << 62))
    expected = cli_report(path)
    assert expected["capture"]["first_time"] > 8.64e12
    page = page_ready.page
    open_capture(page, path)
    assert page.is_hidden("#error")
    span = page.locator('#capture-summary dt:text-is("Time span") + dd').inner_text()
    assert span.startswith(f"{OUT_OF_RANGE} → {OUT_OF_RANGE} (")
    assert any("shown as out of range" in text for text in page.locator("ul.warnings li").all_inner_texts())

    select_tab(page, "messages")
    times = page.locator("#tab-panel table.messages tbody tr.clickable td:nth-child(2)").all_inner_texts()
    assert times == [OUT_OF_RANGE] * len(expected["sip_messages"]) == [OUT_OF_RANGE] * 2

    select_tab(page, "calls")
    assert page.locator("#tab-panel .call-row").count() == len(expected["calls"]) == 1
    assert OUT_OF_RANGE in page.locator("#tab-panel .call-row").first.inner_text()
    page.locator("#tab-panel .call-row").first.click()  # the ladder's times are relative: they still show
    page.locator("#tab-panel svg.ladder-svg .ladder-arrow").first.wait_for()  # the engine draws it (a worker request)
    assert page.locator("#tab-panel svg.ladder-svg .ladder-arrow").count() == 2

    assert not [error for error in page_ready.console_errors if "Invalid time value" in error]
    assert numbers_as_floats(analyze_in_page(page_ready, path)) == numbers_as_floats(expected)
