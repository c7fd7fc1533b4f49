"""The Calls tab's ladder in headless Chromium, over http and from file://: the
legs of one call in one diagram, one column for a PBX that uses two SIP ports,
frame numbers and delta times as in the report, the message panel, the diff
of two messages, and the ladder markup equal to the CLI's (one renderer)."""

from __future__ import annotations

import base64
import re

import pytest
from locations import FIXTURES
from pagekit import cli_report, open_capture, select_tab
from sipdiag.ladder import ladder_svg

# A PBX (10.77.0.2) between caller and callee: port 5060 towards the caller,
# 5062 towards the callee (SIPp lab capture, tests/fixtures/media/generate.py).
PBX = FIXTURES / "media" / "media_pbx_direct.pcap"


@pytest.fixture(params=["page_ready", "single_file_page_ready"], ids=["http", "file"])
def calls_tab(request):
    """The PBX capture open on the Calls tab, its first call selected."""
    booted = request.getfixturevalue(request.param)
    page = booted.page
    open_capture(page, PBX)
    select_tab(page, "calls")
    page.locator("#tab-panel .call-row").first.click()
    page.locator("#tab-panel .ladder-arrow").first.wait_for()
    return page


def host_columns(page):
    return page.locator("#tab-panel .ladder-svg .ladder-host").all_text_contents()


def test_the_pbx_with_two_ports_is_one_column_of_one_ladder_across_both_legs(calls_tab):
    page = calls_tab
    report = cli_report(PBX)
    legs = report["call_groups"][0]["calls"]
    assert len(legs) == 2
    assert page.locator("#tab-panel .ladder-scope").input_value() == "legs"
    assert page.locator("#tab-panel .call-leg").count() == 2
    assert host_columns(page) == ["10.77.0.1", "10.77.0.2", "10.77.0.3"]
    assert page.locator("#tab-panel .ladder-host-ports").all_text_contents() == ["SIP ports 5060, 5062"]
    frames = [int(f) for f in page.locator("#tab-panel .ladder-arrow").evaluate_all(
        "(arrows) => arrows.map((a) => a.dataset.frame)")]
    assert frames == [m["frame"] for m in report["sip_messages"]]  # both dialogs' messages, in time order

    page.locator("#tab-panel .ladder-columns").select_option("port")
    page.locator("#tab-panel .ladder-host", has_text="10.77.0.2:5062").wait_for()
    sip_ends = []
    for m in report["sip_messages"]:
        for end in (f"{m['src_ip']}:{m['src_port']}", f"{m['dst_ip']}:{m['dst_port']}"):
            if end not in sip_ends:
                sip_ends.append(end)
    assert host_columns(page)[: len(sip_ends)] == sip_ends
    assert {"10.77.0.2:5060", "10.77.0.2:5062"} <= set(sip_ends)

    page.locator("#tab-panel .ladder-scope").select_option("dialog")
    page.locator("#tab-panel .ladder-host", has_text="10.77.0.2:5062").wait_for(state="detached")
    dialog_frames = page.locator("#tab-panel .ladder-arrow").evaluate_all("(arrows) => arrows.map((a) => +a.dataset.frame)")
    assert dialog_frames == report["calls"][0]["frames"]


@pytest.mark.parametrize("booted", ["page_ready", "single_file_page_ready"], ids=["http", "file"])
def test_an_sbc_sending_from_another_port_than_it_listens_on_is_one_column(request, booted):
    page = request.getfixturevalue(booted).page
    capture = FIXTURES / "ladder" / "ladder_sbc_two_ports.pcap"  # byte-built: tests/fixtures/ladder/generate.py
    open_capture(page, capture)
    select_tab(page, "calls")  # its one call opens by itself
    page.locator("#tab-panel .ladder-arrow").first.wait_for()
    assert host_columns(page) == ["10.77.0.1", "10.77.0.9"]
    assert page.locator("#tab-panel .ladder-host-ports").all_text_contents() == ["SIP ports 5060, 5080"]
    assert page.locator("#tab-panel .ladder-band-text").all_text_contents() == ["RTP PCMU → 50 pkts · ← 50 pkts"]
    page.locator("#tab-panel .ladder-columns").select_option("port")
    page.locator("#tab-panel .ladder-host", has_text="10.77.0.9:5080").wait_for()
    assert host_columns(page) == ["10.77.0.1:5060", "10.77.0.9:5060", "10.77.0.9:5080", "10.77.0.1:4000",
                                  "10.77.0.9:30000"]


def delta_seconds(text: str) -> float:
    number, unit = re.fullmatch(r"\+([\d.]+) (ms|s)", text).groups()
    return float(number) / (1000 if unit == "ms" else 1)


def test_every_arrow_shows_its_frame_and_the_delta_the_report_gives(calls_tab):
    report = cli_report(PBX)
    times = {m["frame"]: m["time"] for m in report["sip_messages"]}
    arrows = calls_tab.locator("#tab-panel .ladder-arrow").evaluate_all("""(arrows) => arrows.map((a) => [
      +a.dataset.frame, a.querySelector('.ladder-frame').textContent, a.querySelector('.ladder-delta').textContent])""")
    assert len(arrows) == len(report["sip_messages"])
    previous = None
    for frame, frame_text, delta_text in arrows:
        assert frame_text == f"#{frame}"
        expected = 0.0 if previous is None else times[frame] - times[previous]
        # shown to 0.1 ms below a second, to 1 ms above
        assert abs(delta_seconds(delta_text) - expected) <= (0.00005 if expected < 1 else 0.0005)
        previous = frame


def test_the_selected_arrow_is_highlighted_and_its_message_shown_beside_the_ladder(calls_tab):
    page = calls_tab
    report = cli_report(PBX, with_text=True)
    message = next(m for m in report["sip_messages"] if m["frame"] == 7)  # the callee's 200 OK with SDP
    arrow = page.locator('#tab-panel .ladder-arrow[data-frame="7"]')
    arrow.focus()
    page.keyboard.press("Enter")
    panel = page.locator("#tab-panel .ladder-panel")
    assert panel.locator(".ladder-panel-heading").inner_text() == "Frame 7: 10.77.0.3:5060 → 10.77.0.2:5062 (udp)"
    shown = panel.locator(".ladder-message").inner_text()
    assert shown.split("\n") == message["text"].replace("\r\n", "\n").rstrip("\n").split("\n")
    names = panel.locator(".sip-header-name").all_inner_texts()
    assert names[:6] == ["Via", "From", "To", "Call-ID", "CSeq", "Contact"]
    assert page.locator("#tab-panel .ladder-selected").evaluate_all("(a) => a.map((x) => +x.dataset.frame)") == [7]
    # beside the ladder at this width (1280 px), not below it
    ladder_box = page.locator("#tab-panel .ladder-scroll").bounding_box()
    panel_box = panel.bounding_box()
    assert panel_box["x"] >= ladder_box["x"] + ladder_box["width"] and panel_box["y"] < ladder_box["y"] + 50


def diff_lines(panel, kind: str) -> list[str]:
    """The diff's lines of one kind, without their "− "/"+ " mark."""
    return [line[2:].removesuffix("\n") for line in panel.locator(f".diff-{kind}").all_text_contents()]


def test_shift_click_diffs_two_messages_line_by_line(calls_tab):
    page = calls_tab
    report = cli_report(PBX, with_text=True)
    texts = {m["frame"]: m["text"].replace("\r\n", "\n").rstrip("\n").split("\n") for m in report["sip_messages"]}
    page.locator('#tab-panel .ladder-arrow[data-frame="1"]').click()
    page.locator('#tab-panel .ladder-arrow[data-frame="3"]').click(modifiers=["Shift"])  # the PBX's INVITE on leg 2
    panel = page.locator("#tab-panel .ladder-panel")
    panel.locator(".ladder-diff-legend").wait_for()  # once the worker has read both
    assert panel.locator(".ladder-panel-heading").inner_text() == "Frame 1 compared with frame 3"
    removed, added, same = (diff_lines(panel, kind) for kind in ("removed", "added", "same"))
    first, second = texts[1], texts[3]
    # every line only the first has is marked removed, every line only the second has added
    assert {line for line in first if line not in second} <= set(removed) <= set(first)
    assert {line for line in second if line not in first} <= set(added) <= set(second)
    assert set(same) - {""} <= set(first) & set(second)
    assert "Call-ID: media_pbx_direct-1@10.77.0.1" in removed and "Call-ID: 7c1e5a90d3b24f68@10.77.0.2" in added
    assert "Content-Type: application/sdp" in same
    assert "− only in frame 1, + only in frame 3" in panel.locator(".ladder-diff-legend").inner_text()
    selected = page.locator("#tab-panel .ladder-selected, #tab-panel .ladder-compared")
    assert selected.evaluate_all("(a) => a.map((x) => +x.dataset.frame)") == [1, 3]


LADDER_SCRIPT = """async ([name, data, calls, perPort]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const report = await window.sipdiag.analyze(new File([bytes], name));
  return await window.sipdiag.ladder(report, { calls, perPort });
}"""


@pytest.mark.parametrize("per_port", [False, True], ids=["per-host", "per-port"])
def test_the_page_draws_exactly_what_the_cli_draws(calls_tab, per_port):
    report = cli_report(PBX, with_text=True)  # the SDP on the arrows: the page reads it from the file
    legs = report["call_groups"][0]["calls"]
    data = base64.b64encode(PBX.read_bytes()).decode("ascii")
    svg = calls_tab.evaluate(LADDER_SCRIPT, [PBX.name, data, legs, per_port])
    assert svg == ladder_svg(report, legs, per_port=per_port)
    # and the diagram on screen is that markup (the DOM adds only the selection state)
    shown = calls_tab.locator("#tab-panel .ladder-svg .ladder-arrow").count()
    assert shown == svg.count('class="ladder-arrow')


PIXEL_SCRIPT = """async (data) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const image = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
  const canvas = new OffscreenCanvas(image.width, image.height);
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  return [image.width, image.height, [...context.getImageData(2, 2, 1, 1).data]];
}"""


def test_exports_in_the_dark_theme_are_the_engines_light_drawing(calls_tab, tmp_path):
    page = calls_tab
    report = cli_report(PBX, with_text=True)
    legs = report["call_groups"][0]["calls"]
    page.emulate_media(color_scheme="dark")
    try:
        background = page.locator("#tab-panel .ladder-svg .ladder-bg").evaluate("(node) => getComputedStyle(node).fill")
        assert background == "rgb(30, 34, 40)"  # on screen the ladder takes the dark theme's surface
        with page.expect_download() as svg_download:
            page.locator("#tab-panel .ladder-export-svg").click()
        saved = tmp_path / "ladder.svg"
        svg_download.value.save_as(saved)
        assert saved.read_text(encoding="utf-8") == ladder_svg(report, legs)  # the engine's markup, light colours
        with page.expect_download() as png_download:
            page.locator("#tab-panel .ladder-export-png").click()
        png = tmp_path / "ladder.png"
        png_download.value.save_as(png)
        width, height, pixel = page.evaluate(PIXEL_SCRIPT, base64.b64encode(png.read_bytes()).decode("ascii"))
        root = page.locator("#tab-panel .ladder-svg")
        assert (width, height) == (int(root.get_attribute("width")), int(root.get_attribute("height")))
        assert pixel == [255, 255, 255, 255]  # the white background of the drawing, not the dark page
    finally:
        page.emulate_media(color_scheme="light")


def test_the_keyboard_selects_compares_and_returns_to_one_message(calls_tab):
    page = calls_tab
    heading = page.locator("#tab-panel .ladder-panel .ladder-panel-heading")
    page.locator('#tab-panel .ladder-arrow[data-frame="2"]').focus()
    page.keyboard.press("Enter")
    page.locator('#tab-panel .ladder-arrow[data-frame="4"]').focus()
    page.keyboard.press("Shift+Enter")
    assert heading.inner_text() == "Frame 2 compared with frame 4"
    page.locator('#tab-panel .ladder-arrow[data-frame="5"]').focus()
    page.keyboard.press("Enter")
    assert heading.inner_text() == "Frame 5: 10.77.0.2:5060 → 10.77.0.1:5060 (udp)"
    assert page.locator("#tab-panel .ladder-arrow[aria-pressed=true]").evaluate_all(
        "(arrows) => arrows.map((a) => +a.dataset.frame)") == [5]


def test_a_capture_without_calls_still_has_its_flow_graph(page_ready):
    page = page_ready.page
    capture = FIXTURES / "registration" / "reg_challenge_ok.pcap"  # REGISTER, 401, REGISTER, 200
    open_capture(page, capture)
    select_tab(page, "calls")
    page.locator("#tab-panel .ladder-arrow").first.wait_for()
    report = cli_report(capture)
    assert not report["calls"]
    assert page.locator("#tab-panel .ladder-scope option").all_inner_texts() == ["every SIP message"]
    frames = page.locator("#tab-panel .ladder-arrow").evaluate_all("(arrows) => arrows.map((a) => +a.dataset.frame)")
    assert frames == [m["frame"] for m in report["sip_messages"]] == [1, 2, 3, 4]
    assert host_columns(page) == ["10.77.0.1", "10.77.0.2"]
