"""The report the page holds has no message text (as the CLI's analyze --json):
opening a message asks the worker, which reads that message's slice of the
File. What the page shows is the capture's message, character for character:
the CLI's `--with-text` text, and for a message that is one slice of the file
those very bytes. Over HTTP and from the single file (file://)."""

from __future__ import annotations

import pytest
from locations import FIXTURES, SHARED_CAPTURES
from pagekit import REPO, cli_report, open_capture, select_tab

CAPTURES = [
    REPO / "static" / "sample.pcap",                          # UDP: every message a slice of the file
    SHARED_CAPTURES / "heplify__sip_tcp_websocket.pcap",      # TCP and WebSocket: unmasked, kept by the engine
    FIXTURES / "calls" / "call_fragmented_invite.pcap",       # IP fragments: reassembled, kept
    FIXTURES / "encap" / "encap_sctp.pcap",                   # frame 7: two SIP messages in one SCTP packet
]


@pytest.fixture(scope="module", params=["http", "file"])
def booted(request):
    return request.getfixturevalue("page_ready" if request.param == "http" else "single_file_page_ready")


def shown_text(page, frame: int, nth: int) -> str:
    """Opens the nth row of this frame and gives the text shown under it, then closes it."""
    row = page.locator(f'#tab-panel tr.message-row[data-frame="{frame}"]').nth(nth)
    row.click()
    text = row.locator("xpath=following-sibling::tr[1]").locator("pre.message-text:not(.loading)")
    text.wait_for()
    shown = text.text_content()
    row.click()
    return shown


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_an_opened_message_shows_the_captures_own_text(booted, capture):
    page = booted.page
    open_capture(page, capture)
    select_tab(page, "messages")
    messages = cli_report(capture, with_text=True)["sip_messages"]
    assert messages and page.evaluate("() => document.querySelectorAll('pre.message-text').length") == 0
    data = capture.read_bytes()
    seen: dict[int, int] = {}
    for message in messages:
        nth = seen[message["frame"]] = seen.get(message["frame"], -1) + 1
        shown = shown_text(page, message["frame"], nth)
        assert shown == message["text"]
        if capture.name == "sample.pcap":
            assert shown.encode("utf-8") in data  # the bytes of the file, not a re-rendering


def test_a_registrations_raw_messages_are_read_when_opened(booted):
    capture = FIXTURES / "registration" / "reg_challenge_ok.pcap"
    page = booted.page
    open_capture(page, capture)
    select_tab(page, "registrations")
    report = cli_report(capture, with_text=True)
    texts = {m["frame"]: m["text"] for m in report["sip_messages"]}
    page.locator("#tab-panel .reg-row").first.click()
    raw = page.locator("#tab-panel .reg-detail-row:not([hidden]) details.reg-raw")
    raw.locator("summary").click()
    frames = report["registrations"][0]["frames"]
    expected = [f"#{frame}\n{texts[frame]}" for frame in frames]
    page.wait_for_function("""([selector, count]) => [...document.querySelectorAll(selector)]
        .filter((pre) => pre.textContent.includes("\\n") && pre.textContent.split("\\n")[1] !== "").length === count""",
                           arg=["#tab-panel .reg-detail-row:not([hidden]) pre.reg-raw-message", len(frames)])
    assert raw.locator("pre.reg-raw-message").all_text_contents() == expected


def test_a_capture_changed_since_it_was_opened_gives_a_sentence(page_ready, tmp_path):
    capture = tmp_path / "moved.pcap"
    capture.write_bytes((REPO / "static" / "sample.pcap").read_bytes())
    page = page_ready.page
    open_capture(page, capture)
    select_tab(page, "messages")
    capture.write_bytes(capture.read_bytes() + b"\0")  # changed on disk: Chromium refuses to read the File again
    page.locator("#tab-panel tr.message-row").first.click()
    shown = page.locator("#tab-panel pre.message-text:not(.loading)")
    shown.wait_for()
    assert shown.text_content() == ("The message could not be read: the capture can no longer be read "
                                    "(NotReadableError): it was changed or moved since it was opened; open it again")
