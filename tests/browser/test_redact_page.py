"""The Redact tab: verified redaction in the page, evidence pack downloads, nothing leaves the page."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from locations import SHARED_CAPTURES
from pagekit import open_capture

CAPTURE = SHARED_CAPTURES / "redrabbit__sip-rtp-g711.pcap"
ORIGINAL_ADDRESSES = ("10.0.2.15", "10.0.2.20")  # the two hosts of this call (tshark lists them)



def download(page, button_text: str, tmp_path: Path) -> Path:
    with page.expect_download(timeout=60_000) as info:
        page.locator("#tab-panel button", has_text=button_text).click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    return target


def test_redact_tab_verifies_then_offers_the_evidence_pack(page_ready, tmp_path):
    page = page_ready.page
    open_capture(page, CAPTURE)
    page.locator('#tabs [data-tab="redact"]').click()
    options = page.locator("#tab-panel .redact-option input")
    assert options.count() == 8 and all(options.nth(i).is_checked() for i in range(8))
    preview = page.locator("#tab-panel .redact-table").first.locator("tbody tr").all_inner_texts()
    assert any(row.startswith("IP addresses\t2") for row in preview)
    assert page.locator("#tab-panel .redact-download").count() == 0  # nothing to download before verification

    page.locator("#tab-panel .redact-key").fill("shared secret")
    page.locator("#tab-panel .redact-start").click()
    page.locator("#tab-panel .redact-verified").wait_for(timeout=120_000)
    assert "no original value found" in page.locator("#tab-panel .redact-status").inner_text()

    capture = download(page, "Redacted capture", tmp_path)
    data = capture.read_bytes()
    assert capture.name.endswith(".redacted.pcap") and data[:4] == CAPTURE.read_bytes()[:4]
    for address in ORIGINAL_ADDRESSES:
        assert address.encode() not in data
    count = subprocess.run(["tshark", "-r", str(capture)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(count) == 852

    report = json.loads(download(page, "JSON report", tmp_path).read_text())
    assert report["schema"] == "sipdiag.report/1" and report["capture"]["packets"] == 852
    assert not any(a in json.dumps(report) for a in ORIGINAL_ADDRESSES)

    html = download(page, "HTML report", tmp_path).read_text()
    assert "<svg" in html and "http" not in html.replace("http-equiv", "")

    mapping = download(page, "Mapping table", tmp_path).read_text().splitlines()
    assert mapping[0] == "category,original,replacement"
    assert {line.split(",")[1].strip('"') for line in mapping[1:] if line.startswith('"addresses"')} == set(ORIGINAL_ADDRESSES)

    summary = page.locator("#tab-panel .redact-summary").input_value()
    assert summary.startswith("sipdiag summary of") and "leaks: 0" in summary
    assert page_ready.foreign_requests() == []


def test_same_passphrase_in_page_and_cli_gives_the_same_capture(page_ready, tmp_path):
    """The page runs the CLI's engine: same passphrase and options, byte-identical output."""
    from sipdiag.redaction.redactor import redact_command

    page = page_ready.page
    open_capture(page, CAPTURE)
    page.locator('#tabs [data-tab="redact"]').click()
    page.locator("#tab-panel .redact-key").fill("same key")
    page.locator("#tab-panel .redact-start").click()
    page.locator("#tab-panel .redact-verified").wait_for(timeout=120_000)
    in_page = download(page, "Redacted capture", tmp_path)
    code, _ = redact_command(str(CAPTURE), str(tmp_path / "cli.pcap"), key="same key")
    assert code == 0
    assert in_page.read_bytes() == (tmp_path / "cli.pcap").read_bytes()

