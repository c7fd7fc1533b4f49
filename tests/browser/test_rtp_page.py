"""The RTP streams tab on the byte-built tone fixture (tests/fixtures/rtp): the
worker measures a stream and decodes its voice exactly as the engine does on
the command line, in both builds; the tab lists the streams, plots one, plays
it to its end with Web Audio, seeks, mixes a call's two directions, finds a
frame's stream, and says so when a redacted capture has no voice left."""

from __future__ import annotations

import base64

import pytest
from locations import FIXTURES
from pagekit import open_capture, select_tab
from sipdiag.redaction.redactor import redact_command
from sipdiag.rtp_stream import StreamMeasurement

TONE = FIXTURES / "rtp" / "rtp_tone.pcap"
PBX = {"src": "10.77.0.1:16384", "dst": "10.77.0.2:20000", "ssrc": "0x51A7E000"}
CARRIER = {"src": "10.77.0.2:20000", "dst": "10.77.0.1:16384", "ssrc": "0x6B0B0001"}

MEASURE_IN_PAGE = """async ([name, data, streams]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const measured = await window.sipdiag.rtpStream(new File([bytes], name), streams);
  // PCM back as base64 (Playwright hands typed arrays over as objects).
  return measured.map(({ audio, ...rest }) => {
    const { pcm, ...facts } = audio;
    let text = "";
    for (let i = 0; i < (pcm?.length ?? 0); i += 0x8000) text += String.fromCharCode(...pcm.subarray(i, i + 0x8000));
    return { ...rest, audio: facts, pcm: btoa(text) };
  });
}"""


@pytest.fixture(scope="module", params=["http", "file"])
def booted(request):
    """The folder site over HTTP, then the single file from file://."""
    return request.getfixturevalue("page_ready" if request.param == "http" else "single_file_page_ready")


def test_the_worker_measures_and_decodes_what_the_cli_does(booted):
    data = TONE.read_bytes()
    engine = StreamMeasurement([PBX, CARRIER])
    engine.feed(data)
    expected = engine.finish()
    measured = booted.page.evaluate(MEASURE_IN_PAGE, [TONE.name, base64.b64encode(data).decode(), [PBX, CARRIER]])
    for index, stream in enumerate(measured):
        assert base64.b64decode(stream.pop("pcm")) == engine.pcm(index)
        assert stream == expected[index]
    assert measured[0]["audio"]["samples"] == 16000


def player_state(page) -> str:
    return page.locator("#tab-panel .rtp-player").get_attribute("data-state")


def test_the_tab_lists_plots_and_plays_a_stream(page_ready):
    page = page_ready.page
    open_capture(page, TONE)
    assert page.locator('#tabs [data-tab="rtp"]').inner_text() == "RTP streams (2)"
    select_tab(page, "rtp")
    rows = page.locator("#tab-panel .rtp-row")
    assert rows.count() == 2
    assert rows.first.locator("td").all_inner_texts() == [
        "10.77.0.1:16384 → 10.77.0.2:20000", "0x51A7E000", "PCMU (0, 101)", "100", "2 (2.0 %)", "–", "59.000 ms",
        "5.541 / 22.253 ms", "sip:pbx@10.77.0.1 → sip:bob@10.77.0.2"]
    rows.first.press("Enter")
    page.locator("#tab-panel .rtp-svg").wait_for()
    facts = dict(zip(page.locator("#tab-panel .rtp-facts dt").all_inner_texts(),
                     page.locator("#tab-panel .rtp-facts dd").all_inner_texts()))
    assert facts["Sequence errors"] == "4"
    assert facts["Max skew"] == "-23.000 ms"
    assert rows.first.locator(".rtp-seq-errors").inner_text() == "4"  # measured: the table's cell fills in
    plot = page.locator("#tab-panel .rtp-svg")
    assert plot.locator(".rtp-dtmf-label").all_text_contents() == ["DTMF 5"]
    assert plot.locator(".rtp-seq-error").count() == 4
    assert plot.locator("path.rtp-line").count() == 3

    assert player_state(page) == "ready"
    page.locator("#tab-panel .rtp-play").click()
    page.locator('#tab-panel .rtp-player[data-state="playing"]').wait_for()
    # 2 s of audio: playback runs to its end by itself.
    page.locator('#tab-panel .rtp-player[data-state="ended"]').wait_for(timeout=15_000)
    assert page.locator("#tab-panel .rtp-player").get_attribute("data-position") == "2.000"
    assert page_ready.console_errors == []


def test_seeking_and_both_directions_of_the_call(page_ready):
    page = page_ready.page
    open_capture(page, TONE)
    select_tab(page, "rtp")
    page.locator("#tab-panel .rtp-row").first.click()
    page.locator("#tab-panel .rtp-svg").wait_for()
    page.locator("#tab-panel .rtp-play-mode").select_option("stereo")
    page.locator('#tab-panel .rtp-player[data-channels="2"]').wait_for()
    # The carrier's stream starts 3 ms after the PBX's: 2.003 s on one time line.
    assert page.locator("#tab-panel .rtp-scrub").get_attribute("max") == "2.003"
    page.locator("#tab-panel .rtp-scrub").fill("1")
    player = page.locator("#tab-panel .rtp-player")
    assert player.get_attribute("data-position") == "1.000"
    # Aligned to the capture (and the ladder, whose +0 is the INVITE at the capture's start).
    assert page.locator("#tab-panel .rtp-time").inner_text() == (
        "00:00:01.600 UTC (capture +1.600 s, call +1.600 s)")
    assert page.locator("#tab-panel .rtp-cursor").get_attribute("visibility") == "visible"
    page.locator("#tab-panel .rtp-play").click()
    page.locator('#tab-panel .rtp-player[data-state="ended"]').wait_for(timeout=15_000)
    assert page_ready.console_errors == []


def test_a_frame_leads_to_its_stream(page_ready):
    page = page_ready.page
    open_capture(page, TONE)
    select_tab(page, "rtp")
    page.locator("#tab-panel .rtp-frame-input").fill("7")
    page.locator("#tab-panel .rtp-frame-form button").click()
    page.locator("#tab-panel .rtp-row.rtp-selected").wait_for()
    assert page.locator("#tab-panel .rtp-row.rtp-selected .rtp-flow").inner_text() == (
        "10.77.0.2:20000 → 10.77.0.1:16384")
    page.locator("#tab-panel .rtp-frame-input").fill("1")
    page.locator("#tab-panel .rtp-frame-form button").click()
    page.locator("#tab-panel .rtp-status", has_text="Frame 1 is not an RTP packet").wait_for()
    # The view's select() export, as URL routing calls it: the detail it shows, then the stream in it.
    heading = page.evaluate("""async () => {
      const view = await import("./static/js/views/rtp.js");
      const shown = view.select(document.querySelector(".tab-content-rtp"), "frame", "126", null);
      const first = shown.querySelector("h3").textContent;
      await new Promise((resolve) => {
        const check = () => (shown.querySelector(".rtp-svg") ? resolve() : setTimeout(check, 20));
        check();
      });
      return [first, shown.querySelector("h3").textContent, shown.isConnected];
    }""")
    assert heading == ["Frame 126", "Stream 10.77.0.1:16384 → 10.77.0.2:20000 (SSRC 0x51A7E000)", True]
    stream = page.evaluate("""async () => {
      const view = await import("./static/js/views/rtp.js");
      return view.select(document.querySelector(".tab-content-rtp"), "stream",
        "10.77.0.2:20000,10.77.0.1:16384,0x6B0B0001", null).querySelector("h3").textContent;
    }""")
    assert stream == "Stream 10.77.0.2:20000 → 10.77.0.1:16384 (SSRC 0x6B0B0001)"


def test_a_redacted_capture_says_its_voice_is_zeroed(page_ready, tmp_path):
    copy = tmp_path / "rtp_tone_redacted.pcap"
    assert redact_command(str(TONE), str(copy), key="k")[0] == 0
    page = page_ready.page
    open_capture(page, copy)
    select_tab(page, "rtp")
    page.locator("#tab-panel .rtp-row").first.click()
    page.locator('#tab-panel .rtp-player[data-state="unplayable"]').wait_for()
    assert "voice in this stream is zeroed (a redacted capture)" in page.locator(
        "#tab-panel .rtp-audio-note").inner_text()
    assert page.locator("#tab-panel .rtp-play").is_disabled()


def test_the_tab_keeps_its_stream_and_position_across_tabs(page_ready):
    page = page_ready.page
    open_capture(page, TONE)
    select_tab(page, "rtp")
    page.locator("#tab-panel .rtp-row").nth(1).click()
    page.locator("#tab-panel .rtp-svg").wait_for()
    page.locator("#tab-panel .rtp-scrub").fill("0.5")
    select_tab(page, "calls")
    select_tab(page, "rtp")
    assert page.locator("#tab-panel .rtp-row.rtp-selected .rtp-flow").inner_text() == (
        "10.77.0.2:20000 → 10.77.0.1:16384")
    assert page.locator("#tab-panel .rtp-player").get_attribute("data-position") == "0.500"
    # Measured once: the other row's cell is still unknown, this one's is counted.
    assert page.locator("#tab-panel .rtp-seq-errors").all_inner_texts() == ["–", "0"]


def test_playback_stops_when_another_tab_shows(page_ready):
    page = page_ready.page
    open_capture(page, TONE)
    select_tab(page, "rtp")
    page.locator("#tab-panel .rtp-row").first.click()
    page.locator("#tab-panel .rtp-svg").wait_for()
    page.locator("#tab-panel .rtp-play").click()
    page.locator('#tab-panel .rtp-player[data-state="playing"]').wait_for()
    select_tab(page, "calls")
    page.wait_for_timeout(300)  # a few animation frames with the RTP tab out of the page
    select_tab(page, "rtp")
    page.locator('#tab-panel .rtp-player[data-state="paused"]').wait_for()
    assert 0 < float(page.locator("#tab-panel .rtp-player").get_attribute("data-position")) < 2
