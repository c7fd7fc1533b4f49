"""The memory guard (issue 14): with ?memory-limit= between what the engine holds after a
10 MB SIP-only capture's first and second slices, the capture is stopped while it is read, with the worker's own figures, and the page
offers its first N MB or Cancel; a small capture still opens afterwards in the same page."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from pagekit import REPO, cli_report, open_capture, open_page

MB = 1_000_000


@pytest.fixture(scope="module")
def signalling_capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("guard") / "signalling-10M.pcap"
    subprocess.run([sys.executable, str(REPO / "bench" / "make_signalling.py"), "--size", "10M", "-o", str(path)],
                   check=True, capture_output=True)
    return path


def limited_page(browser, url, capture):
    """The page with a limit the capture's first 4 MiB slice stays under and its second
    passes: what the engine holds after each, learnt from the guard itself (a limit of
    1 MB stops after the first slice, one just above that use after the second), since
    what a message costs differs from build to build and from wasm32 to CPython."""
    used = []
    for limit_mb in (1, None):
        probe = open_page(browser, f"{url}?memory-limit={limit_mb or used[0] // MB + 1}")
        used.append(refused_in_console(probe.page, capture)["memory"]["used"])
        probe.page.context.close()
    assert used[1] - used[0] > 4 * MB  # room between the two for a limit that holds from run to run
    limit_mb = (used[0] + used[1]) // 2 // MB
    return open_page(browser, f"{url}?memory-limit={limit_mb}"), limit_mb


def refused_in_console(page, path):
    """What the worker says of this file through window.sipdiag: its figures."""
    data = path.read_bytes().hex()
    return page.evaluate("""async ([name, hex]) => {
      const bytes = Uint8Array.from(hex.match(/../g), (pair) => parseInt(pair, 16));
      try { await sipdiag.analyze(new File([bytes], name)); return null; }
      catch (error) { return { message: error.message, memory: error.memory }; }
    }""", [path.name, data])


def refuse(page, path):
    page.set_input_files("#file-input", str(path))
    page.locator("#memory-choice:not([hidden])").wait_for(timeout=60_000)
    return page.locator("#error").text_content()


@pytest.mark.parametrize("where", ["http", "file"])
def test_the_message_names_the_figures_the_worker_measured(browser, site, signalling_capture, where):
    booted, limit_mb = limited_page(browser, site.base_url if where == "http" else site.single_file_url,
                                   signalling_capture)
    page = booted.page
    try:
        refused = refused_in_console(page, signalling_capture)
        memory = refused["memory"]
        assert memory["limit"] == limit_mb * MB
        assert memory["size"] == signalling_capture.stat().st_size
        assert memory["read"] % (4 * 1024 * 1024) == 0 and 0 < memory["read"] < memory["size"]
        assert memory["used"] > memory["limit"]
        assert memory["offer"] % MB == 0 and 0 < memory["offer"] < memory["read"]
        read = f"{memory['read'] / MB:.1f} MB"
        assert refused["message"] == (
            f"{signalling_capture.name} (10 MB) needs more memory than this browser allows: the engine had read "
            f"{read} ({memory['messages']:,} SIP messages) when it reached its limit of {limit_mb} MB.")
        # The page shows the same sentence in its alert region, with its two choices.
        assert refuse(page, signalling_capture) == refused["message"]
        assert page.locator("#error").get_attribute("role") == "alert"
        assert page.locator("#analyze-first").text_content() == f"Analyze the first {memory['offer'] // MB} MB only"
        assert page.locator("#result").is_hidden()
        # The keyboard reaches the choice: the first part has the focus.
        assert page.evaluate("document.activeElement.id") == "analyze-first"
        assert booted.foreign_requests() == []
    finally:
        page.context.close()


def test_first_part_cancel_and_a_small_capture_afterwards(browser, site, signalling_capture, sample_capture, tmp_path):
    booted, _ = limited_page(browser, site.base_url, signalling_capture)
    page = booted.page
    try:
        refuse(page, signalling_capture)
        offer_mb = int(re.fullmatch(r"Analyze the first (\d+) MB only", page.locator("#analyze-first").text_content())[1])
        page.keyboard.press("Enter")  # the focused "Analyze the first N MB only"
        status = f"analyzed the first {offer_mb} MB of {signalling_capture.name} only"
        page.locator("#engine-status", has_text=status).wait_for(timeout=60_000)
        # The report is the CLI's on those first bytes: fewer packets than the whole file holds.
        first_part = tmp_path / signalling_capture.name
        first_part.write_bytes(signalling_capture.read_bytes()[:offer_mb * MB])
        packets = cli_report(first_part)["capture"]["packets"]
        assert packets < cli_report(signalling_capture)["capture"]["packets"]
        shown = page.locator("#capture-summary dt", has_text="Packets").locator("xpath=following-sibling::dd[1]")
        assert shown.text_content() == str(packets)
        assert page.locator("#memory-choice").is_hidden()
        # Cancel: back to choosing a file, nothing of the capture shown.
        refuse(page, signalling_capture)
        page.locator("#cancel-capture").click()
        assert page.locator("#result").is_hidden()
        assert page.locator("#error").is_hidden()
        assert page.locator("#memory-choice").is_hidden()
        assert page.locator("#engine-status").text_content().startswith("engine ready")
        # The heap never shrinks; a small capture is still analysed, under the same limit.
        open_capture(page, sample_capture)
        assert page.locator("#result").is_visible()
        assert page.locator("#error").is_hidden()
    finally:
        page.context.close()
