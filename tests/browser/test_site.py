"""The folder site over http://127.0.0.1: the page's report is the CLI's report,
errors are sentences, and nothing leaves the origin."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

import pytest
from locations import FIXTURES, SHARED_CAPTURES
from pagekit import (
    REPO,
    analyze_in_page,
    cli_json,
    cli_report,
    message_text_shown,
    open_capture,
    open_everything,
    open_page,
    select_tab,
)

# Every capture we have: the page must build exactly the CLI's report for each.
CAPTURES = sorted(SHARED_CAPTURES.glob("*.pcap*")) + sorted(FIXTURES.rglob("*.pcap*"))


JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + b"\x00" * 64


def cli_error(path) -> str:
    """The CLI's one-line complaint about a file it cannot read (it exits 2)."""
    completed = subprocess.run([sys.executable, "-m", "sipdiag", "analyze", str(path), "--json"], cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO / "py")}, capture_output=True, text=True)
    assert completed.returncode == 2, completed.stderr
    return completed.stderr.strip().split(f"{path}: ", 1)[1]


def test_page_paints_before_engine_is_ready(browser, site):
    context = browser.new_context()
    page = context.new_page()
    try:
        # Hold the engine back: the page must already say what is going on.
        page.route("**/pyodide/pyodide.asm.wasm", lambda route: None)
        page.goto(site.base_url)
        assert page.inner_text("#engine-status") == "loading engine…"
        assert "Your capture never leaves this computer" in page.inner_text("#privacy")
        assert page.is_visible("#sample-button")
    finally:
        context.close()


def test_file_input_report_equals_cli(page_ready, sample_capture, tmp_path):
    page = page_ready.page
    page.set_input_files("#file-input", str(sample_capture))
    page.wait_for_selector("#capture-summary")
    assert page.inner_text("#engine-status") == f"analyzed {sample_capture.name}"
    assert page.is_hidden("#progress")
    with page.expect_download() as download:
        page.click("#download-report")
    saved = tmp_path / "report.json"
    download.value.save_as(saved)
    assert download.value.suggested_filename == f"{sample_capture.name}.sipdiag.json"
    # The worker writes the CLI's bytes (report_json.write_json), with no message text.
    assert saved.read_bytes() == cli_json(sample_capture)
    assert all("text" not in row for row in json.loads(saved.read_bytes())["sip_messages"])


@pytest.mark.parametrize("path", CAPTURES, ids=lambda path: path.name)
def test_api_report_equals_cli(page_ready, path):
    assert analyze_in_page(page_ready, path) == cli_report(path)


def long_capture(shared_captures, tmp_path, name: str, copies: int):
    """A pcap over one 4 MiB chunk: a real capture's records repeated after its file header."""
    original = (shared_captures / name).read_bytes()
    path = tmp_path / "long.pcap"
    path.write_bytes(original + original[24:] * (copies - 1))
    return path


def test_progress_events_follow_the_chunks(page_ready, shared_captures, tmp_path):
    path = long_capture(shared_captures, tmp_path, "heplify__rtp_rtcp_sip_ipv4_udp.pcap", 6)
    page_ready.page.evaluate("""() => {
      window.progressEvents = [];
      window.sipdiag.on("progress", ({ done, total, phase }) => window.progressEvents.push([done, total, phase]));
    }""")
    analyze_in_page(page_ready, path)
    size = path.stat().st_size
    # sipdiag.analyze keeps no tables: nothing to build after the analyses.
    assert page_ready.page.evaluate("window.progressEvents") == [
        [0, size, "reading"], [4 << 20, size, "reading"], [size, size, "analyzing"]]


# Every progress event of the page's own analysis, and each text the status line showed.
RECORD_OPENING = """() => {
  const events = [], texts = [];
  const status = document.getElementById("engine-status");
  const observer = new MutationObserver(() => texts.push(status.textContent));
  observer.observe(status, { childList: true, characterData: true, subtree: true });
  const stop = window.sipdiag.on("progress", (event) => events.push(event));
  window.openingRecorded = () => (stop(), observer.disconnect(), [events, texts]);
}"""


def test_status_line_says_the_phase_and_the_sip_messages_read(page_ready, shared_captures, tmp_path):
    # SIP only: 45 copies of sngrep's capture, 5 MB, two chunks.
    path = long_capture(shared_captures, tmp_path, "sngrep__aaa.pcap", 45)
    page = page_ready.page
    page.evaluate(RECORD_OPENING)
    open_capture(page, path)
    events, texts = page.evaluate("window.openingRecorded()")
    size = path.stat().st_size
    sip_messages = len(cli_report(path)["sip_messages"])
    assert [(event["phase"], event["done"], event["total"]) for event in events] == [
        ("reading", 0, size), ("reading", 4 << 20, size), ("analyzing", size, size), ("building views", size, size)]
    read = [event["messages"] for event in events]
    assert read == sorted(read) and read[1] > 0 and read[-1] == sip_messages
    # No-break spaces hold "N %" and "N SIP messages" together on a narrow screen.
    assert [text.replace("\u00a0", "_") for text in texts] == [
        "",  # open_capture clears it first
        "reading long.pcap…",
        "reading long.pcap — 0_% · 0_SIP_messages",
        f"reading long.pcap — {100 * (4 << 20) // size}_% · {read[1]:,}_SIP_messages",
        f"analyzing {read[2]:,}_SIP_messages…",
        "building views…",
        "analyzed long.pcap",
    ]


def test_sip_messages_tab_shows_message_text(page_ready, sample_capture):
    page = page_ready.page
    page.set_input_files("#file-input", str(sample_capture))
    page.wait_for_selector("#capture-summary")
    first = cli_report(sample_capture, with_text=True)["sip_messages"][0]
    page.click('#tabs button[data-tab="messages"]')
    row = page.locator(f'tr[data-frame="{first["frame"]}"]').first
    assert first["call_id"] in row.inner_text()
    row.click()
    assert message_text_shown(page) == first["text"]


@pytest.mark.parametrize("content", [JPEG, b""], ids=["jpeg", "empty"])
def test_non_capture_shows_error_sentence(page_ready, tmp_path, content):
    path = tmp_path / "not-a-capture.pcap"
    path.write_bytes(content)
    page = page_ready.page
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("#error:not([hidden])")
    text = page.inner_text("#error")
    assert text == f"{path.name}: {cli_error(path)}"
    assert "Traceback" not in text
    assert page.is_hidden("#progress")
    assert page.inner_text("#engine-status") == f"could not analyze {path.name}"


def test_capture_cut_inside_its_header_says_nothing_was_read(page_ready, shared_captures, tmp_path):
    path = tmp_path / "cut.pcap"
    path.write_bytes((shared_captures / "pcapplusplus__sip_resp.pcap").read_bytes()[:14])
    page = page_ready.page
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("#error:not([hidden])")
    [warning] = cli_report(path)["capture"]["warnings"]
    assert page.inner_text("#error") == f"cut.pcap: no packets could be read. {warning}"


def test_capture_cut_mid_record_shows_its_warning(page_ready, shared_captures, tmp_path):
    path = tmp_path / "cut.pcap"
    path.write_bytes((shared_captures / "heplify__sip_ipv4_tcp.pcap").read_bytes()[:5000])
    expected = cli_report(path)
    assert expected["capture"]["packets"] > 0 and expected["capture"]["warnings"]
    page = page_ready.page
    page.set_input_files("#file-input", str(path))
    page.locator("#engine-status", has_text="analyzed cut.pcap").wait_for()
    assert page.is_hidden("#error")
    assert page.locator("ul.warnings li").all_inner_texts() == expected["capture"]["warnings"]
    assert analyze_in_page(page_ready, path) == expected


def test_no_request_leaves_the_origin(page_ready, shared_captures):
    analyze_in_page(page_ready, shared_captures / "pcapplusplus__sip_resp.pcap")
    # the recorder works: it saw the engine's own files being fetched
    assert any(url.endswith("/pyodide/pyodide.asm.wasm") for url in page_ready.requests)
    assert page_ready.foreign_requests() == []
    assert [text for text in page_ready.console_errors if "Content Security Policy" in text] == []


def test_sample_button_analyzes_the_built_in_sample(page_ready, site):
    sample = site.directory / "static" / "sample.pcap"
    page = page_ready.page
    page.click("#sample-button")
    page.locator("#engine-status", has_text="analyzed sample.pcap").wait_for()
    expected = cli_report(sample)
    assert page.locator('#capture-summary dt:text-is("Packets") + dd').inner_text() == str(expected["capture"]["packets"])
    assert page.locator('#capture-summary dt:text-is("SIP messages") + dd').inner_text() == str(len(expected["sip_messages"]))


REDACT_SCRIPT = """async ([name, data, key]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const events = [];
  const stop = window.sipdiag.on("progress", ({ done, total }) => events.push([done, total]));
  const { blob, summary } = await window.sipdiag.redact(new File([bytes], name), { key });
  stop();
  const out = new Uint8Array(await blob.arrayBuffer());
  return { summary, events, output: btoa(Array.from(out, (b) => String.fromCharCode(b)).join("")) };
}"""


def test_redact_in_page_writes_what_the_cli_writes(page_ready, sample_capture, tmp_path):
    out = tmp_path / "redacted.pcap"
    completed = subprocess.run([sys.executable, "-m", "sipdiag", "redact", str(sample_capture), "-o", str(out),
                                "--key", "team passphrase"], cwd=REPO, capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO / "py")})
    assert completed.returncode == 0, completed.stderr
    cli_summary = json.loads(completed.stdout)
    data = base64.b64encode(sample_capture.read_bytes()).decode()
    result = page_ready.page.evaluate(REDACT_SCRIPT, [sample_capture.name, data, "team passphrase"])
    assert base64.b64decode(result["output"]) == out.read_bytes()
    for field in ("packets_in", "packets_out", "addresses_replaced", "leaks", "mapping"):
        assert result["summary"][field] == cli_summary[field]
    size = sample_capture.stat().st_size
    # three passes (learn, write, verify the written copy) make one progress bar
    assert result["events"] == [[0, 3 * size], [size, 3 * size], [2 * size, 3 * size], [3 * size, 3 * size]]


def test_dropping_a_file_anywhere_analyzes_it(page_ready, shared_captures):
    path = shared_captures / "heplify__sip_ipv6_udp.pcap"
    page_ready.page.evaluate("""([name, data]) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], name));
      document.querySelector("main").dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
    }""", [path.name, base64.b64encode(path.read_bytes()).decode()])
    page_ready.page.locator("#engine-status", has_text=f"analyzed {path.name}").wait_for()
    expected = cli_report(path)
    assert page_ready.page.locator('#capture-summary dt:text-is("File") + dd').inner_text() == path.name
    assert page_ready.page.locator('#capture-summary dt:text-is("SIP messages") + dd').inner_text() == str(len(expected["sip_messages"]))


@pytest.mark.parametrize("name", ["sngrep__aaa.pcap", "suricataverify__dns-srv-sip.pcap", "heplify__rtp_rtcp_sip_ipv4_udp.pcap"])
def test_no_tab_prints_a_missing_value(page_ready, shared_captures, name):
    """Every tab, with every call and registration opened: no JavaScript placeholder reaches the reader."""
    page = page_ready.page
    open_capture(page, shared_captures / name)
    for tab in ("findings", "registrations", "calls", "dns", "messages", "rtp", "redact"):
        select_tab(page, tab)
        if tab == "rtp":
            open_everything(page, tab)  # its first stream measured, plotted, its player shown
        for row in page.locator("#tab-panel .call-row, #tab-panel .reg-row").all():
            row.click()
            text = page.inner_text("#tab-panel")
            assert not re.search(r"\b(null|undefined|NaN)\b|\[object ", text), (tab, text)
        text = page.inner_text("#tab-panel")
        assert not re.search(r"\b(null|undefined|NaN)\b|\[object ", text), (tab, text)


def test_keeps_working_when_the_network_goes_away(browser, site, shared_captures, sample_capture):
    """Loaded once, the page needs nothing more from any server: analysis and
    redaction run with the network cut (the site's own server included)."""
    booted = open_page(browser, site.base_url)
    try:
        booted.page.context.set_offline(True)
        path = shared_captures / "heplify__sip_ipv4_tcp.pcap"
        assert analyze_in_page(booted, path) == cli_report(path)
        data = base64.b64encode(sample_capture.read_bytes()).decode()
        result = booted.page.evaluate(REDACT_SCRIPT, [sample_capture.name, data, None])
        assert result["summary"]["leaks"] == 0 and result["summary"]["packets_out"] == 311
    finally:
        booted.page.context.close()
